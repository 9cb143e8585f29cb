//! The scoreboard: one row per run (server variant x strategy), the numbers every format shows,
//! with the best value in each column marked.
//!
//! Only runs that reach the success floor ([`crate::success_floor`]) can be marked best outside
//! the success column: a run that fails can look good by doing less. Giving up at once gives the
//! lowest latency of the few successes, the fewest 429s, attempts and early retries, a backlog
//! that drains at once and no requests left to give up; and a strategy that succeeds little can
//! still share it evenly. The success column, which says how close each run came, is marked
//! among all runs.

use quota::LimitSet;
use scenario::{RunReport, RunResult};

use crate::units;

/// Which direction is better in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Larger values are better (success rate, goodput).
    Higher,
    /// Smaller values are better (latency, amplification, 429s).
    Lower,
    /// Informational only (request counts).
    Neither,
}

/// A scoreboard column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Header text.
    pub title: &'static str,
    /// Which direction is better; decides the marked cell.
    pub better: Better,
    /// Whether only runs at or above the success floor can be marked best in this column: true
    /// for every marked column but success itself.
    pub floor_gated: bool,
}

/// One cell: the value compared and the text shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The number compared across rows; `None` when not applicable (e.g. no success).
    pub value: Option<f64>,
    /// How the value reads.
    pub text: String,
    /// Whether this is the best value of its column (ties are all marked; nothing is marked
    /// when every row has the same value or there is only one row).
    pub best: bool,
}

/// One run's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Server variant label.
    pub server: String,
    /// Strategy label.
    pub strategy: String,
    /// One cell per [`Scoreboard::columns`] entry.
    pub cells: Vec<Cell>,
}

/// The per-run numbers of a report with the best value per column marked.
///
/// ```
/// let report = report::example_report();
/// let board = report::Scoreboard::of(&report);
/// assert_eq!(board.rows.len(), report.runs.len());
/// let success = board.columns.iter().position(|c| c.title == "success").unwrap();
/// // The example's retrying strategy beats the one that never retries.
/// assert!(board.rows[1].cells[success].best);
/// assert!(!board.rows[0].cells[success].best);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Scoreboard {
    /// Columns after the server and strategy labels.
    pub columns: Vec<Column>,
    /// One row per run, in report order.
    pub rows: Vec<Row>,
    /// Whether the report compares more than one server variant (otherwise renderers may drop
    /// the server column).
    pub several_servers: bool,
    /// The success rate a run needs for a mark in a [`Column::floor_gated`] column.
    pub success_floor: f64,
}

const COLUMNS: [Column; 13] = [
    Column {
        title: "requests",
        better: Better::Neither,
        floor_gated: false,
    },
    Column {
        title: "success",
        better: Better::Higher,
        floor_gated: false,
    },
    Column {
        title: "gave up",
        better: Better::Lower,
        floor_gated: true,
    },
    // Requests still open when the run ended: with success and gave up, every request is
    // accounted for in the table.
    Column {
        title: "unfinished",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "429s",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "attempts",
        better: Better::Neither,
        floor_gated: false,
    },
    Column {
        title: "amplif.",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "p50",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "p99",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "goodput",
        better: Better::Higher,
        floor_gated: true,
    },
    Column {
        title: "early retries",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "drain",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "fairness",
        better: Better::Higher,
        floor_gated: true,
    },
];

/// Columns shown only for a scenario with a batch (closed-loop groups with
/// `requests_per_worker`), after `unfinished`: a batch's work is fixed, so strategies that
/// started fewer of its requests did less of it, and its completion time compares them on the
/// same work. Other scenarios leave them out to keep tables narrow.
const BATCH_COLUMNS: [Column; 2] = [
    Column {
        title: "not started",
        better: Better::Lower,
        floor_gated: true,
    },
    Column {
        title: "makespan",
        better: Better::Lower,
        floor_gated: true,
    },
];

impl Scoreboard {
    /// The scoreboard of a report.
    pub fn of(report: &RunReport) -> Scoreboard {
        let mut columns = COLUMNS.to_vec();
        let has_batch = has_batch(report);
        let batch_at = columns
            .iter()
            .position(|column| column.title == "unfinished")
            .map_or(columns.len(), |index| index + 1);
        if has_batch {
            columns.splice(batch_at..batch_at, BATCH_COLUMNS);
        }
        let mut rows: Vec<Row> = report
            .runs
            .iter()
            .map(|run| {
                let mut cells = cells(run, server_limits(report, &run.server));
                if has_batch {
                    cells.splice(batch_at..batch_at, batch_cells(run));
                }
                Row {
                    server: run.server.clone(),
                    strategy: run.strategy.clone(),
                    cells,
                }
            })
            .collect();
        let success_floor = crate::success_floor(report);
        let eligible: Vec<bool> = report
            .runs
            .iter()
            .map(|run| run.totals.success_rate() >= success_floor)
            .collect();
        for (column_index, column) in columns.iter().enumerate() {
            let all_eligible = vec![true; rows.len()];
            let eligible = if column.floor_gated {
                &eligible
            } else {
                &all_eligible
            };
            mark_best(&mut rows, eligible, column_index, column.better);
        }
        let several_servers = report
            .runs
            .iter()
            .any(|run| run.server != report.runs[0].server);
        Scoreboard {
            columns,
            rows,
            several_servers,
            success_floor,
        }
    }
}

impl Scoreboard {
    /// Which runs can be marked, for a legend: `only runs with at least 99.0% success are
    /// marked outside the success column`.
    pub fn marking_rule(&self) -> String {
        format!(
            "only runs with at least {} success are marked outside the success column",
            units::percent(self.success_floor)
        )
    }
}

/// The limits of the server variant labelled `label`, if the report carries them.
pub(crate) fn server_limits<'a>(report: &'a RunReport, label: &str) -> Option<&'a LimitSet> {
    report
        .scenario
        .servers
        .iter()
        .find(|server| server.label == label)
        .map(|server| &server.limits)
}

/// Whether the report's scenario has a batch: a closed-loop group with `requests_per_worker`.
pub(crate) fn has_batch(report: &RunReport) -> bool {
    report
        .scenario
        .groups
        .iter()
        .any(|group| group.batch_requests.is_some())
}

/// The lowest Jain index over groups with more than one instance, if any.
pub(crate) fn worst_fairness(run: &RunResult) -> Option<f64> {
    run.analysis
        .fairness
        .values()
        .filter(|fairness| fairness.instances > 1)
        .filter_map(|fairness| fairness.jain_index)
        .min_by(f64::total_cmp)
}

/// Goodput as text, with its share of the RPM limit when known.
pub(crate) fn goodput_text(run: &RunResult, limits: Option<&LimitSet>) -> String {
    let rate = run.analysis.goodput.requests_per_minute;
    match limits.and_then(|limits| limits.rpm) {
        Some(rpm) if rpm > 0 => format!(
            "{} ({:.0}% of RPM)",
            units::per_minute(rate),
            rate * 100.0 / rpm as f64
        ),
        _ => units::per_minute(rate),
    }
}

fn cells(run: &RunResult, limits: Option<&LimitSet>) -> Vec<Cell> {
    let totals = &run.totals;
    let has_latency = run.latency.count > 0;
    let latency_cell = |micros: u64| {
        if has_latency {
            cell(Some(micros as f64), units::latency(micros))
        } else {
            cell(None, "-".to_owned())
        }
    };
    let drain = run.analysis.backlog.drain_ms;
    let fairness = worst_fairness(run);
    vec![
        cell(Some(totals.requests as f64), totals.requests.to_string()),
        cell(
            Some(totals.success_rate()),
            units::percent(totals.success_rate()),
        ),
        cell(Some(totals.gave_up as f64), totals.gave_up.to_string()),
        cell(
            Some(totals.unfinished as f64),
            totals.unfinished.to_string(),
        ),
        cell(
            Some(totals.rate_limited as f64),
            totals.rate_limited.to_string(),
        ),
        cell(Some(totals.attempts as f64), totals.attempts.to_string()),
        cell(
            Some(totals.amplification()),
            units::factor(totals.amplification()),
        ),
        latency_cell(run.latency.p50_us),
        latency_cell(run.latency.p99_us),
        cell(
            Some(run.analysis.goodput.requests_per_minute),
            goodput_text(run, limits),
        ),
        cell(
            Some(run.analysis.early_retries as f64),
            run.analysis.early_retries.to_string(),
        ),
        match drain {
            Some(millis) => cell(Some(millis as f64), units::duration_ms(millis)),
            None => cell(None, "never".to_owned()),
        },
        match fairness {
            Some(index) => cell(Some(index), format!("{index:.3}")),
            None => cell(None, "-".to_owned()),
        },
    ]
}

/// The `not started` and `makespan` cells of a run (dashes for a run without batch numbers).
fn batch_cells(run: &RunResult) -> [Cell; 2] {
    match run.batch {
        Some(batch) => [
            cell(
                Some(batch.not_started as f64),
                batch.not_started.to_string(),
            ),
            match batch.makespan_ms {
                Some(millis) => cell(Some(millis as f64), units::duration_ms(millis)),
                None => cell(None, "not finished".to_owned()),
            },
        ],
        None => [cell(None, "-".to_owned()), cell(None, "-".to_owned())],
    }
}

fn cell(value: Option<f64>, text: String) -> Cell {
    Cell {
        value,
        text,
        best: false,
    }
}

/// Marks the best value of `column` among the `eligible` rows.
fn mark_best(rows: &mut [Row], eligible: &[bool], column: usize, better: Better) {
    let values: Vec<f64> = rows
        .iter()
        .filter_map(|row| row.cells[column].value)
        .collect();
    let candidates = rows
        .iter()
        .zip(eligible)
        .filter(|(_, eligible)| **eligible)
        .filter_map(|(row, _)| row.cells[column].value);
    let best = match better {
        Better::Neither => return,
        Better::Higher => candidates.max_by(f64::total_cmp),
        Better::Lower => candidates.min_by(f64::total_cmp),
    };
    let Some(best) = best else { return };
    // Marking every row when all are equal says nothing; only a real winner is marked.
    let all_equal = values.len() == rows.len() && values.iter().all(|&value| value == best);
    if rows.len() < 2 || all_equal {
        return;
    }
    for (row, eligible) in rows.iter_mut().zip(eligible) {
        let cell = &mut row.cells[column];
        cell.best = *eligible && cell.value == Some(best);
    }
}
