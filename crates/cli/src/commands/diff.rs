//! `ratelab diff A B`: compares two runs, a baseline and the current one, and lists the values
//! that moved, better or worse, for PR review.

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
    /// Exit with code 1 when any value got worse.
    #[arg(long)]
    pub fail_on_regression: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let (base, _) = super::report::read_report(&args.base)?;
    let (head, _) = super::report::read_report(&args.head)?;
    let diff = report::ReportDiff::new(&base, &head);
    crate::out!("{}", diff.terminal(super::report::terminal_colour()))?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, diff.markdown())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.fail_on_regression && diff.regressions() > 0 {
        Ok(Outcome::Failed)
    } else {
        Ok(Outcome::Success)
    }
}
