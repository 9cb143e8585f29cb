//! `ratelab run --seeds N` and `ratelab diff` over seeds: the report does not depend on the
//! thread count, a seed-only diff is no change, a worse strategy fails the gate, and runs that
//! do not pair, or too few seeds to gate on, exit 2.

use std::path::{Path, PathBuf};

use crate::{assert_exit, fixture, ratelab, scratch_dir};

/// Runs the `seeds.toml` fixture into `dir/name` with `extra` arguments; returns the directory.
fn run(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let scenario = fixture("seeds.toml");
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = ratelab(&args);
    assert_exit(&output, 0);
    out
}

fn diff(base: &Path, head: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["diff", base.to_str().unwrap(), head.to_str().unwrap()];
    args.extend_from_slice(extra);
    ratelab(&args)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_report_is_the_same_bytes_whatever_the_thread_count() {
    let dir = scratch_dir("seeds-jobs");
    let one = run(&dir, "one", &["--seeds", "5", "--jobs", "1"]);
    let two = run(&dir, "two", &["--seeds", "5", "--jobs", "2"]);
    for name in ["report.json", "summary.md", "index.html"] {
        let read = |dir: &Path| std::fs::read(dir.join(name)).unwrap();
        assert!(
            read(&one) == read(&two),
            "{name} differs between 1 and 2 threads"
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.join("report.json")).unwrap()).unwrap();
    let seeds = &report["runs"][0]["seeds"];
    assert_eq!(seeds["seeds"].as_array().unwrap().len(), 5);
    assert_eq!(seeds["seeds"][0], 5, "the first seed is the scenario's own");
    let success = &seeds["success_rate"];
    assert_eq!(success["values"].as_array().unwrap().len(), 5);
    let (low, high) = (
        success["ci95"][0].as_f64().unwrap(),
        success["ci95"][1].as_f64().unwrap(),
    );
    let mean = success["mean"].as_f64().unwrap();
    assert!(low < mean && mean < high, "{success}");
    let summary = std::fs::read_to_string(one.join("summary.md")).unwrap();
    assert!(summary.contains("Over 5 seeds"), "{summary}");
    assert!(summary.contains(" ± "), "{summary}");
}

#[test]
fn one_seed_writes_the_report_of_a_plain_run() {
    let dir = scratch_dir("seeds-one");
    let plain = run(&dir, "plain", &[]);
    let one = run(&dir, "one", &["--seeds", "1", "--jobs", "2"]);
    let read = |dir: &Path| std::fs::read(dir.join("report.json")).unwrap();
    assert!(read(&plain) == read(&one));
    let report: serde_json::Value = serde_json::from_slice(&read(&plain)).unwrap();
    assert!(
        report["runs"][0].get("seeds").is_none(),
        "one seed has no seeds object"
    );
}

#[test]
fn a_seed_only_diff_is_no_significant_change_and_a_worse_strategy_fails_the_gate() {
    let dir = scratch_dir("seeds-diff");
    let base = run(&dir, "base", &["--seeds", "5", "--seed", "1"]);
    let head = run(&dir, "head", &["--seeds", "5", "--seed", "2"]);
    let json = dir.join("diff.json");
    let output = diff(
        &base,
        &head,
        &["--fail-on-regression", "--json", json.to_str().unwrap()],
    );
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("no significant change"),
        "{}",
        stdout(&output)
    );
    let comparison: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(comparison["verdict"], "no significant change");
    assert_eq!(comparison["regressions"], 0);
    assert_eq!(comparison["base"]["seeds"], 5);

    // The same label on a strategy that retries at once, twenty times: it hammers the limit.
    let worse = run(
        &dir,
        "worse",
        &[
            "--seeds",
            "5",
            "--seed",
            "2",
            "--strategy",
            "ours=full-jitter:base=10ms,cap=50ms,max-attempts=20",
            "--strategy",
            "baseline=none",
        ],
    );
    let output = diff(&base, &worse, &["--fail-on-regression", "--json", "-"]);
    assert_exit(&output, 1);
    let comparison: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(comparison["verdict"], "regression");
    let worse_metrics: Vec<&str> = comparison["runs"][0]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|metric| metric["change"] == "worse")
        .map(|metric| metric["metric"].as_str().unwrap())
        .collect();
    assert!(worse_metrics.contains(&"amplif."), "{worse_metrics:?}");
}

#[test]
fn runs_that_do_not_pair_exit_2_even_without_the_gate() {
    let dir = scratch_dir("seeds-unpaired");
    let base = run(&dir, "base", &["--seeds", "3"]);
    let renamed = run(
        &dir,
        "renamed",
        &[
            "--seeds",
            "3",
            "--strategy",
            "mine=openai-python@2.52",
            "--strategy",
            "baseline=none",
        ],
    );
    let output = diff(&base, &renamed, &[]);
    assert_exit(&output, 2);
    let message = stderr(&output);
    assert!(message.contains("the runs do not pair"), "{message}");
    assert!(
        message.contains("only in the base report: tier-1 / ours"),
        "{message}"
    );
    assert!(
        message.contains("only in the head report: tier-1 / mine"),
        "{message}"
    );

    // Another scenario: the gate-pass fixture, with the same strategy labels as far as they go.
    let other = dir.join("other");
    let output = ratelab(&[
        "run",
        fixture("gate-pass.toml").to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let output = diff(&base, &other, &[]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("different scenarios"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_gate_needs_three_seeds_a_side() {
    let dir = scratch_dir("seeds-too-few");
    let one = run(&dir, "one", &[]);
    let two = run(&dir, "two", &["--seeds", "2"]);
    let three = run(&dir, "three", &["--seeds", "3"]);
    for (base, head) in [(&one, &one), (&two, &three), (&three, &two)] {
        let output = diff(base, head, &["--fail-on-regression"]);
        assert_exit(&output, 2);
        assert!(stderr(&output).contains("--seeds"), "{}", stderr(&output));
        // Without the gate the comparison is still printed, and passes.
        assert_exit(&diff(base, head, &[]), 0);
    }
    assert_exit(&diff(&three, &three, &["--fail-on-regression"]), 0);
}

#[test]
fn bad_seed_counts_and_thresholds_are_usage_errors() {
    let scenario = fixture("seeds.toml");
    for args in [
        vec!["run", scenario.to_str().unwrap(), "--seeds", "0"],
        vec!["run", scenario.to_str().unwrap(), "--jobs", "0"],
        vec!["diff", "a", "b", "--confidence", "80"],
    ] {
        assert_exit(&ratelab(&args), 2);
    }
}

#[test]
fn a_seed_only_diff_of_shipped_scenarios_is_no_significant_change() {
    let dir = scratch_dir("seeds-shipped");
    for name in ["tpm-bound", "steady-under-limit"] {
        let scenario = format!("scenarios/{name}.toml");
        let mut sides = Vec::new();
        for seed in ["1", "2"] {
            let out = dir.join(format!("{name}-{seed}"));
            let output = ratelab(&[
                "run",
                &scenario,
                "--seeds",
                "5",
                "--seed",
                seed,
                "--out",
                out.to_str().unwrap(),
            ]);
            assert_exit(&output, 0);
            sides.push(out);
        }
        let output = diff(&sides[0], &sides[1], &["--fail-on-regression"]);
        assert_exit(&output, 0);
        assert!(
            stdout(&output).starts_with(&format!("{name}: no significant change (5 vs 5 seeds")),
            "{}",
            stdout(&output)
        );
    }
}

#[test]
fn seeds_in_the_scenario_file_apply_and_the_flag_overrides_them() {
    let dir = scratch_dir("seeds-file");
    let text = std::fs::read_to_string(fixture("seeds.toml")).unwrap();
    let scenario = dir.join("three.toml");
    std::fs::write(&scenario, format!("seeds = 3\n{text}")).unwrap();
    let seeds_of = |extra: &[&str]| {
        let out = dir.join(format!("out{}", extra.len()));
        let mut args = vec![
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        assert_exit(&ratelab(&args), 0);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        report["runs"][0]["seeds"]["seeds"]
            .as_array()
            .map_or(1, Vec::len)
    };
    assert_eq!(seeds_of(&[]), 3);
    assert_eq!(seeds_of(&["--seeds", "4"]), 4);
}

#[test]
fn the_seeds_table_of_the_main_job_fits_100_columns_unless_wide() {
    let dir = crate::scratch_dir("seeds-width");
    let out = dir.join("spike");
    let args = |wide: bool| {
        let mut args = vec![
            "run",
            "scenarios/traffic-spike.toml",
            "--seeds",
            "3",
            "--out",
            out.to_str().unwrap(),
        ];
        if wide {
            args.push("--wide");
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |wide: bool| {
        let args = args(wide);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = ratelab(&args);
        assert_exit(&output, 0);
        stdout(&output)
    };
    let compact = run(false);
    // The table's rows are indented under their server's heading.
    let table: Vec<&str> = compact
        .lines()
        .filter(|line| line.starts_with("  ") && line.contains(" ± "))
        .collect();
    assert!(!table.is_empty(), "{compact}");
    for line in &table {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(compact.contains("--wide adds over seeds:"), "{compact}");
    let wide = run(true);
    assert!(
        wide.contains("early retries") && wide.contains("429 share"),
        "{wide}"
    );
}
