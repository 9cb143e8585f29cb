//! `ratelab schema`: prints the JSON Schema of scenario files (or, with `--server`, of a
//! server config), for editors.

use super::Outcome;

/// Arguments of `ratelab schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The schema of a `ratelab serve --config` file instead: the server model's config, the
    /// same schema as a scenario's `[server]` table.
    #[arg(long)]
    pub server: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let schema = if args.server {
        model::json_schema()
    } else {
        scenario::json_schema()
    };
    crate::outln!("{schema}")?;
    Ok(Outcome::Success)
}
