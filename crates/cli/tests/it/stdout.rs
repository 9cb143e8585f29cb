//! A closed stdout (`ratelab tiers --json | true`, `ratelab run ... | head -1`) ends the
//! program quietly: no panic message, no backtrace, and the files a command writes are still
//! written.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::{fixture, repository_root, scratch_dir};

/// Runs `ratelab ARGS` with a stdout pipe whose read end is closed before the program writes,
/// as a shell does when the reader of a pipeline has already exited.
fn ratelab_with_closed_stdout(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(args)
        .current_dir(repository_root())
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ratelab binary starts");
    // Dropping the only read end: every write to the child's stdout now fails with EPIPE.
    drop(child.stdout.take());
    child.wait_with_output().expect("ratelab ends")
}

#[track_caller]
fn assert_quiet(output: &Output, expected_code: i32) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
    assert_eq!(
        output.status.code(),
        Some(expected_code),
        "stderr:\n{stderr}"
    );
}

#[test]
fn tiers_json_into_a_closed_pipe_ends_quietly() {
    assert_quiet(&ratelab_with_closed_stdout(&["tiers", "--json"]), 0);
    assert_quiet(&ratelab_with_closed_stdout(&["tiers"]), 0);
}

#[test]
fn strategies_and_schema_into_a_closed_pipe_end_quietly() {
    assert_quiet(&ratelab_with_closed_stdout(&["strategies"]), 0);
    assert_quiet(&ratelab_with_closed_stdout(&["schema"]), 0);
}

#[test]
fn run_into_a_closed_pipe_ends_quietly_and_still_writes_its_reports() {
    let out = scratch_dir("closed-stdout-run");
    let scenario = fixture("gate-pass.toml");
    let output = ratelab_with_closed_stdout(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_quiet(&output, 0);
    assert!(Path::new(&out.join("report.json")).is_file());
    let _ = std::fs::remove_dir_all(&out);
}
