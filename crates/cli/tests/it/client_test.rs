//! `ratelab test`: the python-openai example's polite client passes (exit 0) and its stormy
//! client fails the gate (exit 1), the node-openai example's SDK defaults and the rust-hyper
//! example's own policy pass, exactly as the README's commands run them; a failing or hanging
//! COMMAND gives exit 3, bad input exit 2; a piped stderr gets no progress line.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{assert_exit, fixture, ratelab, repository_root, scratch_dir};

const EXAMPLE_SCENARIO: &str = "examples/python-openai/scenario.toml";
const EXAMPLE_APP: &str = "examples/python-openai/app.py";
const NODE_EXAMPLE_DIR: &str = "examples/node-openai";
const RUST_EXAMPLE_SCENARIO: &str = "examples/rust-hyper/scenario.toml";

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

/// Fails (never skips) when Node.js or the node-openai example's `openai` package is missing.
fn require_node_example_dependencies() {
    // From the example's folder, as app.mjs resolves it: its own node_modules.
    let probe = Command::new("node")
        .args(["-e", "require.resolve('openai')"])
        .current_dir(repository_root().join(NODE_EXAMPLE_DIR))
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            // Node prints a stack; its `Error: Cannot find module 'openai'` line says enough.
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = stderr
                .lines()
                .find(|line| line.starts_with("Error"))
                .unwrap_or(stderr.trim());
            panic!(
                "the node-openai example needs the `openai` npm package in {NODE_EXAMPLE_DIR}/node_modules ({reason}); run `bash .ci/test`, which installs it with npm ci"
            )
        }
        Err(error) => panic!(
            "the node-openai example needs node, which cannot be run ({error}); install Node.js and npm and run `bash .ci/test`"
        ),
    }
}

/// The rust-hyper example's binary, which `cargo test` builds beside `ratelab` (an example of
/// this package); fails when it is missing or older than its source, naming the build command.
fn rust_example_binary() -> PathBuf {
    let ratelab = PathBuf::from(env!("CARGO_BIN_EXE_ratelab"));
    let binary = ratelab
        .parent()
        .expect("the ratelab binary is in a directory")
        .join("examples")
        .join(format!("rust-hyper{}", std::env::consts::EXE_SUFFIX));
    let source = repository_root().join("examples/rust-hyper/main.rs");
    let modified =
        |path: &std::path::Path| std::fs::metadata(path).and_then(|meta| meta.modified());
    let fix = "`cargo test` builds it unless `--test` picks targets; `cargo build -p ratelab-cli --example rust-hyper` alone does too, and so does `bash .ci/test`";
    match (modified(&binary), modified(&source)) {
        (Ok(built), Ok(written)) if built >= written => binary,
        (Ok(_), _) => panic!(
            "{} is older than examples/rust-hyper/main.rs: {fix}",
            binary.display()
        ),
        (Err(error), _) => panic!("{} is not built ({error}): {fix}", binary.display()),
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
    // And what the server saw, as grading.json has it.
    assert_eq!(report["tested"]["seen"][0]["key"], "total");
    assert_eq!(
        report["tested"]["seen"][0]["logical_requests"],
        grading["total"]["logical_requests"]
    );
    assert_eq!(
        report["tested"]["seen"][0]["retries"],
        grading["total"]["retries"]
    );
    let summary = std::fs::read_to_string(polite_out.join("summary.md")).unwrap();
    assert!(
        summary.contains("What the server saw of the client"),
        "{summary}"
    );
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

/// Runs a one-caller example that must pass (exit 0) and returns its `grading.json`, having
/// checked what every such example promises: 40 questions, all answered, none retried early.
#[track_caller]
fn grade_passing_example(test: &str, scenario: &str, command: &[&str]) -> Value {
    let out = scratch_dir(test);
    let mut args = vec!["test", scenario, "--out", out.to_str().unwrap(), "--"];
    args.extend_from_slice(command);
    let output = ratelab(&args);
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("40 of 40 questions answered"), "{stdout}");
    let grading = read_json(&out.join("grading.json"));
    let total = &grading["total"];
    assert_eq!(total["logical_requests"], 40, "{grading}");
    assert_eq!(total["succeeded"], 40, "{grading}");
    assert_eq!(total["gave_up"], 0, "{grading}");
    assert_eq!(total["early_retries"], 0, "{grading}");
    grading
}

#[test]
fn the_node_client_with_the_sdk_default_retries_passes_the_gate() {
    require_node_example_dependencies();
    let scenario = format!("{NODE_EXAMPLE_DIR}/scenario.toml");
    let app = format!("{NODE_EXAMPLE_DIR}/app.mjs");
    let grading = grade_passing_example("client-test-node", &scenario, &["node", &app]);
    let total = &grading["total"];
    // How many 429s the client meets depends on its speed; what it does with them does not.
    // The only caller, with one request in flight, retries each 429 once, after the stated
    // wait, and that retry fits: the SDK's 2 retries are never all needed. Every retry is the
    // SDK's own (it numbers them in `x-stainless-retry-count`).
    assert_eq!(total["retries"], total["rate_limited"], "{grading}");
    assert!(total["max_attempts"].as_u64().unwrap() <= 2, "{grading}");
    assert_eq!(total["sdk_retry_hints"], total["retries"], "{grading}");
}

#[test]
fn the_rust_client_rides_out_the_scripted_5xx_and_the_limit() {
    let binary = rust_example_binary();
    let grading = grade_passing_example(
        "client-test-rust",
        RUST_EXAMPLE_SCENARIO,
        &[binary.to_str().unwrap()],
    );
    let total = &grading["total"];
    // The first request meets the scripted 503 and 500 and succeeds at its third attempt; each
    // 429 after it is retried once (how many there are depends on the client's speed).
    assert_eq!(total["max_attempts"], 3, "{grading}");
    let retries = total["retries"].as_u64().unwrap();
    let rate_limited = total["rate_limited"].as_u64().unwrap();
    assert_eq!(retries, rate_limited + 2, "{grading}");
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

/// On a terminal the progress line shows, and the command's own lines print whole above it:
/// each starts a line of its own (after a newline, or after the escape that clears the progress
/// line), never glued to the end of the progress text.
#[cfg(unix)]
#[test]
fn on_a_terminal_the_commands_lines_print_above_the_progress_line() {
    use std::io::Read;
    use std::process::Stdio;

    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    let scratch = scratch_dir("client-test-terminal");
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("the terminal's name");
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("a UTF-8 terminal name"))
        .expect("the terminal opens");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ratelab"));
    command
        .args([
            "test",
            fixture("test-short.toml").to_str().unwrap(),
            "--out",
            scratch.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo line-one >&2; sleep 1.5; echo line-two >&2",
        ])
        .current_dir(repository_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(terminal));
    let child = command.spawn().expect("the ratelab binary starts");
    // Only the child holds the terminal now, so reading it ends when the child exits.
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        // Linux answers EIO once the last holder of the terminal closes it.
        while let Ok(read) = master.read(&mut chunk) {
            if read == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..read]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let output = child.wait_with_output().expect("ratelab test ends");
    assert_exit(&output, 0);
    let terminal = reader.join().expect("the reader ends");
    assert!(
        terminal.contains("ratelab test: running"),
        "a terminal shows the progress line: {terminal:?}"
    );
    // As the command printed them (the banner quotes the command, so its text appears there
    // too, but not as a whole line); a terminal ends lines with \r\n.
    for line in ["line-one\r\n", "line-two\r\n"] {
        let at = terminal
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} passes through: {terminal:?}"));
        let before = &terminal[..at];
        assert!(
            before.ends_with('\n') || before.ends_with("\x1b[2K"),
            "{line:?} starts a line of its own: {terminal:?}"
        );
    }
}
