//! Comparing two reports: pairing runs, the direction of each move, and the renderings.

use report::{Change, Colour, ReportDiff, example_report};

fn head_with_changes() -> report::RunReport {
    let mut head = example_report();
    // The retrying strategy got slower and gave up less; a new strategy appeared and one left.
    head.runs[1].latency.p99_us = head.runs[1].latency.p99_us * 3 / 2;
    head.runs[1].totals.gave_up = 10;
    head.runs[0].strategy = "full-jitter".to_owned();
    head
}

#[test]
fn identical_reports_have_no_deltas() {
    let report = example_report();
    let diff = ReportDiff::new(&report, &report);
    assert!(diff.runs.iter().all(|run| run.deltas.is_empty()));
    assert_eq!((diff.regressions(), diff.improvements()), (0, 0));
    assert!(diff.markdown().contains("No value changed."));
}

#[test]
fn runs_pair_by_server_and_strategy_and_moves_have_a_direction() {
    let diff = ReportDiff::new(&example_report(), &head_with_changes());
    assert_eq!(diff.only_in_base, ["tier-1 / none"]);
    assert_eq!(diff.only_in_head, ["tier-1 / full-jitter"]);
    assert_eq!(diff.runs.len(), 1);
    let moves: Vec<(&str, Change)> = diff.runs[0]
        .deltas
        .iter()
        .map(|delta| (delta.metric, delta.change))
        .collect();
    assert_eq!(moves, [("gave up", Change::Better), ("p99", Change::Worse)]);
    assert_eq!(diff.regressions(), 1);
    assert_eq!(diff.improvements(), 1);
}

#[test]
fn diff_markdown_snapshot() {
    insta::assert_snapshot!(ReportDiff::new(&example_report(), &head_with_changes()).markdown());
}

#[test]
fn diff_terminal_snapshot() {
    insta::assert_snapshot!(
        ReportDiff::new(&example_report(), &head_with_changes()).terminal(Colour::Never)
    );
}

#[test]
fn columns_pair_by_title_when_only_one_report_has_a_batch() {
    // The head's scenario became a batch: its scoreboard gains `not started` and `makespan`
    // after `unfinished`. Those are skipped; every other column still meets its counterpart.
    let base = example_report();
    let mut head = example_report();
    head.scenario.groups[0].batch_requests = Some(240);
    for run in &mut head.runs {
        run.batch = Some(results::BatchResult {
            requests: 240,
            not_started: 0,
            makespan_ms: Some(90_000),
        });
    }
    head.runs[1].latency.p99_us *= 2;
    let diff = ReportDiff::new(&base, &head);
    let moves: Vec<(&str, Change)> = diff
        .runs
        .iter()
        .flat_map(|run| &run.deltas)
        .map(|delta| (delta.metric, delta.change))
        .collect();
    assert_eq!(moves, [("p99", Change::Worse)]);
}
