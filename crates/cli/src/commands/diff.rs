//! `ratelab diff A B`: compares two runs, a baseline and the current one, and lists the values
//! that moved, better or worse, for PR review; over several seeds, only moves outside the noise
//! count.

use std::path::PathBuf;

use anyhow::Context;

use super::Outcome;

/// Arguments of `ratelab diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The baseline: a run directory or its report.json.
    pub base: PathBuf,
    /// The run to compare with the baseline.
    pub head: PathBuf,
    /// Also write the comparison as Markdown (for a PR comment) to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Also write the comparison as JSON (for PR bots) to this file; `-` writes it to stdout
    /// instead of the text.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Exit with code 1 when any value got worse outside the noise. Needs at least 3 seeds a
    /// side (`ratelab run --seeds 5`): with fewer, exits 2, since it cannot tell.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Confidence level in percent of the intervals that decide what is noise: 90, 95 or 99.
    #[arg(long, value_name = "PERCENT", default_value_t = 95, value_parser = confidence)]
    pub confidence: u32,
    /// The smallest move of a mean, in percent of the base, that counts as a change.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub min_change: f64,
}

fn confidence(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|percent| results::Confidence::from_percent(*percent).is_some())
        .ok_or_else(|| format!("\"{text}\" is not a confidence level (expected 90, 95 or 99)"))
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.min_change.is_finite() && args.min_change >= 0.0,
        "--min-change {} is not allowed (expected a percentage of 0 or more, e.g. 1)",
        args.min_change
    );
    let (base, _) = super::report::read_report(&args.base)?;
    let (head, _) = super::report::read_report(&args.head)?;
    let options = report::DiffOptions {
        confidence: results::Confidence::from_percent(args.confidence).unwrap_or_default(),
        min_change_percent: args.min_change,
    };
    let diff = report::ReportDiff::with_options(&base, &head, options);
    if let Some(error) = diff.pairing_error() {
        return Err(error).with_context(|| {
            format!(
                "cannot compare {} with {}",
                args.base.display(),
                args.head.display()
            )
        });
    }
    let json_to_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    if json_to_stdout {
        crate::out!("{}", diff.json())?;
    } else {
        crate::out!("{}", diff.terminal(super::report::terminal_colour()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, diff.markdown())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = args.json.as_ref().filter(|_| !json_to_stdout) {
        std::fs::write(path, diff.json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !args.fail_on_regression {
        return Ok(Outcome::Success);
    }
    anyhow::ensure!(
        diff.enough_seeds_to_gate(),
        "--fail-on-regression needs at least {} seeds a side to tell a regression from noise, and the base has {} and the head {} (rerun both with `ratelab run SCENARIO --seeds 5`)",
        report::MIN_GATE_SEEDS,
        diff.base_seeds,
        diff.head_seeds
    );
    if diff.regressions() > 0 {
        Ok(Outcome::Failed)
    } else {
        Ok(Outcome::Success)
    }
}
