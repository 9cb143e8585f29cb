//! Every request is accounted for in every table: for each shipped scenario, success, gave up
//! and unfinished add up to the requests in the scoreboard that the terminal, Markdown and HTML
//! tables show, and in `report.json`. A batch's requests never started are shown, and
//! strategies that did different work are flagged.

use std::path::{Path, PathBuf};

use report::{Colour, Scoreboard};
use results::RunReport;

pub(crate) fn shipped_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .collect();
    paths.sort();
    paths
}

pub(crate) fn simulate(path: &Path) -> RunReport {
    let text = std::fs::read_to_string(path).expect("readable");
    let scenario = scenario::parse_scenario(&text, &path.display().to_string(), &mut |file| {
        std::fs::read_to_string(file)
    })
    .unwrap_or_else(|error| panic!("{error}"));
    sim::simulate(&scenario, &mut |_| {}).unwrap_or_else(|error| panic!("{error}"))
}

fn column(board: &Scoreboard, title: &str) -> Option<usize> {
    board
        .columns
        .iter()
        .position(|column| column.title == title)
}

#[track_caller]
fn check_accounting(name: &str, report: &RunReport) {
    let board = Scoreboard::of(report);
    let index = |title: &str| {
        column(&board, title).unwrap_or_else(|| panic!("{name}: the scoreboard has no {title}"))
    };
    let (requests, success, gave_up, unfinished) = (
        index("requests"),
        index("success"),
        index("gave up"),
        index("unfinished"),
    );
    for (row, run) in board.rows.iter().zip(&report.runs) {
        let value = |column: usize| row.cells[column].value.expect("a count");
        let shown_requests = value(requests);
        let succeeded = (value(success) * shown_requests).round();
        assert_eq!(
            succeeded + value(gave_up) + value(unfinished),
            shown_requests,
            "{name}, {}: success, gave up and unfinished add up to requests in the table",
            row.strategy
        );
        let totals = &run.totals;
        assert_eq!(
            totals.succeeded + totals.gave_up + totals.unfinished,
            totals.requests,
            "{name}, {}: and in report.json",
            row.strategy
        );
        for (group, totals) in &run.groups {
            assert_eq!(
                totals.succeeded + totals.gave_up + totals.unfinished,
                totals.requests,
                "{name}, {}, group {group}",
                row.strategy
            );
        }
    }
    let has_batch = report
        .scenario
        .groups
        .iter()
        .any(|group| group.batch_requests.is_some());
    assert_eq!(column(&board, "not started").is_some(), has_batch, "{name}");
    assert_eq!(column(&board, "makespan").is_some(), has_batch, "{name}");
    if has_batch {
        let not_started = index("not started");
        let planned: u64 = report
            .scenario
            .groups
            .iter()
            .filter_map(|group| group.batch_requests)
            .sum();
        for (row, run) in board.rows.iter().zip(&report.runs) {
            let batch = run.batch.expect("a batch scenario reports its batch");
            let started: u64 = report
                .scenario
                .groups
                .iter()
                .filter(|group| group.batch_requests.is_some())
                .map(|group| run.groups[&group.name].requests)
                .sum();
            assert_eq!(batch.requests, planned);
            assert_eq!(
                started + batch.not_started,
                planned,
                "{name}, {}: started and not started make the batch",
                row.strategy
            );
            assert_eq!(row.cells[not_started].value, Some(batch.not_started as f64));
        }
    }

    // The renderers show the scoreboard's columns: the wide terminal table's header line, the
    // Markdown scoreboard's header row and the HTML scoreboard's header cells. The default
    // terminal table keeps the columns that account for every request.
    let terminal = report::terminal_table(report, Colour::Never);
    let compact_header = terminal.lines().nth(1).expect("a header line");
    for title in ["success", "gave up", "unfinished"]
        .into_iter()
        .chain(report::different_work_warning(report).map(|_| "not started"))
    {
        assert!(
            compact_header.contains(title),
            "{name}: the default terminal table lacks {title}"
        );
    }
    let wide = report::terminal_table_with(
        report,
        report::TableOptions {
            wide: true,
            ..report::TableOptions::compact(Colour::Never)
        },
    );
    let header = wide.lines().nth(1).expect("a header line");
    let markdown = report::summary_markdown(report);
    let markdown_header = markdown
        .lines()
        .find(|line| line.starts_with("| strategy |") || line.starts_with("| server |"))
        .expect("a scoreboard header");
    let html = report::html_page(report, &[]);
    let html_scoreboard = html
        .split("<h2>Scoreboard</h2>")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("an HTML scoreboard");
    for column in &board.columns {
        assert!(
            header.contains(column.title),
            "{name}: terminal lacks {}",
            column.title
        );
        assert!(
            markdown_header.contains(&format!("| {} |", column.title)),
            "{name}: summary.md lacks {}",
            column.title
        );
        assert!(
            html_scoreboard.contains(&format!("<th>{}</th>", column.title)),
            "{name}: index.html lacks {}",
            column.title
        );
    }

    let requests: Vec<u64> = report.runs.iter().map(|run| run.totals.requests).collect();
    let same_work = requests.iter().all(|count| *count == requests[0]);
    let warned = report::different_work_warning(report).is_some();
    assert_eq!(warned, !same_work, "{name}: warned about different work");
    assert_eq!(
        terminal.contains("Warning: Strategies did different work"),
        warned
    );
    assert_eq!(
        markdown.contains("**Warning:** Strategies did different work"),
        warned
    );
    assert_eq!(
        html.contains("<b>Warning:</b> Strategies did different work"),
        warned
    );
}

#[test]
fn every_request_of_every_shipped_scenario_is_accounted_for_in_every_table() {
    std::thread::scope(|scope| {
        let checks: Vec<_> = shipped_scenarios()
            .into_iter()
            .map(|path| {
                scope.spawn(move || {
                    let name = path.display().to_string();
                    check_accounting(&name, &simulate(&path));
                })
            })
            .collect();
        for check in checks {
            if let Err(panic) = check.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}
