//! Comparing two reports, such as a baseline and the current run, for PR review: runs are
//! paired by server variant and strategy, and every scoreboard column that moved is listed as
//! better or worse.

use std::fmt::Write;

use scenario::RunReport;

use crate::markdown::escape;
use crate::scoreboard::{Better, Row, Scoreboard};
use crate::terminal::Colour;

/// How a metric moved from the base to the head report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Moved in the better direction of its column.
    Better,
    /// Moved in the worse direction.
    Worse,
    /// Moved by less than 1%, or in a column with no better direction (request counts).
    Changed,
}

/// One scoreboard value that differs between the two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDelta {
    /// Scoreboard column title, e.g. `p99`.
    pub metric: &'static str,
    /// The value in the base report, as shown.
    pub base: String,
    /// The value in the head report, as shown.
    pub head: String,
    /// Relative change in percent, when both values exist and the base is not zero.
    pub relative_percent: Option<f64>,
    /// Which way it moved.
    pub change: Change,
}

/// The differences of one run present in both reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDelta {
    /// Server variant label.
    pub server: String,
    /// Strategy label.
    pub strategy: String,
    /// Columns whose values differ, in scoreboard order.
    pub deltas: Vec<MetricDelta>,
    /// Columns with the same value in both.
    pub unchanged: usize,
}

/// The comparison of a base report with a head report.
///
/// ```
/// let base = report::example_report();
/// let mut head = base.clone();
/// head.runs[1].latency.p99_us *= 2;
/// let diff = report::ReportDiff::new(&base, &head);
/// assert_eq!(diff.runs[1].deltas.len(), 1);
/// assert_eq!(diff.runs[1].deltas[0].metric, "p99");
/// assert_eq!(diff.regressions(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDiff {
    /// Scenario name of the base report.
    pub base_name: String,
    /// Scenario name of the head report.
    pub head_name: String,
    /// Whether the two reports used different seeds (then differences may be noise).
    pub seeds_differ: bool,
    /// Runs present in both, in head order.
    pub runs: Vec<RunDelta>,
    /// Runs (`server / strategy`) only in the base report.
    pub only_in_base: Vec<String>,
    /// Runs only in the head report.
    pub only_in_head: Vec<String>,
}

impl ReportDiff {
    /// Compares `base` with `head`.
    pub fn new(base: &RunReport, head: &RunReport) -> ReportDiff {
        let base_board = Scoreboard::of(base);
        let head_board = Scoreboard::of(head);
        let key = |row: &Row| format!("{} / {}", row.server, row.strategy);
        let find = |board: &Scoreboard, wanted: &Row| {
            board
                .rows
                .iter()
                .position(|row| row.server == wanted.server && row.strategy == wanted.strategy)
        };
        let mut runs = Vec::new();
        let mut only_in_head = Vec::new();
        for head_row in &head_board.rows {
            let Some(index) = find(&base_board, head_row) else {
                only_in_head.push(key(head_row));
                continue;
            };
            runs.push(run_delta(
                &base_board,
                &base_board.rows[index],
                &head_board,
                head_row,
            ));
        }
        let only_in_base = base_board
            .rows
            .iter()
            .filter(|row| find(&head_board, row).is_none())
            .map(key)
            .collect();
        ReportDiff {
            base_name: base.scenario.name.clone(),
            head_name: head.scenario.name.clone(),
            seeds_differ: base.scenario.seed != head.scenario.seed,
            runs,
            only_in_base,
            only_in_head,
        }
    }

    /// How many values got worse.
    pub fn regressions(&self) -> usize {
        self.deltas_where(Change::Worse)
    }

    /// How many values got better.
    pub fn improvements(&self) -> usize {
        self.deltas_where(Change::Better)
    }

    fn deltas_where(&self, change: Change) -> usize {
        self.runs
            .iter()
            .flat_map(|run| &run.deltas)
            .filter(|delta| delta.change == change)
            .count()
    }

    fn headline(&self) -> String {
        let names = if self.base_name == self.head_name {
            self.head_name.clone()
        } else {
            format!("{} → {}", self.base_name, self.head_name)
        };
        format!(
            "{names}: {} worse, {} better",
            self.regressions(),
            self.improvements()
        )
    }

    /// The comparison as Markdown for a PR comment: a headline, then one row per changed value
    /// with worse values in bold.
    pub fn markdown(&self) -> String {
        let mut out = format!("### ratelab diff: {}\n\n", escape(&self.headline()));
        if self.seeds_differ {
            out.push_str(
                "> The two runs used different seeds: small differences may be noise.\n\n",
            );
        }
        let changed: Vec<&RunDelta> = self
            .runs
            .iter()
            .filter(|run| !run.deltas.is_empty())
            .collect();
        if changed.is_empty() {
            out.push_str("No value changed.\n");
        } else {
            out.push_str("| run | metric | base | head | change |\n|:--|:--|--:|--:|:--|\n");
            for run in changed {
                for (index, delta) in run.deltas.iter().enumerate() {
                    let change = describe_change(delta);
                    let change = if delta.change == Change::Worse {
                        format!("**{change}**")
                    } else {
                        change
                    };
                    // The run is named on its first row only, so the table reads as groups.
                    let name = if index == 0 {
                        let label = format!("{} / {}", run.server, run.strategy);
                        format!("`{}`", label.replace('`', "'"))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "| {name} | {} | {} | {} | {change} |",
                        delta.metric,
                        escape(&delta.base),
                        escape(&delta.head),
                    );
                }
            }
        }
        for (label, runs) in [("base", &self.only_in_base), ("head", &self.only_in_head)] {
            if !runs.is_empty() {
                let _ = writeln!(
                    out,
                    "\nOnly in the {label} report: {}",
                    runs.iter()
                        .map(|run| format!("`{}`", run.replace('`', "'")))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        out
    }

    /// The comparison for a terminal: one line per changed value, worse in red and better in
    /// green when colours are on.
    pub fn terminal(&self, colour: Colour) -> String {
        let mut out = format!("{}\n", self.headline());
        if self.seeds_differ {
            out.push_str(
                "note: the two runs used different seeds; small differences may be noise\n",
            );
        }
        for run in self.runs.iter().filter(|run| !run.deltas.is_empty()) {
            let _ = writeln!(out, "{} / {}", run.server, run.strategy);
            let metric_width = run
                .deltas
                .iter()
                .map(|delta| delta.metric.len())
                .max()
                .unwrap_or(0);
            let values: Vec<String> = run
                .deltas
                .iter()
                .map(|delta| format!("{} -> {}", delta.base, delta.head))
                .collect();
            let value_width = values
                .iter()
                .map(|value| value.chars().count())
                .max()
                .unwrap_or(0);
            for (delta, value) in run.deltas.iter().zip(&values) {
                let line = format!(
                    "  {:<metric_width$}  {value:>value_width$}  {}",
                    delta.metric,
                    describe_change(delta)
                );
                let code = match (colour, delta.change) {
                    (Colour::Always, Change::Worse) => Some("\x1b[1;31m"),
                    (Colour::Always, Change::Better) => Some("\x1b[32m"),
                    _ => None,
                };
                match code {
                    Some(code) => {
                        let _ = writeln!(out, "{code}{line}\x1b[0m");
                    }
                    None => {
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
        }
        for (label, runs) in [("base", &self.only_in_base), ("head", &self.only_in_head)] {
            for run in runs {
                let _ = writeln!(out, "only in the {label} report: {run}");
            }
        }
        out
    }
}

/// Relative moves below this many percent are reported as changed, not better or worse.
const NOISE_PERCENT: f64 = 1.0;

/// The moves of one run, column by column. Columns are paired by title: a scoreboard has
/// columns only some reports show (a batch's), and a column in one report alone is skipped.
fn run_delta(base_board: &Scoreboard, base: &Row, head_board: &Scoreboard, head: &Row) -> RunDelta {
    let mut deltas = Vec::new();
    let mut unchanged = 0;
    for (column, head_cell) in head_board.columns.iter().zip(&head.cells) {
        let Some(base_cell) = base_board
            .columns
            .iter()
            .position(|base_column| base_column.title == column.title)
            .and_then(|index| base.cells.get(index))
        else {
            continue;
        };
        if base_cell.value == head_cell.value && base_cell.text == head_cell.text {
            unchanged += 1;
            continue;
        }
        let relative_percent = match (base_cell.value, head_cell.value) {
            (Some(base), Some(head)) if base != 0.0 => Some((head - base) / base.abs() * 100.0),
            _ => None,
        };
        // Moves under 1% are within noise between seeds: listed, but neither better nor worse.
        let negligible = relative_percent.is_some_and(|percent| percent.abs() < NOISE_PERCENT);
        let change = match (column.better, base_cell.value, head_cell.value) {
            (Better::Neither, _, _) => Change::Changed,
            _ if negligible => Change::Changed,
            (Better::Higher, Some(base), Some(head)) if head > base => Change::Better,
            (Better::Lower, Some(base), Some(head)) if head < base => Change::Better,
            (_, Some(_), Some(_)) => Change::Worse,
            // A value appearing (e.g. a p99 once something succeeds) is better; vanishing, worse.
            (_, None, Some(_)) => Change::Better,
            (_, _, None) => Change::Worse,
        };
        deltas.push(MetricDelta {
            metric: column.title,
            base: base_cell.text.clone(),
            head: head_cell.text.clone(),
            relative_percent,
            change,
        });
    }
    RunDelta {
        server: head.server.clone(),
        strategy: head.strategy.clone(),
        deltas,
        unchanged,
    }
}

/// `worse (+12.5%)`, `better (-3.0%)`, `changed`.
fn describe_change(delta: &MetricDelta) -> String {
    let word = match delta.change {
        Change::Better => "better",
        Change::Worse => "worse",
        Change::Changed => "changed",
    };
    match delta.relative_percent {
        Some(percent) if percent >= 0.0 => format!("{word} (+{percent:.1}%)"),
        Some(percent) => format!("{word} ({percent:.1}%)"),
        None => word.to_owned(),
    }
}
