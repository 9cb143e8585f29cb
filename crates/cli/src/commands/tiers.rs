//! `ratelab tiers`: prints the tier catalog.

use super::Outcome;

/// Arguments of `ratelab tiers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show only this model (e.g. gpt-4o-mini).
    #[arg(long)]
    pub model: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("the tier catalog is not built yet")
}
