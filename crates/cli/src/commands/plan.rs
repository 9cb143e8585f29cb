//! `ratelab plan SCENARIO`: which tier the scenario's traffic needs, at what growth, at what
//! cost. Reads the flags into a `plan::PlanSpec`, runs the planner's rounds of probes on the
//! parallel runner (with a progress bar on a terminal's stdout), prints the verdict and the
//! grid, and writes `plan.json`, `plan.md` and `index.html`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Outcome;

/// Shown after the options of `ratelab plan --help`.
const EXAMPLES: &str = "\
How it works:
  Every (tier, growth factor, strategy, seed) is one simulation of the scenario with its traffic
  multiplied by the factor (rates grow; token sizes stay; closed loops grow by instances; a
  replayed trace cannot grow and is refused). A cell meets the criterion when its best strategy
  meets the scenario's [expect] (99% success without one): with 3 seeds or more, on the worse
  end of the 95% interval; with fewer, on every seed. Each tier's breaking point is bisected
  between the grid's points to --precision. The verdict names the cheapest tier now, the growth
  at which to upgrade, and a month of the traffic at list prices against the tier's spend cap.

Examples:
  # Which tier, up to 5x growth, every tier that offers the model
  ratelab plan scenarios/capacity-plan.toml
  # Three seeds, two tiers, your own growth grid and strategies
  ratelab plan scenarios/tier-upgrade.toml --tiers tier-1..tier-3 --growth 1,2,4 --seeds 3 \\
      --strategy openai-python@2.52 --strategy 'paced=header-pacing:inner=(openai-python@2.52)'
  # Would the answer change if rejected requests counted against the limit?
  ratelab plan scenarios/capacity-plan.toml --rejections free,count-per-minute";

/// Arguments of `ratelab plan`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The scenario file: its traffic at 1x, its strategies and its [expect] criterion.
    pub scenario: PathBuf,
    /// Tiers to sweep: names and ranges in the catalog's order, e.g. `free..tier-5`,
    /// `tier-2..`, `tier-1,tier-3` (default: every tier that offers the scenario's model; see
    /// `ratelab tiers`).
    #[arg(long, value_name = "TIERS")]
    pub tiers: Option<String>,
    /// Growth factors of the grid, comma-separated: 1 is the scenario's traffic, 2 twice it.
    #[arg(long, value_name = "FACTORS", default_value = plan::DEFAULT_GROWTH)]
    pub growth: String,
    /// Seeds per cell (default: the scenario's `seeds`, else 1); 3 or more judge cells on
    /// their 95% interval.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(scenario::MAX_SEEDS)))]
    pub seeds: Option<u32>,
    /// Seed of every random draw (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Compare these strategies instead of the scenario's, in the form `[LABEL=]name[:key=value,...]`
    /// (see `ratelab strategies`); a pacing one (header-pacing, token-bucket, aws-adaptive)
    /// shows what client-side pacing buys over retries alone.
    #[arg(long = "strategy", value_name = "SPEC")]
    pub strategies: Vec<String>,
    /// Bisect each tier's breaking point until it is bracketed this closely, in growth factor.
    #[arg(long, value_name = "FACTOR", default_value = "0.05", value_parser = plan::parse_growth)]
    pub precision: plan::Growth,
    /// Share of input tokens served from the prompt cache, 0 to 1, for the monthly cost.
    #[arg(long, value_name = "SHARE", default_value = "0", value_parser = plan::parse_share)]
    pub cached_share: f64,
    /// Rejection rules, comma-separated: `free`, `count-per-minute`, `count-all-request-limits`.
    /// The first is the plan's; the others are swept on the grid to say whether the answer
    /// changes (default: the scenario's compare_rejections, else its rule).
    #[arg(long, value_name = "RULES")]
    pub rejections: Option<String>,
    /// Worker threads (default: every core). The plan is the same whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    #[command(flatten)]
    pub catalog: super::validate::CatalogArg,
    /// Output directory (default: reports/<scenario-name>-plan/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog_file = args.catalog.read()?;
    let mut scenario = super::validate::load_with_catalog(&args.scenario, catalog_file.as_ref())?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if !args.strategies.is_empty() {
        scenario.strategies = super::run::strategies_from_flags(&args.strategies)?;
    }
    let catalog = scenario_catalog(&scenario, &args.scenario)?;
    let model_name = scenario.server.model.clone();
    let tiers = match &args.tiers {
        Some(text) => plan::parse_tiers(text, &catalog, &model_name).map_err(anyhow::Error::msg)?,
        None => plan::tiers_offering(&catalog, &model_name),
    };
    let rules = match &args.rejections {
        Some(text) => parse_rules(text)?,
        None => plan::scenario_rules(&scenario),
    };
    let seeds = args.seeds.unwrap_or(scenario.seeds);
    let jobs = args
        .jobs
        .map_or_else(crate::runner::default_jobs, |jobs| jobs as usize);
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("reports").join(format!("{}-plan", scenario.name)));
    let growth = plan::parse_growth_list(&args.growth)
        .map_err(|message| anyhow::anyhow!("--growth: {message}"))?;
    let spec = plan::PlanSpec {
        scenario,
        tiers,
        rules,
        growth,
        seeds,
        precision: args.precision,
        cached_share: args.cached_share,
        catalog,
    };
    let mut planner = plan::Planner::new(spec)
        .with_context(|| format!("{}: cannot plan", args.scenario.display()))?;

    let bar = progress_bar(planner.probes_left_estimate());
    let plan = run_rounds(&mut planner, jobs, &bar)?;
    bar.finish_and_clear();

    crate::out!("{}", plan::terminal(&plan))?;
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    let files = [
        ("plan.json", plan::plan_json(&plan)),
        ("plan.md", plan::markdown(&plan)),
        ("index.html", plan::html(&plan)),
    ];
    for (name, text) in &files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    crate::out!(
        "wrote {} files to {} (open {})\n",
        files.len(),
        out.display(),
        out.join("index.html").display()
    )?;
    Ok(Outcome::Success)
}

/// Runs the planner's rounds on `jobs` threads, each round's probes in parallel, and returns
/// the finished plan: `ratelab plan`'s sweep and `ratelab check`'s capacity gate.
pub(crate) fn run_rounds(
    planner: &mut plan::Planner,
    jobs: usize,
    bar: &ProgressBar,
) -> anyhow::Result<plan::Plan> {
    loop {
        let probes = planner.next_round();
        if probes.is_empty() {
            break;
        }
        let summaries = crate::runner::map_in_order(probes.len(), jobs, &|index| {
            let summary = planner.run_probe(&probes[index]);
            bar.inc(1);
            summary
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        planner.record(&probes, summaries);
        bar.set_length(bar.position() + planner.probes_left_estimate());
    }
    Ok(planner.finish())
}

/// The tier catalog a scenario's server reads: the built-in one with its `[server.catalog]`
/// overlay.
pub(crate) fn scenario_catalog(
    scenario: &scenario::Scenario,
    path: &std::path::Path,
) -> anyhow::Result<quota::Catalog> {
    model::ServerModel::new(&scenario.server.config)
        .map(|model| model.catalog().clone())
        .map_err(|error| anyhow::anyhow!("{}: server: {error}", path.display()))
}

/// Reads `--rejections`: rule names as `limits.rejected_requests` writes them.
fn parse_rules(text: &str) -> anyhow::Result<Vec<quota::RejectedRequests>> {
    let mut rules = Vec::new();
    for name in text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let rule = match name {
            "free" => quota::RejectedRequests::Free,
            "count-per-minute" => quota::RejectedRequests::CountPerMinute,
            "count-all-request-limits" => quota::RejectedRequests::CountAllRequestLimits,
            other => anyhow::bail!(
                "--rejections: unknown rule \"{other}\" (expected one of: free, count-per-minute, count-all-request-limits)"
            ),
        };
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    anyhow::ensure!(
        !rules.is_empty(),
        "--rejections: no rule given (expected e.g. free,count-per-minute)"
    );
    Ok(rules)
}

/// Runs done, to go and the time left, on a terminal's stdout only (a pipe or a file gets the
/// verdict alone).
fn progress_bar(length: u64) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stdout());
    if let Ok(style) =
        ProgressStyle::with_template("planning [{bar:40}] {pos}/{len} runs, about {eta} left")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
