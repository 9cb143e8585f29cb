//! `ratelab validate FILE...`: checks scenario files without running them.

use std::path::{Path, PathBuf};

use super::Outcome;

/// Arguments of `ratelab validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Reads and validates one scenario file, resolving the traces it refers to.
pub fn load(path: &Path) -> anyhow::Result<scenario::Scenario> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| anyhow::anyhow!("{name}: cannot read the scenario: {error}"))?;
    Ok(scenario::parse_scenario(&text, &name, &mut |referenced| {
        std::fs::read_to_string(referenced)
    })?)
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut failures = 0;
    for path in &args.files {
        match load(path) {
            Ok(scenario) => crate::outln!(
                "ok {}: {} client groups, {} instances, {} runs",
                path.display(),
                scenario.groups.len(),
                scenario.instance_count(),
                sim::run_count(&scenario)
            )?,
            Err(error) => {
                eprintln!("error: {error:#}");
                failures += 1;
            }
        }
    }
    if failures > 0 {
        anyhow::bail!(
            "{failures} of {} scenario files are invalid",
            args.files.len()
        );
    }
    Ok(Outcome::Success)
}
