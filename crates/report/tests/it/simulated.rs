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
