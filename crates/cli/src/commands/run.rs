//! `ratelab run SCENARIO`: simulates a scenario, prints a summary per strategy and writes
//! `report.json` (and optionally `trace.jsonl`).

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

    print!("{}", summary_table(&report));
    let path = out.join("report.json");
    let mut json = serde_json::to_string_pretty(&report)?;
    json.push('\n');
    std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(Outcome::Success)
}

/// The per-run summary: requests, succeeded, gave up, 429s, attempts, amplification, latency.
fn summary_table(report: &scenario::RunReport) -> String {
    let header = [
        "server",
        "strategy",
        "requests",
        "succeeded",
        "gave up",
        "unfinished",
        "429s",
        "attempts",
        "amplif.",
        "p50",
        "p99",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for run in &report.runs {
        let totals = &run.totals;
        rows.push(vec![
            run.server.clone(),
            run.strategy.clone(),
            totals.requests.to_string(),
            totals.succeeded.to_string(),
            totals.gave_up.to_string(),
            totals.unfinished.to_string(),
            totals.rate_limited.to_string(),
            totals.attempts.to_string(),
            format!("{:.2}", totals.amplification()),
            format_latency(run.latency.p50_us, run.latency.count),
            format_latency(run.latency.p99_us, run.latency.count),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut table = format!("{} (seed {})\n", report.scenario.name, report.scenario.seed);
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if column < 2 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        table.push_str(cells.join("  ").trim_end());
        table.push('\n');
    }
    table
}

fn format_latency(micros: u64, count: u64) -> String {
    if count == 0 {
        "-".to_owned()
    } else if micros >= 10_000_000 {
        format!("{:.1}s", micros as f64 / 1e6)
    } else {
        format!("{}ms", micros / 1_000)
    }
}
