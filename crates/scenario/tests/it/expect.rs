//! The `[expect]` table: what parses into which thresholds, and the errors for mistakes, each
//! with `file:line:col`, what is wrong and what is allowed.

use scenario::{SloMetric, parse_scenario};

const BASE: &str = r#"name = "gate"
duration = "10m"

[server]
model = "gpt-4o-mini"
tier = "tier-1"

[[clients]]
name = "app"
arrival = { kind = "poisson", rpm = 100 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 50 }

[[strategies]]
kind = "none"

[[strategies]]
kind = "openai-python@2.52"

"#;

fn parse(expect: &str) -> Result<scenario::Scenario, scenario::ScenarioError> {
    parse_scenario(
        &format!("{BASE}{expect}"),
        "scenarios/gate.toml",
        &mut crate::read_from_disk,
    )
}

/// Parses `expect` and compares the thresholds as `(metric, limit, strategy)`.
#[track_caller]
fn check(expect: &str, expected: &[(SloMetric, f64, Option<&str>)]) {
    let scenario = parse(expect).unwrap_or_else(|error| panic!("{error}"));
    let actual: Vec<(SloMetric, f64, Option<&str>)> = scenario
        .expect
        .thresholds
        .iter()
        .map(|rule| (rule.metric, rule.limit, rule.strategy.as_deref()))
        .collect();
    assert_eq!(actual, expected);
}

#[track_caller]
fn check_error(expect: &str, message: &str) {
    let error = parse(expect).expect_err("the [expect] table should be rejected");
    assert_eq!(error.to_string(), message);
}

#[test]
fn no_table_means_nothing_to_check() {
    check("", &[]);
}

#[test]
fn every_threshold_parses_into_its_unit() {
    check(
        "[expect]\nmin_success_rate = 0.99\nmax_p99_latency = \"1m30s\"\nmax_amplification = 2\nmax_429_share = 0.25\nmax_gave_up = 3\nmax_early_retries = 0\n",
        &[
            (SloMetric::SuccessRate, 0.99, None),
            (SloMetric::P99Latency, 90.0, None),
            (SloMetric::Amplification, 2.0, None),
            (SloMetric::RateLimitedShare, 0.25, None),
            (SloMetric::GaveUp, 3.0, None),
            (SloMetric::EarlyRetries, 0.0, None),
        ],
    );
}

#[test]
fn per_strategy_tables_by_kind_or_label() {
    check(
        "[expect]\nmax_gave_up = 0\n[expect.strategy.none]\nmax_gave_up = 100\n[expect.strategy.\"openai-python@2.52\"]\nmax_p99_latency = \"20s\"\n",
        &[
            (SloMetric::GaveUp, 0.0, None),
            (SloMetric::GaveUp, 100.0, Some("none")),
            (SloMetric::P99Latency, 20.0, Some("openai-python@2.52")),
        ],
    );
    check(
        "[expect.strategy.openai-python]\nmin_success_rate = 1\n",
        &[(SloMetric::SuccessRate, 1.0, Some("openai-python"))],
    );
}

#[test]
fn the_most_specific_threshold_applies() {
    let scenario = parse(
        "[expect]\nmax_gave_up = 0\n[expect.strategy.openai-python]\nmax_gave_up = 5\n[expect.strategy.\"openai-python@2.52\"]\nmax_gave_up = 9\n",
    )
    .unwrap();
    let limit = |strategy: &str| {
        scenario
            .expect
            .applying_to(SloMetric::GaveUp, strategy)
            .map(|rule| rule.limit)
    };
    assert_eq!(limit("openai-python@2.52"), Some(9.0));
    assert_eq!(limit("openai-python@1.0"), Some(5.0));
    assert_eq!(limit("none"), Some(0.0));
    assert_eq!(
        scenario.expect.applying_to(SloMetric::SuccessRate, "none"),
        None
    );
    let rule = scenario
        .expect
        .applying_to(SloMetric::GaveUp, "none")
        .unwrap();
    assert_eq!(rule.location.to_string(), "scenarios/gate.toml:21:15");
}

#[test]
fn mistakes_name_the_place_and_what_is_allowed() {
    check_error(
        "[expect]\nmin_success_rate = 99\n",
        "scenarios/gate.toml:21:20: expect.min_success_rate = 99 is not allowed (expected a share from 0 to 1, e.g. 0.99)",
    );
    check_error(
        "[expect]\nmax_429_share = -0.1\n",
        "scenarios/gate.toml:21:17: expect.max_429_share = -0.1 is not allowed (expected a share from 0 to 1, e.g. 0.99)",
    );
    check_error(
        "[expect]\nmax_p99_latency = \"0s\"\n",
        "scenarios/gate.toml:21:19: expect.max_p99_latency = \"0s\" is not allowed (expected a positive duration, e.g. \"30s\")",
    );
    check_error(
        "[expect]\nmax_amplification = -1\n",
        "scenarios/gate.toml:21:21: expect.max_amplification = -1 is not allowed (expected attempts per request, 0 or more, e.g. 1.5)",
    );
    check_error(
        "[expect.strategy.none]\nmin_success_rate = 2\n",
        "scenarios/gate.toml:21:20: expect.strategy.\"none\".min_success_rate = 2 is not allowed (expected a share from 0 to 1, e.g. 0.99)",
    );
    check_error(
        "[expect.strategy.tenacity]\nmax_gave_up = 0\n",
        "scenarios/gate.toml:20:1: expect.strategy.\"tenacity\" names no strategy of this scenario (expected a label or kind of: none, openai-python@2.52)",
    );
    check_error(
        "[expect]\n",
        "scenarios/gate.toml:20:1: the [expect] table sets no threshold (expected at least one of: min_success_rate, max_p99_latency, max_amplification, max_429_share, max_gave_up, max_early_retries, max_makespan, max_storm_share; or an [expect.plan] gate)",
    );
}

#[test]
fn a_plan_gate_reads_its_tier_and_factor_with_its_place() {
    let scenario = parse("[expect.plan]\ntier = \"tier-3\"\nholds_at = 1.25\n").unwrap();
    assert!(
        scenario.expect.is_empty(),
        "a plan gate alone sets no threshold"
    );
    let gate = scenario.plan_gate.unwrap();
    assert_eq!(gate.tier, "tier-3");
    assert_eq!(gate.holds_at_thousandths, 1_250);
    assert_eq!(gate.location.to_string(), "scenarios/gate.toml:20:1");
    // Beside thresholds, which it judges with.
    let scenario = parse(
        "[expect]\nmin_success_rate = 0.95\n[expect.plan]\ntier = \"tier-2\"\nholds_at = 3\n",
    )
    .unwrap();
    assert_eq!(scenario.expect.thresholds.len(), 1);
    assert_eq!(scenario.plan_gate.unwrap().holds_at_thousandths, 3_000);
    assert!(parse("").unwrap().plan_gate.is_none());
}

#[test]
fn plan_gate_mistakes_name_the_place() {
    check_error(
        "[expect.plan]\ntier = \"tier-2\"\nholds_at = -1\n",
        "scenarios/gate.toml:22:12: expect.plan.holds_at = -1 is not allowed (expected a growth factor above 0 and at most 1000: 1 is the scenario's traffic, 1.5 half as much again)",
    );
    check_error(
        "[expect.plan]\ntier = \"tier-2\"\nholds_at = 1.0001\n",
        "scenarios/gate.toml:22:12: expect.plan.holds_at = 1.0001 has more than three decimals (write e.g. 1.125)",
    );
    check_error(
        "[expect.plan]\ntier = \"tier-6\"\nholds_at = 2\n",
        "scenarios/gate.toml:21:8: expect.plan.tier = \"tier-6\": unknown tier \"tier-6\" (expected one of: free, tier-1, tier-2, tier-3, tier-4, tier-5)",
    );
    check_error(
        "[expect]\nmax_gave_up = 0\n[expect.strategy.none.plan]\ntier = \"tier-2\"\nholds_at = 2\n",
        "scenarios/gate.toml:22:1: expect.strategy.\"none\".plan is not allowed (a plan gate judges every strategy, as `ratelab plan` does: write [expect.plan] at the top level)",
    );
}

#[test]
fn unknown_and_mistyped_keys_are_rejected_by_the_parser() {
    let error = parse("[expect]\nmin_sucess_rate = 0.9\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("scenarios/gate.toml:21:1: unknown field `min_sucess_rate`, expected one of `min_success_rate`, `max_p99_latency`"),
        "{error}"
    );
    let error = parse("[expect]\nmax_gave_up = -1\n")
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("scenarios/gate.toml:21:15: "), "{error}");
    let error = parse("[expect]\nmax_p99_latency = \"soon\"\n")
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("scenarios/gate.toml:21:19: "), "{error}");
}

#[test]
fn the_new_thresholds_parse_into_their_units() {
    check(
        "[expect]\nmax_storm_share = 0.5\n[expect.strategy.none]\nmax_storm_share = 1\n",
        &[
            (SloMetric::StormShare, 0.5, None),
            (SloMetric::StormShare, 1.0, Some("none")),
        ],
    );
    let batch = BASE.replace(
        "arrival = { kind = \"poisson\", rpm = 100 }",
        "closed_loop = { concurrency = 2, think_time = \"0s\", requests_per_worker = 50 }",
    );
    let scenario = parse_scenario(
        &format!("{batch}[expect]\nmax_makespan = \"10m\"\n"),
        "scenarios/gate.toml",
        &mut crate::read_from_disk,
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let rule = scenario
        .expect
        .applying_to(SloMetric::Makespan, "none")
        .unwrap();
    assert_eq!(rule.limit, 600.0, "seconds");
    assert_eq!(rule.location.to_string(), "scenarios/gate.toml:21:16");
}

#[test]
fn mistakes_in_the_new_thresholds_name_the_place() {
    check_error(
        "[expect]\nmax_storm_share = 1.5\n",
        "scenarios/gate.toml:21:19: expect.max_storm_share = 1.5 is not allowed (expected a share from 0 to 1, e.g. 0.99)",
    );
    // BASE's only group is open loop: there is no batch whose makespan could be bounded.
    check_error(
        "[expect]\nmax_makespan = \"10m\"\n",
        "scenarios/gate.toml:21:16: expect.max_makespan is not allowed without a batch (expected a batch for it to bound: a client group with `closed_loop = { ..., requests_per_worker = N }`)",
    );
}

#[test]
fn gate_names_the_gated_strategies_by_label() {
    let scenario = parse("[expect]\ngate = [\"openai-python@2.52\"]\nmax_gave_up = 0\n")
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        scenario.expect.gate.as_deref(),
        Some(&["openai-python@2.52".to_owned()][..])
    );
    assert!(scenario.expect.gates("openai-python@2.52"));
    assert!(!scenario.expect.gates("none"), "a baseline");
    // The baseline is still bounded: its verdicts are reported, they only do not gate.
    assert!(
        scenario
            .expect
            .applying_to(SloMetric::GaveUp, "none")
            .is_some()
    );

    // Without gate, every strategy is gated, as before gate existed.
    let scenario = parse("[expect]\nmax_gave_up = 0\n").unwrap();
    assert_eq!(scenario.expect.gate, None);
    assert!(scenario.expect.gates("none"));
}

#[test]
fn gate_mistakes_name_the_place_and_the_labels() {
    check_error(
        "[expect]\ngate = [\"none\", \"ours\"]\nmax_gave_up = 0\n",
        "scenarios/gate.toml:21:17: expect.gate names \"ours\", which is no strategy label of this scenario (expected one of: none, openai-python@2.52)",
    );
    // A kind is not a label: the gate is explicit.
    check_error(
        "[expect]\ngate = [\"openai-python\"]\nmax_gave_up = 0\n",
        "scenarios/gate.toml:21:9: expect.gate names \"openai-python\", which is no strategy label of this scenario (expected one of: none, openai-python@2.52)",
    );
    check_error(
        "[expect]\ngate = []\nmax_gave_up = 0\n",
        "scenarios/gate.toml:21:8: expect.gate is empty, so nothing would be gated (expected the labels of the strategies to gate, from: none, openai-python@2.52; or remove gate to gate every strategy)",
    );
    // Thresholds for the baseline only: the gated strategy could never fail.
    check_error(
        "[expect]\ngate = [\"openai-python@2.52\"]\n[expect.strategy.none]\nmax_gave_up = 0\n",
        "scenarios/gate.toml:21:9: expect.gate names \"openai-python@2.52\", but no threshold applies to it, so its gate could never fail (expected a threshold at the top of [expect] or in [expect.strategy.\"openai-python@2.52\"])",
    );
    check_error(
        "[expect]\nmax_gave_up = 0\n[expect.strategy.none]\ngate = [\"none\"]\n",
        "scenarios/gate.toml:23:8: expect.strategy.\"none\".gate is not allowed (gate names the gated strategies once, at the top of [expect]: write `gate = [...]` under [expect])",
    );
}
