//! `ratelab run SCENARIO`: simulates a scenario, prints a summary per strategy and writes
//! every report format: `report.json`, `summary.md`, `index.html` and the SVG charts (and
//! optionally `trace.jsonl`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::Outcome;

/// Arguments of `ratelab run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Seed of every random draw (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output directory (default: reports/<scenario-name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare these strategies instead of the scenario's, in the compact form
    /// `[LABEL=]name[:key=value,...]` (e.g. `openai-python@2.52`,
    /// `'jitter=full-jitter:base=1s,cap=60s'`); the optional LABEL names the strategy in tables.
    #[arg(long = "strategy", value_name = "SPEC")]
    pub strategies: Vec<String>,
    /// Also write every attempt to trace.jsonl in the output directory (of the first seed,
    /// with --seeds).
    #[arg(long)]
    pub trace: bool,
    /// Run every strategy on N seeds (default: the scenario's `seeds`, else 1): the first is
    /// --seed or the scenario's, the others derive from it. Reports give each headline metric
    /// as a mean with a 95% confidence interval.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(scenario::MAX_SEEDS)))]
    pub seeds: Option<u32>,
    /// Worker threads for the runs (default: every core). The report is the same whatever the
    /// number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// Run even when the estimated work is over the ceilings (200 million requests before
    /// retries across every run, or 8 GiB of memory); `ratelab validate` prints the estimate.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub catalog: super::validate::CatalogArg,
    /// Show every scoreboard column, with the server on every row, however wide the table gets
    /// (by default the table fits 100 columns).
    #[arg(long)]
    pub wide: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog_file = args.catalog.read()?;
    let mut scenario = super::validate::load_with_catalog(&args.scenario, catalog_file.as_ref())?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let seeds = args.seeds.unwrap_or(scenario.seeds);
    let jobs = args
        .jobs
        .map_or_else(crate::runner::default_jobs, |jobs| jobs as usize);
    if !args.strategies.is_empty() {
        scenario.strategies = strategies_from_flags(&args.strategies)?;
    }
    let work = scenario::estimate_work(&scenario, seeds);
    if let Some(reason) = work.over_ceiling(jobs as u64)
        && !args.force
    {
        anyhow::bail!(
            "{}: not run: {reason}; shorten the scenario or lower its rates, instances, strategies or seeds, or pass --force to run it anyway",
            args.scenario.display()
        );
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("reports").join(&scenario.name));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;

    let report = if args.trace {
        let path = out.join("trace.jsonl");
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = std::io::BufWriter::new(file);
        let mut write_error = None;
        let mut write = |record: &results::AttemptRecord| {
            if write_error.is_none() {
                let line = serde_json::to_writer(&mut writer, record)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writer.write_all(b"\n"));
                write_error = line.err();
            }
        };
        let report = crate::runner::simulate_seeds(&scenario, seeds, jobs, Some(&mut write))?;
        if let Some(error) = write_error {
            return Err(error).with_context(|| format!("cannot write {}", path.display()));
        }
        writer
            .flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        report
    } else {
        crate::runner::simulate_seeds(&scenario, seeds, jobs, None)?
    };

    crate::out!(
        "{}",
        report::terminal_table_with(&report, super::report::table_options(args.wide))
    )?;
    super::report::write_run_directory(&out, &report)?;
    Ok(Outcome::Success)
}

/// The strategies of repeated `--strategy [LABEL=]SPEC` flags, each checked by the registry;
/// unlabelled ones take short names, made unique among the ones given. Shared by `run` and
/// `plan`.
pub fn strategies_from_flags(flags: &[String]) -> anyhow::Result<Vec<scenario::NamedStrategy>> {
    let registry = retry::Registry::with_builtins();
    let entries = flags
        .iter()
        .map(|text| {
            let (label, spec_text) = split_label(text);
            let spec: retry::StrategySpec = spec_text.parse()?;
            registry.build(&spec)?;
            Ok((label.map(str::to_owned), spec))
        })
        .collect::<Result<Vec<_>, retry::SpecError>>()
        .context("--strategy")?;
    let mut seen = std::collections::BTreeSet::new();
    for label in entries.iter().filter_map(|(label, _)| label.as_deref()) {
        anyhow::ensure!(
            seen.insert(label),
            "--strategy: the label \"{label}\" is given twice (give each strategy its own label, e.g. --strategy 'ours=full-jitter')"
        );
    }
    Ok(scenario::NamedStrategy::label_all(entries))
}

/// Splits `LABEL=SPEC` into its label and spec; a plain spec has no label. A spec never has an
/// `=` before its first `:`, `@`, `(` or `,`, so the two forms cannot be confused.
fn split_label(text: &str) -> (Option<&str>, &str) {
    match text.split_once('=') {
        Some((label, spec))
            if !label.trim().is_empty() && !label.contains([':', '@', '(', ')', ',']) =>
        {
            (Some(label.trim()), spec.trim())
        }
        _ => (None, text),
    }
}

#[cfg(test)]
mod tests {
    use super::split_label;

    #[test]
    fn a_label_comes_before_the_first_equals_sign_of_a_spec() {
        assert_eq!(split_label("none"), (None, "none"));
        assert_eq!(
            split_label("full-jitter:base=1s,cap=60s"),
            (None, "full-jitter:base=1s,cap=60s")
        );
        assert_eq!(
            split_label("sdk default=openai-python@2.52"),
            (Some("sdk default"), "openai-python@2.52")
        );
        assert_eq!(
            split_label("paced=header-pacing:inner=(openai-python@2.52)"),
            (Some("paced"), "header-pacing:inner=(openai-python@2.52)")
        );
    }
}
