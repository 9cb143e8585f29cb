//! `ratelab check SCENARIO... [--junit FILE]`: runs scenarios and gates on their `[expect]`
//! thresholds and their capacity gate (`[expect.plan]`: a tier that must still hold at a growth
//! factor, probed by the planner). Exit 0 when every threshold of every gated strategy passes
//! and every capacity gate holds, 1 when any fails, 2 for usage errors or bad scenarios (mapped
//! in `main.rs`). Strategies outside `[expect]` `gate` are baselines: their verdicts are
//! reported and never change the exit code.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::Outcome;

/// Arguments of `ratelab check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files with an [expect] table.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Write JUnit XML here: one testcase per scenario x strategy x threshold (a baseline's,
    /// outside [expect] gate, is skipped), and one per capacity gate ([expect.plan]).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write each scenario's report (every format) to DIR/<scenario-name>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of every random draw (default: each scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// List passing thresholds and baselines' verdicts too, not only failures.
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub catalog: super::validate::CatalogArg,
    /// Show every scoreboard column, with the server on every row, however wide the table gets
    /// (by default the table fits 100 columns).
    #[arg(long)]
    pub wide: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    // Load every scenario before running any, so a typo fails fast with exit code 2.
    let catalog_file = args.catalog.read()?;
    let mut scenarios = Vec::with_capacity(args.scenarios.len());
    for path in &args.scenarios {
        let mut scenario = super::validate::load_with_catalog(path, catalog_file.as_ref())?;
        if scenario.expect.is_empty() && scenario.plan_gate.is_none() {
            // A glob such as scenarios/*.toml may include scenarios that are not gates.
            eprintln!("note: {} has no [expect] table; skipped", path.display());
            continue;
        }
        if let Some(seed) = args.seed {
            scenario.seed = seed;
        }
        // A capacity gate that cannot plan (a replayed trace, a timeline that changes limits)
        // is bad input too: refuse it before anything runs.
        let gate = match &scenario.plan_gate {
            Some(gate) => {
                let catalog = super::plan::scenario_catalog(&scenario, path)?;
                let spec = plan::gate_spec(&scenario, gate, catalog);
                let planner = plan::Planner::new(spec)
                    .with_context(|| format!("{}: expect.plan: cannot plan", path.display()))?;
                Some((planner, gate.clone()))
            }
            None => None,
        };
        scenarios.push((scenario, gate));
    }

    if scenarios.is_empty() {
        anyhow::bail!(
            "no [expect] table in any scenario, so nothing to check (add thresholds such as `[expect]` `min_success_rate = 0.99`, or use `ratelab run`)"
        );
    }

    let jobs = crate::runner::default_jobs();
    let mut checked = Vec::with_capacity(scenarios.len());
    let mut summaries = String::new();
    for (scenario, gate) in &mut scenarios {
        // One seed, as `sim::simulate` runs it, with the scenario's runs (server variants x
        // strategies) spread over the cores: the same report on any thread count.
        let report = crate::runner::simulate_seeds(scenario, 1, jobs, None)
            .with_context(|| format!("scenario {}", scenario.name))?;
        crate::out!(
            "{}",
            report::terminal_table_with(&report, super::report::table_options(args.wide))
        )?;
        if let Some(out) = &args.out {
            super::report::write_run_directory(&out.join(&scenario.name), &report)?;
        }
        summaries.push_str(&report::summary_markdown(&report));
        summaries.push('\n');
        let mut verdicts = report::CheckedScenario::new(&scenario.expect, &report);
        if let Some((planner, gate)) = gate {
            let hidden = indicatif::ProgressBar::hidden();
            let plan = super::plan::run_rounds(planner, jobs, &hidden)
                .with_context(|| format!("scenario {}: expect.plan", scenario.name))?;
            verdicts = verdicts.with_plan(plan::gate_check(&plan, gate));
        }
        checked.push(verdicts);
    }
    let listing = if args.verbose {
        report::VerdictListing::All
    } else {
        report::VerdictListing::FailuresOnly
    };
    crate::out!("{}", report::verdicts_terminal(&checked, listing))?;

    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit_xml(&checked))
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        let markdown = format!("{}\n{summaries}", report::verdicts_markdown(&checked));
        // The step summary is shared by every step of a job: append, never replace.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(markdown.as_bytes()))
            .with_context(|| {
                format!("cannot append to $GITHUB_STEP_SUMMARY ({})", path.display())
            })?;
    }

    if checked.iter().all(report::CheckedScenario::passed) {
        Ok(Outcome::Success)
    } else {
        Ok(Outcome::Failed)
    }
}
