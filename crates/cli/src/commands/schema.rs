//! `ratelab schema`: prints the JSON Schema of scenario files, for editors.

use super::Outcome;

/// Arguments of `ratelab schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    crate::outln!("{}", scenario::json_schema())?;
    Ok(Outcome::Success)
}
