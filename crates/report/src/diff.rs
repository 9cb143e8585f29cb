//! Comparing two reports, such as a baseline and the current run, for PR review: runs are
//! paired by server variant and strategy, and every scoreboard column that moved is listed as
//! better or worse.
//!
//! When both reports ran several seeds (`ratelab run --seeds`), a run's headline metrics are
//! compared through their per-seed values instead: a move is better or worse only when it is
//! outside the noise of the seeds ([`DiffOptions`]), and within it otherwise. Columns without
//! per-seed values (request and attempt counts, unfinished, drain, fairness) are then left out:
//! they are the first seed's, and two different first seeds differ by noise alone.

use std::fmt::Write;

use results::{Confidence, HeadlineMetric, Interval, RunReport, RunResult};

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
    /// Moved, but within the noise of the seeds: the intervals overlap, or the move is smaller
    /// than [`DiffOptions::min_change_percent`].
    WithinNoise,
}

/// How a diff over several seeds tells a change from noise.
///
/// A metric moved when the two `confidence` intervals of its mean (Student's t over each side's
/// per-seed values) do not overlap **and** the means differ by at least `min_change_percent` of
/// the base mean. Non-overlapping intervals are a stricter test than a t-test at the same level
/// (for two intervals of equal width, about p < 0.006 at 95%), on purpose: a diff compares some
/// ten metrics per run, and a seed-only diff must not cry wolf on one of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffOptions {
    /// The confidence level of the intervals (default 95%).
    pub confidence: Confidence,
    /// The smallest relative move of the mean that counts, in percent (default 1).
    pub min_change_percent: f64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            confidence: Confidence::P95,
            min_change_percent: NOISE_PERCENT,
        }
    }
}

/// The fewest seeds a side needs before `--fail-on-regression` may pass or fail: with fewer the
/// interval is too wide (t = 12.7 for two seeds) or absent (one seed) to tell noise apart.
pub const MIN_GATE_SEEDS: usize = 3;

/// Why two reports cannot be compared run by run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairingError {
    /// The reports are of different scenarios.
    #[error(
        "the two runs are of different scenarios (base \"{base}\", head \"{head}\"): diff compares two runs of the same scenario, e.g. `ratelab run {head}.toml --seed 1` and `--seed 2`"
    )]
    DifferentScenarios {
        /// The base report's scenario.
        base: String,
        /// The head report's scenario.
        head: String,
    },
    /// Some runs (`server / strategy`) appear in one report only.
    #[error(
        "the runs do not pair: {} (runs pair by server variant and strategy label; give both runs the same labels, e.g. `--strategy 'ours=full-jitter'` on both sides)",
        describe_unpaired(.only_in_base, .only_in_head)
    )]
    UnpairedRuns {
        /// Runs only in the base report.
        only_in_base: Vec<String>,
        /// Runs only in the head report.
        only_in_head: Vec<String>,
    },
}

fn describe_unpaired(only_in_base: &[String], only_in_head: &[String]) -> String {
    let mut parts = Vec::new();
    for (side, runs) in [("base", only_in_base), ("head", only_in_head)] {
        if !runs.is_empty() {
            // A whole renamed side would list every run: the first few make the point.
            const SHOWN: usize = 4;
            let mut listed = runs
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if runs.len() > SHOWN {
                let _ = write!(listed, " and {} more", runs.len() - SHOWN);
            }
            parts.push(format!("only in the {side} report: {listed}"));
        }
    }
    parts.join("; ")
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
    /// The base's mean and interval over its seeds, when both reports have seeds.
    pub base_interval: Option<Interval>,
    /// The head's mean and interval over its seeds, when both reports have seeds.
    pub head_interval: Option<Interval>,
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
    /// Seeds per run in the base report (1 without seed statistics).
    pub base_seeds: usize,
    /// Seeds per run in the head report.
    pub head_seeds: usize,
    /// How noise was told from change.
    pub options: DiffOptions,
}

impl ReportDiff {
    /// Compares `base` with `head` with the default [`DiffOptions`].
    pub fn new(base: &RunReport, head: &RunReport) -> ReportDiff {
        ReportDiff::with_options(base, head, DiffOptions::default())
    }

    /// Compares `base` with `head`, judging noise by `options` when both have several seeds.
    pub fn with_options(base: &RunReport, head: &RunReport, options: DiffOptions) -> ReportDiff {
        let base_seeds = seeds_of(base);
        let head_seeds = seeds_of(head);
        let by_seeds = base_seeds > 1 && head_seeds > 1;
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
            let head_run = head.runs.iter().find(|run| same_run(run, head_row));
            let base_run = base.runs.iter().find(|run| same_run(run, head_row));
            runs.push(match (by_seeds, base_run, head_run) {
                (true, Some(base_run), Some(head_run)) => seeds_delta(base_run, head_run, &options),
                _ => run_delta(&base_board, &base_board.rows[index], &head_board, head_row),
            });
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
            base_seeds,
            head_seeds,
            options,
        }
    }

    /// Why the two reports do not pair, if they do not: different scenarios, or runs present
    /// in one report only. A diff that does not pair compares less than it seems to (a renamed
    /// strategy would silently drop out), so the command line refuses it.
    ///
    /// ```
    /// let base = report::example_report();
    /// let mut head = base.clone();
    /// head.runs[0].strategy = "renamed".to_owned();
    /// let error = report::ReportDiff::new(&base, &head).pairing_error().unwrap();
    /// assert!(error.to_string().contains("only in the base report: tier-1 / none"));
    /// ```
    pub fn pairing_error(&self) -> Option<PairingError> {
        if self.base_name != self.head_name {
            return Some(PairingError::DifferentScenarios {
                base: self.base_name.clone(),
                head: self.head_name.clone(),
            });
        }
        if !self.only_in_base.is_empty() || !self.only_in_head.is_empty() {
            return Some(PairingError::UnpairedRuns {
                only_in_base: self.only_in_base.clone(),
                only_in_head: self.only_in_head.clone(),
            });
        }
        None
    }

    /// Whether the changes were judged against the noise of several seeds on both sides.
    pub fn judged_by_seeds(&self) -> bool {
        self.base_seeds > 1 && self.head_seeds > 1
    }

    /// Whether each side has the [`MIN_GATE_SEEDS`] a regression gate needs.
    pub fn enough_seeds_to_gate(&self) -> bool {
        self.base_seeds.min(self.head_seeds) >= MIN_GATE_SEEDS
    }

    /// How many values moved within the noise of the seeds.
    pub fn within_noise(&self) -> usize {
        self.deltas_where(Change::WithinNoise)
    }

    /// The comparison as JSON for PR bots: both sides, the method, the counts, a verdict
    /// (`regression`, `improvement` or `no significant change`), and every moved value. The
    /// layout is documented in `docs/report-json.md`.
    ///
    /// ```
    /// let report = report::example_report();
    /// let json: serde_json::Value =
    ///     serde_json::from_str(&report::ReportDiff::new(&report, &report).json()).unwrap();
    /// assert_eq!(json["verdict"], "no significant change");
    /// ```
    pub fn json(&self) -> String {
        let interval = |interval: Option<Interval>| {
            interval.map(|interval| {
                serde_json::json!({
                    "mean": interval.mean,
                    "half_width": interval.half_width,
                })
            })
        };
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|run| {
                let metrics: Vec<serde_json::Value> = run
                    .deltas
                    .iter()
                    .map(|delta| {
                        serde_json::json!({
                            "metric": delta.metric,
                            "base": delta.base,
                            "head": delta.head,
                            "base_interval": interval(delta.base_interval),
                            "head_interval": interval(delta.head_interval),
                            "relative_percent": delta.relative_percent,
                            "change": change_word(delta.change),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "server": run.server,
                    "strategy": run.strategy,
                    "changed": metrics,
                    "unchanged": run.unchanged,
                })
            })
            .collect();
        let value = serde_json::json!({
            "base": { "scenario": self.base_name, "seeds": self.base_seeds },
            "head": { "scenario": self.head_name, "seeds": self.head_seeds },
            "judged_by_seeds": self.judged_by_seeds(),
            "confidence_percent": self.options.confidence.percent(),
            "min_change_percent": self.options.min_change_percent,
            "verdict": self.verdict(),
            "regressions": self.regressions(),
            "improvements": self.improvements(),
            "within_noise": self.within_noise(),
            "runs": runs,
            "only_in_base": self.only_in_base,
            "only_in_head": self.only_in_head,
        });
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }

    /// `regression` when any value got worse, else `improvement` when any got better, else
    /// `no significant change`.
    pub fn verdict(&self) -> &'static str {
        if self.regressions() > 0 {
            "regression"
        } else if self.improvements() > 0 {
            "improvement"
        } else {
            "no significant change"
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
        if !self.judged_by_seeds() {
            return format!(
                "{names}: {} worse, {} better",
                self.regressions(),
                self.improvements()
            );
        }
        let method = format!(
            "{} vs {} seeds, {}% intervals",
            self.base_seeds,
            self.head_seeds,
            self.options.confidence.percent()
        );
        if self.regressions() + self.improvements() == 0 {
            format!(
                "{names}: no significant change ({method}; {} within noise)",
                self.within_noise()
            )
        } else {
            format!(
                "{names}: {} worse, {} better outside the noise ({method}; {} within noise)",
                self.regressions(),
                self.improvements(),
                self.within_noise()
            )
        }
    }

    /// The note under the headline: why differences may be noise, or how noise was judged.
    fn noise_note(&self) -> Option<String> {
        if self.judged_by_seeds() {
            Some(format!(
                "a change counts only when the {}% intervals of the two means do not overlap and the means differ by at least {}%; columns without per-seed values are left out",
                self.options.confidence.percent(),
                self.options.min_change_percent
            ))
        } else if self.seeds_differ {
            Some(
                "the two runs used different seeds and one seed each: small differences may be noise (run both with --seeds 5 to tell)"
                    .to_owned(),
            )
        } else {
            None
        }
    }

    /// The comparison as Markdown for a PR comment: a headline, then one row per changed value
    /// with worse values in bold.
    pub fn markdown(&self) -> String {
        let mut out = format!("### ratelab diff: {}\n\n", escape(&self.headline()));
        if let Some(note) = self.noise_note() {
            let mut note = escape(&note);
            if let Some(first) = note.get(..1) {
                note = format!("{}{}", first.to_uppercase(), &note[1..]);
            }
            let _ = writeln!(out, "> {note}.\n");
        }
        let changed: Vec<&RunDelta> = self
            .runs
            .iter()
            .filter(|run| run.deltas.iter().any(listed))
            .collect();
        if changed.is_empty() && self.within_noise() > 0 {
            out.push_str("No value moved outside the noise.\n");
        } else if changed.is_empty() {
            out.push_str("No value changed.\n");
        } else {
            out.push_str("| run | metric | base | head | change |\n|:--|:--|--:|--:|:--|\n");
            for run in changed {
                for (index, delta) in run.deltas.iter().filter(|delta| listed(delta)).enumerate() {
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
        if let Some(note) = self.noise_note() {
            let _ = writeln!(out, "note: {note}");
        }
        for run in self.runs.iter().filter(|run| run.deltas.iter().any(listed)) {
            let _ = writeln!(out, "{} / {}", run.server, run.strategy);
            let deltas: Vec<&MetricDelta> =
                run.deltas.iter().filter(|delta| listed(delta)).collect();
            let metric_width = deltas
                .iter()
                .map(|delta| delta.metric.len())
                .max()
                .unwrap_or(0);
            let values: Vec<String> = deltas
                .iter()
                .map(|delta| format!("{} -> {}", delta.base, delta.head))
                .collect();
            let value_width = values
                .iter()
                .map(|value| value.chars().count())
                .max()
                .unwrap_or(0);
            for (delta, value) in deltas.iter().zip(&values) {
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
            base_interval: None,
            head_interval: None,
        });
    }
    RunDelta {
        server: head.server.clone(),
        strategy: head.strategy.clone(),
        deltas,
        unchanged,
    }
}

/// Seeds per run of a report: those of its first run with statistics, else 1.
fn seeds_of(report: &RunReport) -> usize {
    report
        .runs
        .iter()
        .filter_map(|run| run.seeds.as_ref())
        .map(results::SeedStats::count)
        .min()
        .unwrap_or(1)
}

fn same_run(run: &RunResult, row: &Row) -> bool {
    run.server == row.server && run.strategy == row.strategy
}

/// The moves of one run's headline metrics over the seeds of both sides.
fn seeds_delta(base: &RunResult, head: &RunResult, options: &DiffOptions) -> RunDelta {
    let mut deltas = Vec::new();
    let mut unchanged = 0;
    for metric in HeadlineMetric::ALL {
        let values = |run: &RunResult| {
            run.seeds
                .as_ref()
                .and_then(|stats| stats.metric(metric))
                .map(|stats| stats.values.clone())
        };
        let (base_values, head_values) = match (values(base), values(head)) {
            (None, None) => continue,
            (base_values, head_values) => (
                base_values.unwrap_or_default(),
                head_values.unwrap_or_default(),
            ),
        };
        let complete = |values: &[Option<f64>]| values.iter().copied().collect::<Option<Vec<_>>>();
        let interval = |values: &[Option<f64>]| {
            complete(values).and_then(|values| Interval::student_t(&values, options.confidence))
        };
        let base_interval = interval(&base_values);
        let head_interval = interval(&head_values);
        let text = |interval: Option<Interval>| match interval {
            Some(interval) => format!(
                "{} ± {}",
                crate::confidence::format_value(metric, interval.mean),
                crate::confidence::format_value(metric, interval.half_width)
            ),
            None => "n/a".to_owned(),
        };
        let (base_text, head_text) = (text(base_interval), text(head_interval));
        let change = match (base_interval, head_interval) {
            (Some(base_interval), Some(head_interval)) => {
                if base_interval == head_interval {
                    unchanged += 1;
                    continue;
                }
                let relative = (base_interval.mean != 0.0).then(|| {
                    (head_interval.mean - base_interval.mean) / base_interval.mean.abs() * 100.0
                });
                let significant = !base_interval.overlaps(&head_interval)
                    && relative.is_none_or(|percent| percent.abs() >= options.min_change_percent);
                let higher = head_interval.mean > base_interval.mean;
                let change = if !significant {
                    Change::WithinNoise
                } else if higher == metric.higher_is_better() {
                    Change::Better
                } else {
                    Change::Worse
                };
                deltas.push(MetricDelta {
                    metric: crate::confidence::title(metric),
                    base: base_text,
                    head: head_text,
                    relative_percent: relative,
                    change,
                    base_interval: Some(base_interval),
                    head_interval: Some(head_interval),
                });
                continue;
            }
            (None, None) if base_values == head_values => {
                unchanged += 1;
                continue;
            }
            // A metric some seed has no value for (no success, so no p99): listed, not judged.
            _ => Change::Changed,
        };
        deltas.push(MetricDelta {
            metric: crate::confidence::title(metric),
            base: base_text,
            head: head_text,
            relative_percent: None,
            change,
            base_interval,
            head_interval,
        });
    }
    RunDelta {
        server: head.server.clone(),
        strategy: head.strategy.clone(),
        deltas,
        unchanged,
    }
}

/// Whether the terminal and Markdown list a move: moves within the noise are only counted (the
/// JSON lists them), so a seed-only diff reads as the one line that says nothing moved.
fn listed(delta: &MetricDelta) -> bool {
    delta.change != Change::WithinNoise
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Better => "better",
        Change::Worse => "worse",
        Change::Changed => "changed",
        Change::WithinNoise => "within noise",
    }
}

/// `worse (+12.5%)`, `better (-3.0%)`, `changed`, `within noise (+0.4%)`.
fn describe_change(delta: &MetricDelta) -> String {
    let word = change_word(delta.change);
    match delta.relative_percent {
        Some(percent) if percent >= 0.0 => format!("{word} (+{percent:.1}%)"),
        Some(percent) => format!("{word} ({percent:.1}%)"),
        None => word.to_owned(),
    }
}
