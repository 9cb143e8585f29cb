//! Every scenario in `scenarios/` validates and runs, twice to the same bytes, and differently
//! under another seed.

use std::path::PathBuf;

fn shipped_scenarios() -> Vec<PathBuf> {
    crate::toml_files(&crate::scenarios_dir())
}

#[test]
fn at_least_ten_scenarios_ship_each_opening_with_a_comment() {
    let paths = shipped_scenarios();
    assert!(paths.len() >= 10, "only {} scenarios ship", paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(
            text.starts_with("# "),
            "{} should open with a comment explaining the situation",
            path.display()
        );
    }
}

/// Full runs twice (determinism), then a shortened run under another seed: the seed changes
/// the draws from the first minutes on, so the full length is not needed to see it. Scenarios
/// run on parallel threads to keep CI time down.
#[test]
fn every_shipped_scenario_runs_deterministically_and_depends_on_its_seed() {
    std::thread::scope(|scope| {
        let checks: Vec<_> = shipped_scenarios()
            .into_iter()
            .map(|path| scope.spawn(move || check_shipped(&path)))
            .collect();
        for check in checks {
            if let Err(panic) = check.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

fn check_shipped(path: &std::path::Path) {
    let scenario = crate::load(path);
    let (report, first_json, first_trace) = crate::simulate(&scenario);
    let (_, second_json, second_trace) = crate::simulate(&scenario);
    assert!(
        first_json == second_json && first_trace == second_trace,
        "{} with seed {} gave different results on two runs",
        path.display(),
        scenario.seed
    );
    assert_eq!(report.runs.len(), sim::run_count(&scenario));
    assert!(
        report.runs.iter().all(|run| run.totals.requests > 0),
        "{}: every run has requests",
        path.display()
    );

    let minutes = std::time::Duration::from_secs(180);
    let short = scenario.shortened(minutes, minutes);
    let mut reseeded = short.clone();
    reseeded.seed = short.seed.wrapping_add(1);
    let (_, short_json, _) = crate::simulate(&short);
    let (_, reseeded_json, _) = crate::simulate(&reseeded);
    assert_ne!(
        short_json,
        reseeded_json,
        "{}: seeds {} and {} gave identical reports",
        path.display(),
        short.seed,
        reseeded.seed
    );
}
