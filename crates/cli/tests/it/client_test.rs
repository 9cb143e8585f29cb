//! `ratelab test`: the python-openai example's polite client passes (exit 0) and its stormy
//! client fails the gate (exit 1), exactly as the README's command runs them; a failing or
//! hanging COMMAND gives exit 3, bad input exit 2; a piped stderr gets no progress line.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{assert_exit, fixture, ratelab, scratch_dir};

const EXAMPLE_SCENARIO: &str = "examples/python-openai/scenario.toml";
const EXAMPLE_APP: &str = "examples/python-openai/app.py";

/// Fails (never skips) when the example's Python dependencies are missing: CI must run it.
fn require_python_example_dependencies() {
    let probe = Command::new("python3")
        .args(["-c", "import openai, tenacity"])
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "the python-openai example needs the `openai` and `tenacity` Python packages ({}); run `bash .ci/test`, which installs them",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!(
            "the python-openai example needs python3, which cannot be run ({error}); install Python 3 and run `bash .ci/test`"
        ),
    }
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{} is readable: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_polite_python_client_passes_and_the_stormy_one_fails_the_gate() {
    require_python_example_dependencies();
    let scratch = scratch_dir("client-test-python");

    let polite_out = scratch.join("polite");
    let junit = scratch.join("polite.xml");
    let output = ratelab(&[
        "test",
        EXAMPLE_SCENARIO,
        "--out",
        polite_out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--",
        "python3",
        EXAMPLE_APP,
    ]);
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("40 of 40 questions answered"), "{stdout}");
    let grading = read_json(&polite_out.join("grading.json"));
    assert_eq!(grading["total"]["logical_requests"], 40, "{grading}");
    assert_eq!(grading["total"]["early_retries"], 0, "{grading}");
    assert_eq!(grading["total"]["gave_up"], 0, "{grading}");
    let report = read_json(&polite_out.join("report.json"));
    assert_eq!(report["runs"][0]["strategy"], "client");
    assert_eq!(report["runs"][0]["totals"]["requests"], 40);
    // Beside the client, the model of the strategy the scenario declares for it.
    assert_eq!(report["tested"]["models"][0], "tenacity + sdk (simulated)");
    assert_eq!(report["runs"][1]["strategy"], "tenacity + sdk (simulated)");
    assert_eq!(report["runs"][1]["totals"]["succeeded"], 40);
    assert!(
        stdout.contains("Beside it, tenacity + sdk (simulated) (100.0% success"),
        "{stdout}"
    );
    assert!(stdout.contains("it survives too."), "{stdout}");
    assert!(polite_out.join("index.html").is_file());
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert!(!junit_text.contains("<failure"), "{junit_text}");

    let stormy_out = scratch.join("stormy");
    let output = ratelab(&[
        "test",
        EXAMPLE_SCENARIO,
        "--out",
        stormy_out.to_str().unwrap(),
        "--",
        "python3",
        EXAMPLE_APP,
        "--stormy",
    ]);
    assert_exit(&output, 1);
    let grading = read_json(&stormy_out.join("grading.json"));
    let early = grading["total"]["early_retries"].as_u64().unwrap();
    assert!(early > 0, "the stormy client jumps retry-after: {grading}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("early retries"), "{stdout}");
    // The model of the declared strategy survives the same traffic: the client falls short.
    assert!(
        stdout.contains("it survives, so the declared strategy copes with this traffic"),
        "{stdout}"
    );
}

#[test]
fn a_command_that_fails_after_meeting_expect_exits_3_with_its_code() {
    let scratch = scratch_dir("client-test-exit-3");
    let output = ratelab(&[
        "test",
        fixture("test-short.toml").to_str().unwrap(),
        "--out",
        scratch.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo \"base url $OPENAI_BASE_URL instance $RATELAB_INSTANCE\"; exit 4",
    ]);
    assert_exit(&output, 3);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("base url http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("instance 0"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exited with code 4"), "{stderr}");
}

#[test]
fn a_command_past_the_time_limit_has_its_process_group_killed() {
    let scratch = scratch_dir("client-test-timeout");
    let started = Instant::now();
    let output = ratelab(&[
        "test",
        fixture("test-short.toml").to_str().unwrap(),
        "--grace",
        "1",
        "--instances",
        "2",
        "--out",
        scratch.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 120 & sleep 120",
    ]);
    // Generous: the limit is 2 s; this only proves the 120 s sleeps did not run out.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_exit(&output, 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("instance 1: still running after 2s, killed"),
        "{stderr}"
    );
    // Two seconds of running would have drawn the progress line at least twice on a
    // terminal; a piped stderr (CI logs) gets none (`test::PROGRESS_MARKER`).
    assert!(!stderr.contains("ratelab test: running"), "{stderr}");
}

#[test]
fn bad_input_exits_2_naming_the_fix() {
    let short = fixture("test-short.toml");
    let output = ratelab(&[
        "test",
        short.to_str().unwrap(),
        "--variant",
        "tier-9",
        "--",
        "true",
    ]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected one of: tier-1"), "{stderr}");

    let scratch = scratch_dir("client-test-bad-input");
    let output = ratelab(&[
        "test",
        short.to_str().unwrap(),
        "--out",
        scratch.to_str().unwrap(),
        "--",
        "ratelab-no-such-program",
    ]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot start COMMAND `ratelab-no-such-program`"),
        "{stderr}"
    );
}
