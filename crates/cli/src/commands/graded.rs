//! The report of a real client graded by the mock server, shared by `ratelab test` and
//! `ratelab serve --scenario`: the graded attempts aggregated exactly as a simulated
//! strategy's, beside the simulated models of the strategies the scenario declares, judged by
//! the scenario's `[expect]`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ratelab_server::{Grader, Grading, KeyGrade};
use results::{RunMetrics, RunReport, RunResult, ScenarioSummary, ServerSaw, TestedClient};
use scenario::{Scenario, ServerVariant};

/// The strategy label the tested program's run carries in reports; `[expect.strategy."client"]`
/// sets thresholds for it alone.
pub const CLIENT_LABEL: &str = "client";

/// What was tested, for the report's words.
pub struct Tested<'a> {
    /// The command that ran, or empty for clients started by hand.
    pub command: String,
    /// Copies of it at once (0 when started by hand).
    pub instances: u32,
    /// How long the client ran: the window goodput is measured over.
    pub elapsed: Duration,
    /// The grader the server filled.
    pub grader: &'a Grader,
}

/// Suffix of a simulated model's strategy label beside the client.
const SIMULATED: &str = " (simulated)";

/// The report of the tested program on `variant`: its run, as the server saw it, then the
/// `models` beside it ([`simulated_models`]). Only the client's run is gated; the simulated
/// ones are baselines, judged and reported. Returned with the grading it was built from: both
/// come from one snapshot of the grader, so they agree while clients still send.
pub fn graded_report(
    scenario: &Scenario,
    variant: &ServerVariant,
    tested: &Tested<'_>,
    models: &[RunResult],
) -> (RunReport, Grading) {
    let (grading, records) = tested.grader.snapshot();
    let mut summary = ScenarioSummary::of(scenario);
    summary
        .servers
        .retain(|server| server.label == variant.label);
    let bin_width_ns = u64::try_from(scenario.bin_width.as_nanos()).unwrap_or(u64::MAX);
    let mut metrics = RunMetrics::new(vec![CLIENT_LABEL.to_owned()], bin_width_ns);
    // Goodput over the scenario's duration and drain, as the simulated runs beside it, unless
    // the client ran longer.
    let window = tested.elapsed.max(scenario.horizon());
    metrics.set_goodput_window(u64::try_from(window.as_nanos()).unwrap_or(u64::MAX));
    // A scenario whose clients are a batch (closed loops with `requests_per_worker`) says how
    // many requests the client is to send; its makespan runs from the first the server saw.
    let batch: Option<u64> = scenario
        .groups
        .iter()
        .map(scenario::ClientGroup::batch_requests)
        .try_fold(0u64, |sum, requests| {
            requests.map(|requests| sum.saturating_add(requests))
        });
    if let Some(requests) = batch {
        let first = records.iter().map(|record| record.arrived_ns).min();
        metrics.track_batch(requests, first.unwrap_or(0));
    }
    for record in records {
        if record.attempt == 0 {
            metrics.record_arrival(record.client, record.arrived_ns);
        }
        metrics.record_send(record.sent_ns, record.attempt);
        metrics.record_attempt(&record);
    }
    let mut client = metrics.finish(variant.label.clone(), CLIENT_LABEL.to_owned());
    client.spec = tested.command.clone();
    let mut runs = vec![client];
    runs.extend_from_slice(models);
    summary.strategies = runs.iter().map(|run| run.strategy.clone()).collect();
    // The program under test is what the gate is about; the models beside it are baselines.
    summary.expect.gate = Some(vec![CLIENT_LABEL.to_owned()]);
    let models = runs[1..].iter().map(|run| run.strategy.clone()).collect();
    let report = RunReport {
        format_version: results::REPORT_FORMAT_VERSION,
        scenario: summary,
        runs,
        tested: Some(TestedClient {
            run: CLIENT_LABEL.to_owned(),
            command: tested.command.clone(),
            instances: tested.instances,
            models,
            seen: server_saw(&grading),
        }),
    };
    (report, grading)
}

/// The grading's figures for the report: the total, then each key when there are several.
fn server_saw(grading: &Grading) -> Vec<ServerSaw> {
    let row = |key: &str, grade: &KeyGrade| ServerSaw {
        key: key.to_owned(),
        requests: grade.requests,
        logical_requests: grade.logical_requests,
        retries: grade.retries,
        early_retries: grade.early_retries,
        clustered_retries: grade.clustered_retries,
        storm_share: grade.storm_share,
        gave_up: grade.gave_up,
        retried_no_retry: grade.retried_should_not_retry + grade.retried_insufficient_quota,
        tokens_charged: grade.tokens_charged,
        tokens_wasted: grade.tokens_wasted,
    };
    let mut rows = vec![row("total", &grading.total)];
    if grading.keys.len() > 1 {
        rows.extend(grading.keys.iter().map(|(key, grade)| row(key, grade)));
    }
    rows
}

/// The scenario's strategies simulated on `variant` (its workload, seed and server), labelled
/// `<label> (simulated)`: the models a tested client is compared with.
pub fn simulated_models(
    scenario: &Scenario,
    variant: &ServerVariant,
) -> anyhow::Result<Vec<RunResult>> {
    let variant_index = scenario
        .server
        .variants
        .iter()
        .position(|candidate| candidate.label == variant.label)
        .context("the served variant is not one of the scenario's")?;
    let strategies = scenario.strategies.len();
    (0..strategies)
        .map(|strategy| {
            let mut run =
                sim::simulate_run_untraced(scenario, variant_index * strategies + strategy)
                    .with_context(|| {
                        format!("cannot simulate the scenario's strategy {}", strategy + 1)
                    })?;
            run.strategy.push_str(SIMULATED);
            Ok(run)
        })
        .collect()
}

/// Where a graded report goes, and what a caller wants besides the directory.
pub struct Output<'a> {
    pub dir: &'a Path,
    pub junit: Option<&'a Path>,
    /// The scenario file, named when it has no `[expect]`.
    pub scenario_path: &'a Path,
}

/// Prints the report's table, writes its directory with `grading.json`, prints what the server
/// saw and the verdicts, writes the JUnit file when asked; returns whether the client met
/// `[expect]`.
pub fn conclude(
    report: &RunReport,
    grading: &Grading,
    output: &Output<'_>,
) -> anyhow::Result<bool> {
    crate::out!(
        "{}",
        report::terminal_table_with(report, super::report::table_options(false))
    )?;
    super::report::write_run_directory(output.dir, report)?;
    let grading_json =
        serde_json::to_string_pretty(grading).context("cannot serialize the grading")?;
    let grading_path = output.dir.join("grading.json");
    std::fs::write(&grading_path, grading_json + "\n")
        .with_context(|| format!("cannot write {}", grading_path.display()))?;
    crate::outln!("{}", grading_summary(grading))?;

    let checked = report::CheckedScenario::new(&report.scenario.expect, report);
    if report.scenario.expect.is_empty() {
        eprintln!(
            "note: {} has no [expect] table, so only the program's exit code decides (add e.g. `max_early_retries = 0`)",
            output.scenario_path.display()
        );
    } else {
        crate::out!(
            "{}",
            report::verdicts_terminal(std::slice::from_ref(&checked), report::VerdictListing::All)
        )?;
    }
    if let Some(path) = output.junit {
        std::fs::write(path, report::junit_xml(std::slice::from_ref(&checked)))
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    crate::outln!("wrote the report to {}", output.dir.display())?;
    Ok(checked.passed())
}

/// `{"report": ..., "grading": ...}`: what `GET /_admin/report` answers, the two files the
/// report directory gets.
pub fn report_document(report: &RunReport, grading: &Grading) -> serde_json::Value {
    serde_json::json!({ "report": report, "grading": grading })
}

/// What the server saw beyond the scoreboard: logical requests, early and clustered retries,
/// ignored no-retry answers, per key.
fn grading_summary(grading: &Grading) -> String {
    let line = |name: &str, grade: &KeyGrade| {
        format!(
            "  {name:<24} {:>6} requests  {:>5} logical  {:>5} retries  {:>4} early  {:>4} clustered  storm {}  gave up {}  retried no-retry {}",
            grade.requests,
            grade.logical_requests,
            grade.retries,
            grade.early_retries,
            grade.clustered_retries,
            grade
                .storm_share
                .map_or_else(|| "-".to_owned(), |share| format!("{:.0}%", share * 100.0)),
            grade.gave_up,
            grade.retried_should_not_retry + grade.retried_insufficient_quota,
        )
    };
    let mut text = String::from("what the server saw (grading.json has every field):\n");
    text.push_str(&line("total", &grading.total));
    if grading.keys.len() > 1 {
        for (key, grade) in &grading.keys {
            text.push('\n');
            text.push_str(&line(key, grade));
        }
    }
    text
}
