//! `ratelab run` writes every format; `ratelab report DIR` re-renders them byte for byte.

use crate::{assert_exit, fixture, ratelab, scratch_dir};

const FILES: [&str; 4] = ["report.json", "summary.md", "index.html", "comparison.svg"];

#[test]
fn run_writes_every_format_and_report_re_renders_the_same_bytes() {
    let dir = scratch_dir("run-and-report");
    let run_dir = dir.join("run");
    let scenario = fixture("gate-pass.toml");
    let output = ratelab(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        !stdout.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );
    let read = |name: &str| std::fs::read(run_dir.join(name)).unwrap();
    let before: Vec<Vec<u8>> = FILES.iter().map(|name| read(name)).collect();
    let timelines = std::fs::read_dir(&run_dir)
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("timeline-")
        })
        .count();
    assert_eq!(timelines, 2, "one timeline per strategy");

    // Re-rendering into another directory gives the same bytes.
    let again = dir.join("again");
    let output = ratelab(&[
        "report",
        run_dir.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    for (name, bytes) in FILES.iter().zip(&before) {
        assert!(
            std::fs::read(again.join(name)).unwrap() == *bytes,
            "{name} differs after ratelab report"
        );
    }

    // The same seed gives byte-identical files.
    let second = dir.join("second");
    let output = ratelab(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        second.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    for (name, bytes) in FILES.iter().zip(&before) {
        assert!(
            std::fs::read(second.join(name)).unwrap() == *bytes,
            "{name} differs between two runs of seed 11"
        );
    }
}

#[test]
fn report_of_a_directory_without_report_json_exits_2() {
    let dir = scratch_dir("report-missing");
    let output = ratelab(&["report", dir.to_str().unwrap()]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("expected a run directory written by `ratelab run`"),
        "{stderr}"
    );
}

#[test]
fn report_of_a_newer_format_version_exits_2_naming_the_versions() {
    let dir = scratch_dir("report-newer");
    let run_dir = dir.join("run");
    let scenario = fixture("gate-pass.toml");
    let output = ratelab(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let json = run_dir.join("report.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(
        &json,
        text.replacen("\"format_version\": 1", "\"format_version\": 9", 1),
    )
    .unwrap();
    let output = ratelab(&["report", run_dir.to_str().unwrap()]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "report.json has format_version 9, newer than this ratelab reads (version 1)"
        ),
        "{stderr}"
    );
}

#[test]
fn the_table_fits_100_columns_and_wide_shows_every_column() {
    let dir = scratch_dir("report-wide");
    let scenario = fixture("gate-pass.toml");
    let run = |extra: &[&str]| {
        let out = dir.join("run");
        let mut arguments = vec![
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        arguments.extend_from_slice(extra);
        let output = ratelab(&arguments);
        assert_exit(&output, 0);
        String::from_utf8(output.stdout).unwrap()
    };
    let compact = run(&[]);
    let header = compact.lines().nth(1).unwrap();
    assert!(header.chars().count() <= 100, "{compact}");
    assert!(!header.contains("early retries"), "{compact}");
    let wide = run(&["--wide"]);
    let header = wide.lines().nth(1).unwrap();
    for title in [
        "requests",
        "attempts",
        "p50",
        "early retries",
        "drain",
        "fairness",
    ] {
        assert!(header.contains(title), "--wide lacks {title}: {wide}");
    }
}

#[test]
fn diff_compares_two_runs_and_can_gate_on_regressions() {
    let dir = scratch_dir("diff");
    let scenario = fixture("gate-pass.toml");
    let base = dir.join("base");
    let head = dir.join("head");
    for (out, seed) in [(&base, "11"), (&head, "12")] {
        let output = ratelab(&[
            "run",
            scenario.to_str().unwrap(),
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_exit(&output, 0);
    }
    let markdown = dir.join("diff.md");
    let output = ratelab(&[
        "diff",
        base.to_str().unwrap(),
        head.join("report.json").to_str().unwrap(),
        "--markdown",
        markdown.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let text = std::fs::read_to_string(&markdown).unwrap();
    assert!(text.starts_with("### ratelab diff: gate-pass: "), "{text}");
    assert!(text.contains("different seeds"), "{text}");

    // One seed a side cannot tell a regression from noise: the gate refuses to decide, even on
    // the same run compared with itself, rather than pass by accident.
    let output = ratelab(&[
        "diff",
        base.to_str().unwrap(),
        base.to_str().unwrap(),
        "--fail-on-regression",
    ]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rerun both with `ratelab run SCENARIO --seeds 5`"),
        "{stderr}"
    );
    let output = ratelab(&[
        "diff",
        base.to_str().unwrap(),
        dir.join("nowhere").to_str().unwrap(),
    ]);
    assert_exit(&output, 2);
}
