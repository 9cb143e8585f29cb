//! `ratelab validate`, `ratelab run` and `ratelab schema` on real files.

use crate::{ratelab, scratch_dir};

#[test]
fn validate_accepts_every_shipped_scenario() {
    let mut paths: Vec<String> = std::fs::read_dir(crate::repository_root().join("scenarios"))
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .map(|path| {
            format!(
                "scenarios/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            )
        })
        .collect();
    paths.sort();
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let output = ratelab(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("ok "))
            .count(),
        paths.len()
    );
}

#[test]
fn validate_reports_the_place_and_exits_2() {
    let dir = scratch_dir("validate");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\nduration = \"10 minutes\"\n").expect("written");
    let output = ratelab(&["validate", &bad.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "error: {}:2:12: unknown unit \" minutes\" in duration \"10 minutes\" (units: ns, us, ms, s, m, h, d)",
        bad.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn run_writes_the_same_report_twice_and_the_trace() {
    let dir = scratch_dir("run");
    let run = |out: &str| {
        let out = dir.join(out).display().to_string();
        let output = ratelab(&[
            "run",
            "scenarios/outage-and-recovery.toml",
            "--seed",
            "3",
            "--strategy",
            "none",
            "--strategy",
            "full-jitter:base=1s,cap=30s",
            "--out",
            &out,
            "--trace",
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        (String::from_utf8_lossy(&output.stdout).into_owned(), out)
    };
    let (summary, first) = run("first");
    let (_, second) = run("second");
    assert!(
        summary.contains("outage-and-recovery (seed 3)"),
        "{summary}"
    );
    assert!(summary.contains("full-jitter:base=1s,cap=30s"), "{summary}");
    let read = |dir: &str, file: &str| {
        std::fs::read(std::path::Path::new(dir).join(file)).expect("the output file exists")
    };
    assert_eq!(read(&first, "report.json"), read(&second, "report.json"));
    assert_eq!(read(&first, "trace.jsonl"), read(&second, "trace.jsonl"));
    let report: results::RunReport =
        serde_json::from_slice(&read(&first, "report.json")).expect("report.json parses");
    assert_eq!(report.scenario.seed, 3);
    // Two strategies under both rejection rules the scenario compares.
    assert_eq!(report.runs.len(), 4);
    let attempts: u64 = report.runs.iter().map(|run| run.totals.attempts).sum();
    let trace = read(&first, "trace.jsonl");
    let sent = trace
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty() && !line.windows(10).any(|w| w == b"\"not_sent\""))
        .count() as u64;
    assert_eq!(sent, attempts, "one trace line per attempt");
}

#[test]
fn schema_is_json_naming_the_top_level_keys() {
    let output = ratelab(&["schema"]);
    assert!(output.status.success());
    let schema: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the schema is JSON");
    let properties = schema["properties"]
        .as_object()
        .expect("top-level properties");
    for key in [
        "name",
        "duration",
        "server",
        "clients",
        "strategies",
        "metrics",
    ] {
        assert!(properties.contains_key(key), "schema lacks {key}");
    }
    // The server property is the server config's schema, which `--server` prints alone.
    let output = ratelab(&["schema", "--server"]);
    assert!(output.status.success());
    let server: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the server schema is JSON");
    let keys = server["properties"].as_object().expect("server properties");
    for key in [
        "model",
        "tier",
        "limiter",
        "latency",
        "faults",
        "timeline",
        "connections",
    ] {
        assert!(keys.contains_key(key), "server schema lacks {key}");
    }
    let scenario_server = &schema["$defs"]["ServerConfig"]["properties"];
    assert_eq!(
        scenario_server, &server["properties"],
        "one schema for both"
    );
}

#[test]
fn run_refuses_work_over_the_ceiling_and_validate_says_so() {
    let file = crate::fixture("too-much-work.toml");
    let file = file.to_str().expect("a UTF-8 path");
    let out = crate::scratch_dir("too-much-work");
    let refused = ratelab(&["run", file, "--out", out.to_str().unwrap()]);
    crate::assert_exit(&refused, 2);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("about 300000000 requests before retries") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(
        !out.join("report.json").exists(),
        "nothing is written when refused"
    );
    let validated = ratelab(&["validate", file]);
    crate::assert_exit(&validated, 0);
    let stdout = String::from_utf8_lossy(&validated.stdout);
    assert!(
        stdout.contains("will refuse it without --force"),
        "{stdout}"
    );
}

#[test]
fn files_that_cannot_be_read_are_reported_once_and_located() {
    let dir = scratch_dir("unreadable");
    // A missing trace: the OS error appears once.
    let missing = dir.join("missing-trace.toml");
    let text =
        std::fs::read_to_string(crate::repository_root().join("scenarios/replay-trace.toml"))
            .unwrap()
            .replace("traces/sample.jsonl", "traces/missing.jsonl");
    std::fs::write(&missing, text).unwrap();
    let output = ratelab(&["validate", missing.to_str().unwrap()]);
    crate::assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
    // Not UTF-8: the line and column of the first bad byte.
    let binary = dir.join("latin1.toml");
    std::fs::write(
        &binary,
        b"name = \"x\"\nduration = \"1m\"\ndescription = \"caf\xe9\"\n",
    )
    .unwrap();
    let output = ratelab(&["validate", binary.to_str().unwrap()]);
    crate::assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3:19: the file is not UTF-8 text (byte 0xe9 here); save it as UTF-8",
            binary.display()
        )),
        "{stderr}"
    );
}
