//! SLO verdicts: table tests of evaluation, and the Markdown and JUnit renderings.

use report::{CheckedScenario, evaluate, example_report};
use scenario::{Expectations, Location, SloMetric, Threshold};

fn threshold(metric: SloMetric, limit: f64, strategy: Option<&str>) -> Threshold {
    Threshold {
        metric,
        limit,
        strategy: strategy.map(str::to_owned),
        location: Location {
            file: "scenarios/example.toml".to_owned(),
            line: 30,
            column: 20,
        },
    }
}

/// Evaluates one threshold for every strategy on the example report and compares, per run,
/// `(strategy, description, passed)`.
#[track_caller]
fn check(metric: SloMetric, limit: f64, expected: &[(&str, &str, bool)]) {
    let expectations = Expectations {
        gate: None,
        thresholds: vec![threshold(metric, limit, None)],
    };
    let verdicts = evaluate(&expectations, &example_report());
    let actual: Vec<(String, String, bool)> = verdicts
        .iter()
        .map(|verdict| (verdict.strategy.clone(), verdict.describe(), verdict.passed))
        .collect();
    let expected: Vec<(String, String, bool)> = expected
        .iter()
        .map(|(strategy, text, passed)| ((*strategy).to_owned(), (*text).to_owned(), *passed))
        .collect();
    assert_eq!(actual, expected);
}

#[test]
fn each_metric_against_the_example() {
    check(
        SloMetric::SuccessRate,
        0.5,
        &[
            ("none", "success rate 41.7% < 50.0%", false),
            ("retry-after", "success rate 80.8% >= 50.0%", true),
        ],
    );
    check(
        SloMetric::P99Latency,
        30.0,
        &[
            ("none", "p99 latency 1.49s <= 30.0s", true),
            ("retry-after", "p99 latency 35.3s > 30.0s", false),
        ],
    );
    check(
        SloMetric::Amplification,
        1.0,
        &[
            ("none", "amplification 1.00x <= 1.00x", true),
            ("retry-after", "amplification 1.97x > 1.00x", false),
        ],
    );
    check(
        SloMetric::RateLimitedShare,
        0.6,
        &[
            ("none", "429 share 58.3% <= 60.0%", true),
            ("retry-after", "429 share 58.9% <= 60.0%", true),
        ],
    );
    check(
        SloMetric::GaveUp,
        46.0,
        &[
            ("none", "gave up 140 > 46", false),
            ("retry-after", "gave up 46 <= 46", true),
        ],
    );
    check(
        SloMetric::EarlyRetries,
        0.0,
        &[
            ("none", "early retries 0 <= 0", true),
            ("retry-after", "early retries 138 > 0", false),
        ],
    );
}

#[test]
fn a_strategy_threshold_overrides_the_one_for_all() {
    let expectations = Expectations {
        gate: None,
        thresholds: vec![
            threshold(SloMetric::GaveUp, 0.0, None),
            threshold(SloMetric::GaveUp, 200.0, Some("none")),
        ],
    };
    let verdicts = evaluate(&expectations, &example_report());
    let limits: Vec<(&str, f64, bool)> = verdicts
        .iter()
        .map(|verdict| (verdict.strategy.as_str(), verdict.limit, verdict.passed))
        .collect();
    assert_eq!(limits, [("none", 200.0, true), ("retry-after", 0.0, false)]);
}

#[test]
fn a_latency_threshold_fails_when_nothing_succeeded() {
    let mut report = example_report();
    report.runs[0].latency = results::LatencySummary::default();
    let expectations = Expectations {
        gate: None,
        thresholds: vec![threshold(SloMetric::P99Latency, 60.0, Some("none"))],
    };
    let verdicts = evaluate(&expectations, &report);
    assert_eq!(verdicts.len(), 1);
    assert!(!verdicts[0].passed);
    assert_eq!(
        verdicts[0].describe(),
        "p99 latency n/a (no request succeeded) > 1m00s"
    );
}

fn checked_example() -> Vec<CheckedScenario> {
    let expectations = Expectations {
        gate: None,
        thresholds: vec![
            threshold(SloMetric::SuccessRate, 0.8, None),
            threshold(SloMetric::EarlyRetries, 0.0, Some("retry-after")),
        ],
    };
    vec![CheckedScenario::new(&expectations, &example_report())]
}

#[test]
fn verdicts_markdown_snapshot() {
    insta::assert_snapshot!(report::verdicts_markdown(&checked_example()));
}

#[test]
fn verdicts_terminal_snapshot() {
    insta::assert_snapshot!(report::verdicts_terminal(
        &checked_example(),
        report::VerdictListing::All
    ));
}

#[test]
fn verdicts_terminal_lists_only_failures_by_default_in_the_cli() {
    let text = report::verdicts_terminal(&checked_example(), report::VerdictListing::FailuresOnly);
    assert_eq!(
        text.lines().filter(|line| line.starts_with("FAIL")).count(),
        2
    );
    assert!(!text.contains("pass  "));
    assert!(text.ends_with("1 passed, 2 failed\n"));
}

#[test]
fn junit_has_one_testcase_per_run_and_threshold_and_parses() {
    let xml = report::junit_xml(&checked_example());
    insta::assert_snapshot!(xml);
    let document = roxmltree::Document::parse(&xml).unwrap();
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("2"));
    let cases: Vec<_> = document
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    let failures = cases
        .iter()
        .filter(|case| case.children().any(|child| child.has_tag_name("failure")))
        .count();
    assert_eq!(failures, 2);
}

/// The example's two strategies with `retry-after` gated and `none` a baseline; both miss a
/// success rate of 90%.
fn checked_with_a_baseline() -> Vec<CheckedScenario> {
    let expectations = Expectations {
        gate: Some(vec!["retry-after".to_owned()]),
        thresholds: vec![
            threshold(SloMetric::SuccessRate, 0.9, None),
            threshold(SloMetric::GaveUp, 150.0, None),
        ],
    };
    vec![CheckedScenario::new(&expectations, &example_report())]
}

#[test]
fn a_baseline_is_judged_but_never_fails_the_gate() {
    let checked = checked_with_a_baseline();
    let verdicts: Vec<(&str, bool, bool)> = checked[0]
        .verdicts
        .iter()
        .map(|verdict| (verdict.strategy.as_str(), verdict.gated, verdict.passed))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("none", false, false),
            ("none", false, true),
            ("retry-after", true, false),
            ("retry-after", true, true),
        ]
    );
    assert!(!checked[0].passed(), "the gated strategy misses");

    // Gating only the baseline's threshold that passes: the gate passes though `none` misses.
    let expectations = Expectations {
        gate: Some(vec!["retry-after".to_owned()]),
        thresholds: vec![
            threshold(SloMetric::SuccessRate, 0.9, Some("none")),
            threshold(SloMetric::SuccessRate, 0.8, Some("retry-after")),
        ],
    };
    let checked = CheckedScenario::new(&expectations, &example_report());
    assert!(checked.passed());
    assert!(checked.verdicts.iter().any(|verdict| !verdict.passed));
}

#[test]
fn baselines_read_as_such_in_the_terminal_markdown_and_junit() {
    let checked = checked_with_a_baseline();
    let quiet = report::verdicts_terminal(&checked, report::VerdictListing::FailuresOnly);
    assert_eq!(
        quiet,
        "FAIL  example  retry-after  success rate 80.8% < 90.0%  (scenarios/example.toml:30:20)\n\
         1 passed, 1 failed; baselines (not gated): 1 met, 1 missed\n"
    );
    let all = report::verdicts_terminal(&checked, report::VerdictListing::All);
    assert!(
        all.starts_with(
            "base  example  none  success rate 41.7% < 90.0%  (scenarios/example.toml:30:20)\n\
             base  example  none  gave up 140 <= 150  (scenarios/example.toml:30:20)\n"
        ),
        "{all}"
    );

    let markdown = report::verdicts_markdown(&checked);
    assert!(
        markdown.starts_with(
            "### ratelab check: 1 passed, 1 failed; baselines (not gated): 1 met, 1 missed ❌"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains(r"| `none` | success rate \>= 90.0% | 41.7% | baseline: missed |"),
        "{markdown}"
    );
    assert!(
        markdown.contains(r"| `none` | gave up \<= 150 | 140 | baseline: met |"),
        "{markdown}"
    );

    let xml = report::junit_xml(&checked);
    let document = roxmltree::Document::parse(&xml).unwrap();
    let root = document.root_element();
    assert_eq!(root.attribute("tests"), Some("4"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("skipped"), Some("2"));
    let skipped: Vec<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("skipped"))
        .filter_map(|node| node.attribute("message"))
        .collect();
    assert_eq!(
        skipped,
        [
            "baseline, not gated (missed): success rate 41.7% < 90.0% (scenarios/example.toml:30:20)",
            "baseline, not gated (met): gave up 140 <= 150 (scenarios/example.toml:30:20)",
        ]
    );
}

#[test]
fn the_storm_share_and_the_makespan_as_thresholds() {
    // The example's retries all wait for the next minute: 98 retries in a second, no first
    // attempt among them. `none` never has ten attempts in a second: a share of 0.
    check(
        SloMetric::StormShare,
        0.5,
        &[
            ("none", "storm share 0.0% <= 50.0%", true),
            ("retry-after", "storm share 100.0% > 50.0%", false),
        ],
    );
    let mut report = example_report();
    report.runs[0].batch = Some(results::BatchResult {
        requests: 240,
        not_started: 0,
        makespan_ms: Some(95_500),
    });
    report.runs[1].batch = Some(results::BatchResult {
        requests: 240,
        not_started: 12,
        makespan_ms: None,
    });
    let expectations = Expectations {
        gate: None,
        thresholds: vec![threshold(SloMetric::Makespan, 120.0, None)],
    };
    let verdicts: Vec<(String, bool)> = evaluate(&expectations, &report)
        .iter()
        .map(|verdict| (verdict.describe(), verdict.passed))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("makespan 1m35s <= 2m00s".to_owned(), true),
            (
                "makespan n/a (the batch did not finish) > 2m00s".to_owned(),
                false
            ),
        ]
    );
}
