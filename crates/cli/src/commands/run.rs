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
    /// `name[:key=value,...]` (e.g. `openai-python@2.52`, `full-jitter:base=1s,cap=60s`).
    #[arg(long = "strategy", value_name = "SPEC")]
    pub strategies: Vec<String>,
    /// Also write every attempt to trace.jsonl in the output directory.
    #[arg(long)]
    pub trace: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut scenario = super::validate::load(&args.scenario)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if !args.strategies.is_empty() {
        let registry = retry::Registry::with_builtins();
        scenario.strategies = args
            .strategies
            .iter()
            .map(|text| {
                let spec: retry::StrategySpec = text.parse()?;
                registry.build(&spec)?;
                Ok(spec)
            })
            .collect::<Result<_, retry::SpecError>>()
            .context("--strategy")?;
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
        let report = sim::simulate(&scenario, &mut |record| {
            if write_error.is_none() {
                let line = serde_json::to_writer(&mut writer, record)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writer.write_all(b"\n"));
                write_error = line.err();
            }
        })?;
        if let Some(error) = write_error {
            return Err(error).with_context(|| format!("cannot write {}", path.display()));
        }
        writer
            .flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        report
    } else {
        sim::simulate(&scenario, &mut |_| {})?
    };

    crate::out!(
        "{}",
        report::terminal_table(&report, super::report::terminal_colour())
    )?;
    super::report::write_run_directory(&out, &report)?;
    Ok(Outcome::Success)
}
