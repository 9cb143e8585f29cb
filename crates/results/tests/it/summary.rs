//! The scenario's summary in `report.json`: what it keeps of a validated scenario (its server
//! variants, the `[expect]` thresholds and gate), through JSON and back.

use results::ScenarioSummary;
use scenario::{Scenario, parse_scenario};

const BASE: &str = r#"name = "summary"
duration = "1m"

[server]
model = "gpt-4o-mini"
tier = "tier-1"
compare_tiers = ["tier-2"]
limits = { tpm = 1000 }

[[clients]]
name = "app"
arrival = { kind = "constant", rpm = 60 }
prompt_tokens = { kind = "fixed", value = 10 }
completion_tokens = { kind = "fixed", value = 10 }

[[strategies]]
kind = "none"

"#;

fn parse(expect: &str) -> Scenario {
    parse_scenario(
        &format!("{BASE}{expect}"),
        "scenarios/summary.toml",
        &mut crate::read_from_disk,
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn the_summary_names_each_server_variants_tier() {
    let summary = ScenarioSummary::of(&parse(""));
    let tiers: Vec<_> = summary
        .servers
        .iter()
        .map(|server| (server.label.as_str(), server.tier.as_deref()))
        .collect();
    assert_eq!(
        tiers,
        [("tier-1", Some("tier-1")), ("tier-2", Some("tier-2"))]
    );
    assert!(
        summary
            .servers
            .iter()
            .all(|server| server.limits.tpm == Some(1000))
    );
}

#[test]
fn the_report_summary_carries_the_thresholds_through_json() {
    let scenario = parse(
        "[expect]\nmin_success_rate = 0.95\nmax_p99_latency = \"30s\"\n[expect.strategy.none]\nmin_success_rate = 0.5\n",
    );
    let summary = ScenarioSummary::of(&scenario);
    assert_eq!(summary.expect, scenario.expect);
    let json = serde_json::to_string(&summary).unwrap();
    assert!(
        json.contains(r#"{"metric":"min_success_rate","limit":0.95,"location":{"file":"scenarios/summary.toml","line":20,"column":20}}"#),
        "{json}"
    );
    assert!(json.contains(r#""strategy":"none""#), "{json}");
    let parsed: ScenarioSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, summary);
}

#[test]
fn a_report_summary_without_thresholds_has_no_expect_key() {
    let json = serde_json::to_string(&ScenarioSummary::of(&parse(""))).unwrap();
    assert!(!json.contains("expect"), "{json}");
}

#[test]
fn the_report_summary_carries_the_gate_through_json() {
    let summary = ScenarioSummary::of(&parse("[expect]\ngate = [\"none\"]\nmax_gave_up = 0\n"));
    let json = serde_json::to_string(&summary).unwrap();
    assert!(json.contains(r#""gate":["none"]"#), "{json}");
    let parsed: ScenarioSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, summary);
    assert_eq!(parsed.expect.gate, Some(vec!["none".to_owned()]));
}
