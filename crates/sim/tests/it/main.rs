//! Integration tests of the simulator: one binary, one module per feature.

mod batch;
mod deadline;
mod headers;
mod invariants;
mod merged;
mod organizations;
mod shipped;
mod storm;
mod timeline;

use std::path::{Path, PathBuf};

use results::{AttemptRecord, RunReport};
use scenario::Scenario;

/// The repository's `scenarios/` folder.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// The `.toml` files of `folder`, sorted.
pub fn toml_files(folder: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .collect();
    paths.sort();
    paths
}

/// Loads a scenario file the way the CLI does.
pub fn load(path: &Path) -> Scenario {
    let text = std::fs::read_to_string(path).expect("the scenario file is readable");
    scenario::parse_scenario(&text, &path.display().to_string(), &mut |referenced| {
        std::fs::read_to_string(referenced)
    })
    .unwrap_or_else(|error| panic!("{error}"))
}

/// Loads a scenario from text with no referenced files.
pub fn parse(text: &str) -> Scenario {
    scenario::parse_scenario(text, "test.toml", &mut |referenced| {
        std::fs::read_to_string(referenced)
    })
    .unwrap_or_else(|error| panic!("{error}"))
}

/// Simulates and returns the report, its JSON and every attempt.
pub fn simulate(scenario: &Scenario) -> (RunReport, String, Vec<AttemptRecord>) {
    let mut attempts = Vec::new();
    let report = sim::simulate(scenario, &mut |record| attempts.push(*record))
        .unwrap_or_else(|error| panic!("{error}"));
    let json = serde_json::to_string_pretty(&report).expect("reports serialize");
    (report, json, attempts)
}
