//! Merged completions change nothing: an untraced run that records unobserved successes at
//! admission gives the same `RunResult`, byte for byte in JSON, as the general path that
//! schedules every completion, on every shipped and bench scenario; and it does merge.

use scenario::Scenario;
use sim::{Merging, SimOptions, simulate_run_merging};

use crate::toml_files;

/// Every run of `scenario` on both paths, untraced: the JSON of each pair must be equal.
/// Returns the successes merged in all.
fn merged_and_identical(scenario: &Scenario, name: &str) -> u64 {
    let general = SimOptions {
        general_path: true,
        ..SimOptions::default()
    };
    let mut merged = 0;
    for index in 0..sim::run_count(scenario) {
        let (fast, merging) = simulate_run_merging(scenario, index, SimOptions::default())
            .expect("the run simulates");
        let (slow, none) =
            simulate_run_merging(scenario, index, general).expect("the run simulates");
        assert_eq!(
            none,
            Merging::default(),
            "{name} run {index}: the general path merged"
        );
        let count = merging.merged;
        let (fast, slow) = (
            serde_json::to_string(&fast).expect("results serialize"),
            serde_json::to_string(&slow).expect("results serialize"),
        );
        assert!(
            fast == slow,
            "{name} run {index}: merging {count} completions changed the result"
        );
        merged += count;
    }
    merged
}

/// Each shipped scenario at full length, each bench scenario's first ten simulated minutes
/// (the day-long one is 43 million attempts), on parallel threads.
#[test]
fn every_shipped_and_bench_scenario_gives_identical_results_on_both_paths() {
    let mut work: Vec<(String, Scenario)> = toml_files(&crate::scenarios_dir())
        .iter()
        .map(|path| (path.display().to_string(), crate::load(path)))
        .collect();
    let ten_minutes = std::time::Duration::from_secs(600);
    let benches = crate::scenarios_dir().join("../benches/scenarios");
    work.extend(toml_files(&benches).iter().map(|path| {
        let scenario = crate::load(path).shortened(ten_minutes, std::time::Duration::from_secs(60));
        (path.display().to_string(), scenario)
    }));
    assert!(work.len() >= 14, "found {} scenarios", work.len());
    let merged: Vec<(String, u64)> = std::thread::scope(|scope| {
        let checks: Vec<_> = work
            .iter()
            .map(|(name, scenario)| {
                scope.spawn(move || (name.clone(), merged_and_identical(scenario, name)))
            })
            .collect();
        checks
            .into_iter()
            .map(|check| {
                check
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    // The proof is not vacuous: the shortcut ran where it applies.
    for (name, count) in &merged {
        if name.ends_with("jitter-over-limit.toml") || name.ends_with("steady-under-limit.toml") {
            assert!(*count > 1_000, "{name}: only {count} completions merged");
        }
    }
}

/// One organization whose budget runs out mid-run, with full jitter (which ignores
/// successes): merging stops where spend nears the cap, the run starts again on the general
/// path, and the result is the general path's.
#[test]
fn a_budget_that_runs_out_mid_run_gives_the_general_paths_result() {
    let scenario = crate::parse(
        r#"name = "budget"
duration = "2m"
drain = "10s"
[server]
model = "gpt-4o-mini"
tier = "tier-5"
[[server.organizations]]
id = "org-lab"
budget_usd = 0.002
[[server.organizations.projects]]
id = "proj_lab"
keys = ["sk-lab-000000001"]
[[clients]]
name = "lab"
key = "sk-lab-000000001"
arrival = { kind = "poisson", rpm = 600 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[strategies]]
kind = "full-jitter"
"#,
    );
    let general = SimOptions {
        general_path: true,
        ..SimOptions::default()
    };
    let (fast, merging) = simulate_run_merging(&scenario, 0, SimOptions::default()).unwrap();
    let (slow, _) = simulate_run_merging(&scenario, 0, general).unwrap();
    // $0.002 at gpt-4o-mini's prices is about 120 of these requests: the budget binds.
    assert!(slow.totals.succeeded > 50, "{:?}", slow.totals);
    assert!(slow.totals.rate_limited > 0, "{:?}", slow.totals);
    assert_eq!(
        serde_json::to_string(&fast).unwrap(),
        serde_json::to_string(&slow).unwrap()
    );
    assert_eq!(
        merging,
        Merging {
            merged: 0,
            restarted: true
        },
        "the run that merged was thrown away"
    );
}

/// Closed-loop workers start their next request when one completes, and budgets learn from
/// successes: neither merges.
#[test]
fn observed_successes_are_never_merged() {
    let closed = crate::parse(
        r#"name = "closed"
duration = "1m"
[server]
model = "gpt-4o-mini"
tier = "tier-5"
[[clients]]
name = "workers"
closed_loop = { concurrency = 4, think_time = "100ms" }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[strategies]]
kind = "full-jitter"
"#,
    );
    let (result, merging) = simulate_run_merging(&closed, 0, SimOptions::default()).unwrap();
    assert!(result.totals.succeeded > 100);
    assert_eq!(merging, Merging::default());

    let budgeted = crate::parse(
        r#"name = "open"
duration = "1m"
[server]
model = "gpt-4o-mini"
tier = "tier-5"
[[clients]]
name = "app"
arrival = { kind = "poisson", rpm = 600 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[strategies]]
kind = "full-jitter"
[[strategies]]
kind = "aws-retry-quota"
inner = { kind = "full-jitter" }
"#,
    );
    let (_, jitter) = simulate_run_merging(&budgeted, 0, SimOptions::default()).unwrap();
    let (_, quota) = simulate_run_merging(&budgeted, 1, SimOptions::default()).unwrap();
    assert!(jitter.merged > 100, "full jitter merged {jitter:?}");
    assert_eq!(
        quota,
        Merging::default(),
        "AWS's retry quota refunds on success"
    );
}
