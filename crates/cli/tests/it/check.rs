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
