//! Reports of a small simulated scenario: snapshots of `report.json` and `summary.md`, and the
//! same seed rendering to the same bytes.

/// Two minutes at 1,050 requests a minute against Tier 1's 500 RPM (a bucket of 500 refilled at
/// 500 a minute): the limit bites after the first minute, so 429s, retries, give-ups and an
/// undrained backlog all show up.
const SCENARIO: &str = r#"
name = "small-overload"
description = "1,050 requests a minute for two minutes against 500 RPM"
seed = 5
duration = "2m"
drain = "1m"

[server]
model = "gpt-4o-mini"
tier = "tier-1"

[[clients]]
name = "app"
instances = 3
arrival = { kind = "poisson", rpm = 350 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "uniform", min = 10, max = 40 }

[[strategies]]
kind = "none"

[[strategies]]
kind = "openai-python@2.52"

[metrics]
bin = "10s"
"#;

fn simulate(seed: u64) -> report::RunReport {
    let mut scenario = scenario::parse_scenario(SCENARIO, "small-overload.toml", &mut |path| {
        std::fs::read_to_string(path)
    })
    .expect("the scenario is valid");
    scenario.seed = seed;
    sim::simulate(&scenario, &mut |_| {}).expect("the scenario simulates")
}

#[test]
fn simulated_report_json_snapshot() {
    insta::assert_snapshot!(report::report_json(&simulate(5)));
}

#[test]
fn simulated_summary_markdown_snapshot() {
    insta::assert_snapshot!(report::summary_markdown(&simulate(5)));
}

#[test]
fn the_same_seed_renders_byte_identical_files_and_another_seed_does_not() {
    let first = report::render_all(&simulate(5)).unwrap();
    let second = report::render_all(&simulate(5)).unwrap();
    assert_eq!(first, second, "seed 5 rendered differently twice");
    let other = report::render_all(&simulate(6)).unwrap();
    let json = |files: &[report::RenderedFile]| files[0].bytes.clone();
    assert_ne!(
        json(&first),
        json(&other),
        "seeds 5 and 6 gave the same report.json"
    );
}

/// A one-second scenario: 150 requests at once against 120 RPM. Not retrying, or retrying at
/// once, gets 80% through within a second and gives up the rest; honouring `retry-after`
/// gets all through over 15 seconds of the drain.
const ONE_SECOND: &str = r#"
name = "one-second-burst"
description = "150 requests at once against 120 RPM, for one second"
seed = 1
duration = "1s"
drain = "1m"

[server]
model = "gpt-4o-mini"
limits = { rpm = 120, tpm = 1000000, rejected_requests = "free" }

[[clients]]
name = "app"
arrival = { kind = "burst", count = 150, at = "0s" }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 20 }

[[strategies]]
kind = "none"

[[strategies]]
kind = "fixed"
delay = "0s"

[[strategies]]
kind = "honour-retry-after"
inner = { kind = "full-jitter", base = "1s", cap = "60s", max-attempts = 30 }
"#;

#[test]
fn in_a_one_second_scenario_runs_that_fail_fast_get_no_goodput_or_latency_mark() {
    let scenario = scenario::parse_scenario(ONE_SECOND, "one-second.toml", &mut |path| {
        std::fs::read_to_string(path)
    })
    .expect("the scenario is valid");
    let report = sim::simulate(&scenario, &mut |_| {}).expect("the scenario simulates");
    let success: Vec<f64> = report
        .runs
        .iter()
        .map(|run| run.totals.success_rate())
        .collect();
    assert_eq!(success, [0.8, 0.8, 1.0]);
    let goodput: Vec<f64> = report
        .runs
        .iter()
        .map(|run| run.analysis.goodput.requests_per_minute)
        .collect();
    // Over the 61-second horizon: 120 and 150 successes. Up to the last success, the runs that
    // gave up within the first second showed 7,200/min against 568/min.
    assert_eq!(goodput, [118.033, 118.033, 147.541]);

    let board = report::Scoreboard::of(&report);
    let marked = |row: usize| -> Vec<&str> {
        board
            .columns
            .iter()
            .zip(&board.rows[row].cells)
            .filter(|(_, cell)| cell.best)
            .map(|(column, _)| column.title)
            .collect()
    };
    assert_eq!(marked(0), Vec::<&str>::new(), "none, 80% success");
    assert_eq!(
        marked(1),
        Vec::<&str>::new(),
        "immediate retry, 80% success"
    );
    assert_eq!(
        marked(2),
        [
            "success",
            "gave up",
            "429s",
            "amplif.",
            "p50",
            "p99",
            "goodput",
            "early retries",
            "drain"
        ],
        "honour-retry-after, the only run at the 99% floor"
    );
}
