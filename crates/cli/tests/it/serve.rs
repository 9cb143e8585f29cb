//! `ratelab serve` as a real process: flags and config reach the server, real HTTP on
//! loopback gets OpenAI-shaped answers, a signal stops it cleanly, bad input exits non-zero.
// The running-server tests need `kill`, so elsewhere only the refusal tests use the helpers.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{repository_root, scratch_dir};

/// Generous because a debug build on a busy two-core machine starts slowly; it only bounds a
/// hang, it never decides a passing outcome.
const DEADLINE: Duration = Duration::from_secs(30);

const CHAT_BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}"#;

/// A running `ratelab serve`, killed on drop so that a failing test leaks no process.
struct ServeProcess {
    child: Child,
    address: SocketAddr,
    stderr_path: PathBuf,
}

impl ServeProcess {
    /// Starts `ratelab serve ARGS` and waits for the address it prints.
    fn start(args: &[&str], scratch: &Path) -> ServeProcess {
        let stderr_path = scratch.join("serve.stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ratelab"))
            .arg("serve")
            .args(args)
            .current_dir(repository_root())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("the stderr file is created"))
            .spawn()
            .expect("the ratelab binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_sender, lines) = mpsc::channel();
        // A thread drains stdout so the child never blocks on a full pipe; the channel lets
        // the test wait for the address line with a deadline instead of a blocking read.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = ServeProcess {
            child,
            address: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr_path,
        };
        let started = Instant::now();
        let mut printed = Vec::new();
        loop {
            let remaining = DEADLINE.saturating_sub(started.elapsed());
            match lines.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(url) = line.split("listening on http://").nth(1) {
                        process.address = url
                            .trim()
                            .parse()
                            .unwrap_or_else(|error| panic!("not an address in {line:?}: {error}"));
                        return process;
                    }
                    printed.push(line);
                }
                Err(error) => panic!(
                    "no listening address ({error}); stdout:\n{}\nstderr:\n{}",
                    printed.join("\n"),
                    process.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends one HTTP/1.1 request on a fresh connection and reads the whole reply.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut stream = TcpStream::connect_timeout(&self.address, DEADLINE)
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.address));
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|error| panic!("no reply to {method} {path}: {error}"));
        Reply::parse(&String::from_utf8_lossy(&raw))
    }

    fn chat(&self, key: Option<&str>) -> Reply {
        let authorization = key.map(|key| format!("Bearer {key}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(authorization) = &authorization {
            headers.push(("authorization", authorization));
        }
        self.request("POST", "/v1/chat/completions", &headers, CHAT_BODY)
    }

    /// Sends `signal` (a `kill` name such as `TERM`) and waits, bounded, for the exit.
    #[cfg(unix)]
    fn stop_with(mut self, signal: &str) -> (ExitStatus, String) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                return (status, self.stderr());
            }
            if started.elapsed() > DEADLINE {
                panic!(
                    "ratelab serve did not exit within {DEADLINE:?} of SIG{signal}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP reply: status, headers with lowercase names, body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(raw: &str) -> Reply {
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP reply: {raw:?}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {raw:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// Asserts an OpenAI error envelope with this status and code; returns the error object.
    #[track_caller]
    fn expect_error(&self, status: u16, code: Option<&str>) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_str(&self.body).expect("an error body is JSON");
        let error = body["error"].clone();
        assert_eq!(error["code"].as_str(), code, "{error}");
        assert_eq!(error["type"], "invalid_request_error", "{error}");
        assert!(error["message"].is_string(), "{error}");
        error
    }
}

/// The default server: chat works with limit headers, bad keys and a disabled admin API get
/// OpenAI-shaped errors, `/metrics` counts the traffic, and SIGTERM ends it with exit 0.
#[cfg(unix)]
#[test]
fn serve_answers_on_loopback_and_exits_cleanly_on_sigterm() {
    let scratch = scratch_dir("serve-default");
    let server = ServeProcess::start(&["--addr", "127.0.0.1:0"], &scratch);
    assert!(server.address.ip().is_loopback() && server.address.port() != 0);

    let chat = server.chat(Some("sk-anything"));
    assert_eq!(chat.status, 200, "{chat:?}");
    let completion: Value = serde_json::from_str(&chat.body).unwrap();
    assert_eq!(completion["object"], "chat.completion");
    let expected_rpm = quota::Catalog::builtin()
        .limits("tier-1", "gpt-4o")
        .unwrap()
        .rpm
        .unwrap()
        .to_string();
    assert_eq!(
        chat.header("x-ratelimit-limit-requests"),
        Some(expected_rpm.as_str())
    );
    for name in [
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ] {
        assert!(chat.header(name).is_some(), "no {name} in {chat:?}");
    }

    let error = server.chat(None).expect_error(401, Some("invalid_api_key"));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("didn't provide an API key"),
        "{error}"
    );
    server
        .request("GET", "/_admin/clock", &[], "")
        .expect_error(404, Some("admin_disabled"));

    let metrics = server.request("GET", "/metrics", &[], "");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{metrics:?}"
    );
    assert!(
        metrics
            .body
            .contains("# TYPE ratelab_requests_total counter"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains(r#"ratelab_requests_total{endpoint="/v1/chat/completions",status="200"} 1"#),
        "{}",
        metrics.body
    );

    let (status, stderr) = server.stop_with("TERM");
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(stderr.contains("shutting down"), "stderr:\n{stderr}");
}

/// Flags and a config file together: the file declares keys and a tier, the flags override
/// the tier and set a manual clock and an admin token; SIGINT (Ctrl-C) ends it with exit 0.
#[cfg(unix)]
#[test]
fn serve_applies_flags_over_the_config_file_and_exits_cleanly_on_sigint() {
    let scratch = scratch_dir("serve-flags");
    let config = scratch.join("serve.toml");
    std::fs::write(
        &config,
        r#"
tier = "tier-4"
seed = 1

# The manual clock holds every latency wait until it is advanced: answer at once.
[latency]
ttft = "0s"
per_output_token = "0s"
jitter = 0.0
reject = "0s"

[[organizations]]
id = "org-acme"

[[organizations.projects]]
id = "proj_web"
keys = ["sk-acme-web"]
"#,
    )
    .unwrap();
    let server = ServeProcess::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
            "--clock",
            "manual",
            "--admin-token",
            "T",
            "--tier",
            "tier-2",
            "--seed",
            "7",
        ],
        &scratch,
    );

    let chat = server.chat(Some("sk-acme-web"));
    assert_eq!(chat.status, 200, "{chat:?}");
    assert_eq!(chat.header("openai-organization"), Some("org-acme"));
    let tier_2 = quota::Catalog::builtin()
        .limits("tier-2", "gpt-4o")
        .unwrap()
        .clone();
    for (header, limit) in [
        ("x-ratelimit-limit-requests", tier_2.rpm),
        ("x-ratelimit-limit-tokens", tier_2.tpm),
    ] {
        let expected = limit.unwrap().to_string();
        assert_eq!(
            chat.header(header),
            Some(expected.as_str()),
            "--tier tier-2 overrides the file's tier-4"
        );
    }
    server
        .chat(Some("sk-not-declared"))
        .expect_error(401, Some("invalid_api_key"));

    let clock = server.request("GET", "/_admin/clock", &[("authorization", "Bearer T")], "");
    assert_eq!(clock.status, 200, "{clock:?}");
    let clock: Value = serde_json::from_str(&clock.body).unwrap();
    assert_eq!(clock["kind"], "manual", "{clock}");
    server
        .request("GET", "/_admin/clock", &[], "")
        .expect_error(401, Some("invalid_admin_token"));
    server
        .request(
            "GET",
            "/_admin/clock",
            &[("authorization", "Bearer wrong")],
            "",
        )
        .expect_error(401, Some("invalid_admin_token"));

    let (status, stderr) = server.stop_with("INT");
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
}

/// Runs `ratelab serve ARGS` expecting it to refuse to start: bounded, so a server that
/// started anyway fails the test instead of hanging it.
fn serve_refusing(args: &[&str], scratch: &Path) -> (ExitStatus, String) {
    let stderr_path = scratch.join("refused.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .arg("serve")
        .args(args)
        .current_dir(repository_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .expect("the ratelab binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ratelab serve {args:?} kept running instead of refusing to start");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, std::fs::read_to_string(&stderr_path).unwrap())
}

#[track_caller]
fn check_refused(args: &[&str], scratch: &Path, expected: &[&str]) {
    let (status, stderr) = serve_refusing(args, scratch);
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "{fragment:?} not in stderr:\n{stderr}"
        );
    }
}

#[test]
fn serve_refuses_bad_flags_with_a_clear_error() {
    let scratch = scratch_dir("serve-bad-flags");
    check_refused(
        &["--addr", "127.0.0.1:0", "--tier", "tier-9"],
        &scratch,
        &[
            "error: command line: tier: unknown tier \"tier-9\"",
            "expected one of: free, tier-1",
        ],
    );
    check_refused(
        &["--addr", "127.0.0.1:0", "--clock", "sundial"],
        &scratch,
        &[
            "invalid value 'sundial' for '--clock <CLOCK>'",
            "real, manual",
        ],
    );
    check_refused(
        &["--addr", "localhost:eighty"],
        &scratch,
        &["invalid value 'localhost:eighty' for '--addr <ADDR>'"],
    );
    check_refused(
        &["--addr", "127.0.0.1:0", "--admin-token", ""],
        &scratch,
        &["admin_token: must not be empty"],
    );
}

#[test]
fn serve_refuses_a_bad_config_file_naming_file_and_line() {
    let scratch = scratch_dir("serve-bad-config");
    let typo = scratch.join("typo.toml");
    std::fs::write(&typo, "tier = \"tier-2\"\nseeed = 7\n").unwrap();
    let typo_place = format!("error: {}:2:1: unknown field `seeed`", typo.display());
    check_refused(
        &["--addr", "127.0.0.1:0", "--config", typo.to_str().unwrap()],
        &scratch,
        &[&typo_place, "expected one of `model`"],
    );

    let bad_tier = scratch.join("bad-tier.toml");
    std::fs::write(&bad_tier, "tier = \"tier-9\"\n").unwrap();
    let bad_tier_place = format!(
        "error: {}: tier: unknown tier \"tier-9\"",
        bad_tier.display()
    );
    check_refused(
        &[
            "--addr",
            "127.0.0.1:0",
            "--config",
            bad_tier.to_str().unwrap(),
        ],
        &scratch,
        &[&bad_tier_place],
    );

    let missing = scratch.join("missing.toml");
    let missing_place = format!("cannot read the server config {}", missing.display());
    check_refused(
        &[
            "--addr",
            "127.0.0.1:0",
            "--config",
            missing.to_str().unwrap(),
        ],
        &scratch,
        &[&missing_place],
    );
}

#[test]
fn a_taken_port_is_reported_with_its_cause_once() {
    let scratch = scratch_dir("serve-port-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let address = taken.local_addr().unwrap().to_string();
    let (status, stderr) = serve_refusing(&["--addr", &address], &scratch);
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "the cause is stated once:\n{stderr}"
    );
}

/// A scenario with two server variants (Tier 2, and Tier 1 under its `limits`), `retry-after-ms`
/// on 429s and a near-instant server: what `serve --scenario` must reproduce.
const SERVED_SCENARIO: &str = r#"name = "served"
duration = "10m"
[server]
model = "gpt-4o"
tier = "tier-2"
compare_tiers = ["tier-1"]
limits = { rpm = 3 }
[server.headers]
retry_after_ms = true
[server.latency]
ttft = "1ms"
per_output_token = "0s"
jitter = 0.0
reject = "0s"
[[clients]]
name = "app"
arrival = { kind = "poisson", rpm = 10 }
prompt_tokens = { kind = "fixed", value = 10 }
completion_tokens = { kind = "fixed", value = 10 }
"#;

/// `serve --scenario` serves the scenario's own server: the variant picked by `--variant`, with
/// the scenario's limits and header policy.
#[cfg(unix)]
#[test]
fn serve_plays_a_scenarios_server_variant() {
    let scratch = scratch_dir("serve-scenario");
    let path = scratch.join("served.toml");
    std::fs::write(&path, SERVED_SCENARIO).unwrap();
    let path = path.display().to_string();
    let out = scratch.join("report").display().to_string();
    let server = ServeProcess::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--scenario",
            &path,
            "--variant",
            "tier-1",
            "--out",
            &out,
        ],
        &scratch,
    );
    for _ in 0..3 {
        let chat = server.chat(Some("sk-anything"));
        assert_eq!(chat.status, 200, "{chat:?}");
        assert_eq!(chat.header("x-ratelimit-limit-requests"), Some("3"));
    }
    let refused = server.chat(Some("sk-anything"));
    assert_eq!(refused.status, 429, "{refused:?}");
    // Three per minute refill one every 20 s: the wait is at most that, and the scenario's
    // header policy adds retry-after-ms to retry-after.
    let millis: u64 = refused.header("retry-after-ms").unwrap().parse().unwrap();
    assert!((1..=20_000).contains(&millis), "{refused:?}");
    assert!(refused.header("retry-after").is_some());
    let (status, stderr) = server.stop_with("TERM");
    // Without an [expect] table nothing can fail: the report is written, the exit is 0.
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(stderr.contains("has no [expect] table"), "{stderr}");
    assert!(scratch.join("report").join("report.json").is_file());
}

/// `serve --scenario` grades the clients it serves: `GET /_admin/report` answers the report so
/// far, and at shutdown the report is written and the exit code is the verdict of `[expect]`.
#[cfg(unix)]
#[test]
fn serve_grades_a_scenarios_clients_and_exits_with_the_verdict() {
    let scratch = scratch_dir("serve-scenario-graded");
    let path = scratch.join("graded.toml");
    let scenario = format!("{SERVED_SCENARIO}[expect]\nmax_gave_up = 0\n");
    std::fs::write(&path, scenario).unwrap();
    let path = path.display().to_string();
    let out = scratch.join("report");
    let junit = scratch.join("junit.xml");
    let server = ServeProcess::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--scenario",
            &path,
            "--variant",
            "tier-1",
            "--admin-token",
            "t",
            "--out",
            out.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        &scratch,
    );
    // Four distinct calls against 3 RPM: three succeed, the fourth gets a 429 and is never
    // retried, so it counts as given up.
    for call in 0..4 {
        let id = format!("call-{call}");
        let reply = server.request(
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer sk-anything"),
                ("x-ratelab-logical-id", &id),
            ],
            CHAT_BODY,
        );
        assert_eq!(reply.status, if call < 3 { 200 } else { 429 }, "{reply:?}");
    }
    let refused = server.request("GET", "/_admin/report", &[], "");
    refused.expect_error(401, Some("invalid_admin_token"));
    let answer = server.request(
        "GET",
        "/_admin/report",
        &[("authorization", "Bearer t")],
        "",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let document: Value = serde_json::from_str(&answer.body).unwrap();
    let runs = &document["report"]["runs"];
    assert_eq!(runs[0]["strategy"], "client", "{document}");
    assert_eq!(runs[0]["totals"]["requests"], 4, "{document}");
    assert_eq!(runs[0]["totals"]["succeeded"], 3, "{document}");
    assert_eq!(runs[0]["totals"]["rate_limited"], 1, "{document}");
    // Beside it, the scenario's strategies simulated on the same variant.
    let models = document["report"]["tested"]["models"].as_array().unwrap();
    assert!(!models.is_empty(), "{document}");
    assert_eq!(runs.as_array().unwrap().len(), 1 + models.len());
    assert!(
        runs[1]["strategy"]
            .as_str()
            .unwrap()
            .ends_with(" (simulated)")
    );
    assert_eq!(runs[1]["server"], "tier-1");
    assert_eq!(document["grading"]["total"]["logical_requests"], 4);
    assert_eq!(document["grading"]["total"]["gave_up"], 1);

    let (status, stderr) = server.stop_with("INT");
    assert_eq!(
        status.code(),
        Some(1),
        "the client gave one up; stderr:\n{stderr}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["runs"][0]["totals"]["gave_up"], 1);
    assert!(out.join("grading.json").is_file());
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
}

#[test]
fn serve_refuses_an_unknown_variant_naming_the_ones_there_are() {
    let scratch = scratch_dir("serve-scenario-bad-variant");
    let path = scratch.join("served.toml");
    std::fs::write(&path, SERVED_SCENARIO).unwrap();
    let path = path.display().to_string();
    check_refused(
        &[
            "--addr",
            "127.0.0.1:0",
            "--scenario",
            &path,
            "--variant",
            "tier-9",
        ],
        &scratch,
        &[
            "--variant \"tier-9\": the scenario has no such server variant (expected one of: tier-2, tier-1)",
        ],
    );
    check_refused(
        &["--addr", "127.0.0.1:0", "--variant", "tier-1"],
        &scratch,
        &["--scenario"],
    );
}

/// `--no-latency` serves a manual clock with no waits: a request is answered while server time
/// stands still (with the default latency it would wait for the clock to pass its first token).
#[cfg(unix)]
#[test]
fn no_latency_answers_on_a_manual_clock_that_never_moves() {
    let scratch = scratch_dir("serve-no-latency");
    let server = ServeProcess::start(
        &["--addr", "127.0.0.1:0", "--clock", "manual", "--no-latency"],
        &scratch,
    );
    let chat = server.chat(Some("sk-anything"));
    assert_eq!(chat.status, 200, "{chat:?}");
    let (status, stderr) = server.stop_with("TERM");
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
}
