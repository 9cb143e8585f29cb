//! `ratelab check`: exit 0 when every threshold passes, 1 when one fails, 2 for bad input; the
//! JUnit file and the GitHub step summary.

use crate::{assert_exit, fixture, ratelab, ratelab_with_env, scratch_dir};

#[test]
fn passing_thresholds_exit_0_and_write_junit_and_the_step_summary() {
    let dir = scratch_dir("check-pass");
    let junit = dir.join("junit.xml");
    let summary = dir.join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let scenario = fixture("gate-pass.toml");
    let output = ratelab_with_env(
        &[
            "check",
            scenario.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[("GITHUB_STEP_SUMMARY", &summary)],
    );
    assert_exit(&output, 0);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("12 passed, 0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    // Two strategies x six thresholds.
    assert_eq!(xml.matches("<testcase ").count(), 12, "{xml}");
    assert!(!xml.contains("<failure"));
    let markdown = std::fs::read_to_string(&summary).unwrap();
    assert!(
        markdown.starts_with("earlier step\n### ratelab check: 12 passed, 0 failed"),
        "{markdown}"
    );
    assert!(markdown.contains("### ratelab: gate-pass"));
}

#[test]
fn a_failing_threshold_exits_1_and_is_a_junit_failure() {
    let dir = scratch_dir("check-fail");
    let junit = dir.join("junit.xml");
    let output = ratelab(&[
        "check",
        fixture("gate-pass.toml").to_str().unwrap(),
        fixture("gate-fail.toml").to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("22 passed, 2 failed"), "{stdout}");
    assert!(
        stdout.contains("FAIL  gate-fail  none  p99 latency"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2);
    assert_eq!(xml.matches("<failure ").count(), 2);
    // --out writes each scenario's report.
    assert!(dir.join("gate-fail/index.html").is_file());
    assert!(dir.join("gate-pass/report.json").is_file());
}

#[test]
fn bad_input_exits_2_with_the_place_named() {
    let bad = fixture("bad-expect.toml");
    let output = ratelab(&["check", bad.to_str().unwrap()]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bad-expect.toml:30:15: "), "{stderr}");

    let output = ratelab(&["check", fixture("no-expect.toml").to_str().unwrap()]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("no [expect] table in any scenario, so nothing to check"),
        "{stderr}"
    );

    let output = ratelab(&["check", fixture("missing.toml").to_str().unwrap()]);
    assert_exit(&output, 2);

    // A usage error: no scenario at all.
    let output = ratelab(&["check"]);
    assert_exit(&output, 2);
}

#[test]
fn scenarios_without_expect_are_skipped_among_gates() {
    let output = ratelab(&[
        "check",
        fixture("no-expect.toml").to_str().unwrap(),
        fixture("gate-pass.toml").to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("no-expect.toml has no [expect] table; skipped"),
        "{stderr}"
    );
}

#[test]
fn baselines_outside_the_gate_are_reported_without_failing_it() {
    let dir = scratch_dir("check-baselines");
    let junit = dir.join("junit.xml");
    let summary = dir.join("step-summary.md");
    let scenario = fixture("gate-baselines.toml");
    let output = ratelab_with_env(
        &[
            "check",
            scenario.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--verbose",
        ],
        &[("GITHUB_STEP_SUMMARY", &summary)],
    );
    // Only `ours` meets [expect]; the two baselines miss both thresholds.
    assert_exit(&output, 0);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("2 passed, 0 failed; baselines (not gated): 0 met, 4 missed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pass  gate-baselines  ours  success rate 100.0% >= 99.0%"),
        "{stdout}"
    );
    assert!(
        stdout.contains("base  gate-baselines  no retries  success rate 90.8% < 99.0%"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // JUnit: the baselines' verdicts are skipped cases, not failures.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
    assert_eq!(xml.matches("<skipped ").count(), 4, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(
        xml.contains("failures=\"0\" errors=\"0\" skipped=\"4\""),
        "{xml}"
    );
    let markdown = std::fs::read_to_string(&summary).unwrap();
    assert!(
        markdown.starts_with(
            "### ratelab check: 2 passed, 0 failed; baselines (not gated): 0 met, 4 missed ✅"
        ),
        "{markdown}"
    );
    assert!(markdown.contains("| baseline: missed |"), "{markdown}");

    // The same scenario without `gate` gates every strategy, as before: it fails.
    let text = std::fs::read_to_string(&scenario).unwrap();
    let ungated = dir.join("gate-all.toml");
    std::fs::write(&ungated, text.replace("gate = [\"ours\"]\n", "")).unwrap();
    let output = ratelab(&["check", ungated.to_str().unwrap()]);
    assert_exit(&output, 1);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("2 passed, 4 failed\n"), "{stdout}");
}

#[test]
fn a_gate_naming_no_strategy_exits_2_listing_the_labels() {
    let dir = scratch_dir("check-bad-gate");
    let text = std::fs::read_to_string(fixture("gate-baselines.toml")).unwrap();
    let bad = dir.join("bad-gate.toml");
    std::fs::write(&bad, text.replace("gate = [\"ours\"]", "gate = [\"our\"]")).unwrap();
    let output = ratelab(&["check", bad.to_str().unwrap()]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "bad-gate.toml:36:9: expect.gate names \"our\", which is no strategy label of this scenario (expected one of: no retries, sdk default, ours)"
        ),
        "{stderr}"
    );
}

/// plan-rpm.toml with an `[expect.plan]` gate, written to a scratch file.
fn plan_gate_scenario(dir: &std::path::Path, name: &str, gate: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("plan-rpm.toml")).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n[expect.plan]\n{gate}\n")).unwrap();
    path
}

#[test]
fn a_plan_gate_that_holds_exits_0_and_is_a_junit_case() {
    let dir = scratch_dir("check-plan-holds");
    let junit = dir.join("junit.xml");
    // 3,000 RPM x 1.5 = 4,500, under Tier 2's 5,000.
    let scenario = plan_gate_scenario(&dir, "holds.toml", "tier = \"tier-2\"\nholds_at = 1.5");
    let output = ratelab(&[
        "check",
        scenario.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--verbose",
    ]);
    assert_exit(&output, 0);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(
            "pass  plan-rpm  plan  tier-2 holds at 1.5x: none (100.0% success, p99 465ms); RPM binds first  ("
        ),
        "{stdout}"
    );
    assert!(stdout.contains("holds.toml:32:1)"), "{stdout}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(
            "<testcase classname=\"ratelab.plan-rpm\" name=\"plan: tier-2 holds at 1.5x\"/>"
        ),
        "{xml}"
    );
    assert!(xml.contains("tests=\"1\" failures=\"0\""), "{xml}");
}

#[test]
fn a_plan_gate_outgrown_exits_1_naming_the_breaking_point_and_the_binding_limit() {
    let dir = scratch_dir("check-plan-outgrown");
    let junit = dir.join("junit.xml");
    // 7,500 RPM at 2.5x; the fixture works out that Tier 2 holds to 2 / 0.99 = 2.02x.
    let outgrown = plan_gate_scenario(&dir, "outgrown.toml", "tier = \"tier-2\"\nholds_at = 2.5");
    let output = ratelab(&[
        "check",
        outgrown.to_str().unwrap(),
        fixture("gate-pass.toml").to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(
            "FAIL  plan-rpm  plan  tier-2 does not hold at 2.5x: none (80.0% success, p99 465ms); it holds to 1.992x (bisected to 0.05x), RPM binds first  ("
        ),
        "{stdout}"
    );
    assert!(stdout.contains("12 passed, 1 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites name=\"ratelab check\" tests=\"13\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"plan: tier-2 holds at 2.5x\">"),
        "{xml}"
    );
    assert!(
        xml.contains("type=\"plan\">tier-2 does not hold at 2.5x"),
        "{xml}"
    );
}

#[test]
fn a_bad_plan_gate_exits_2_at_its_place() {
    let dir = scratch_dir("check-plan-bad");
    let cases = [
        (
            "tier = \"free\"\nholds_at = 1.5",
            "bad.toml:33:8: expect.plan.tier = \"free\": unknown model \"gpt-4o-mini\" in tier free",
        ),
        (
            "tier = \"tier-9\"\nholds_at = 1.5",
            "bad.toml:33:8: expect.plan.tier = \"tier-9\": unknown tier \"tier-9\" (expected one of: free, tier-1",
        ),
        (
            "tier = \"tier-2\"\nholds_at = 0",
            "bad.toml:34:12: expect.plan.holds_at = 0 is not allowed (expected a growth factor above 0",
        ),
        (
            "tier = \"tier-2\"\nholds_at = 1.0005",
            "bad.toml:34:12: expect.plan.holds_at = 1.0005 has more than three decimals",
        ),
        (
            "tier = \"tier-2\"",
            "bad.toml:32:1: missing field `holds_at`",
        ),
    ];
    for (gate, expected) in cases {
        let scenario = plan_gate_scenario(&dir, "bad.toml", gate);
        let output = ratelab(&["check", scenario.to_str().unwrap()]);
        assert_exit(&output, 2);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(expected), "{gate}: {stderr}");
    }
}
