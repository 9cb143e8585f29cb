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
use results::{RunReport, RunResult};

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
                let mut cells = cells(report, run);
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

/// The per-minute limit a run's traffic used the larger share of, over the goodput window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingLimit {
    /// Requests per minute.
    Rpm,
    /// Tokens per minute (the limiter's charge; see `TokenChargeRule`).
    Tpm,
}

impl BindingLimit {
    /// `RPM` or `TPM`.
    pub fn name(self) -> &'static str {
        match self {
            BindingLimit::Rpm => "RPM",
            BindingLimit::Tpm => "TPM",
        }
    }
}

/// The limit that binds a run's server variant, with its value, decided over all the variant's
/// runs: of RPM and TPM, the one that answered more of their 429s; without 429s (or as many
/// from each), the one their admitted traffic (attempts past the limiter, and the tokens they
/// were charged) used the larger share of over the goodput window. `None` when the variant has
/// neither limit.
pub fn binding_limit(report: &RunReport, run: &RunResult) -> Option<(BindingLimit, u64)> {
    let limits = server_limits(report, &run.server)?;
    // Limits that change over the run (a timeline's tier or limits entries) have no one
    // figure a share could be of: the goodput is then a rate alone.
    let changes = report
        .scenario
        .servers
        .iter()
        .any(|server| server.label == run.server && !server.limit_changes.is_empty());
    if changes {
        return None;
    }
    // Decided once per server variant, over all its runs, so one column compares like with
    // like: a pacer that never met the limit still reads against the limit its variant binds.
    let variant: Vec<&RunResult> = report
        .runs
        .iter()
        .filter(|other| other.server == run.server)
        .collect();
    let mut admitted_per_minute = 0.0;
    let mut tokens_per_minute = 0.0;
    let (mut rpm_rejections, mut tpm_rejections) = (0u64, 0u64);
    for run in &variant {
        let window_minutes = run.analysis.goodput.window_ms.max(1) as f64 / 60_000.0;
        let admitted: u64 = run
            .bins
            .iter()
            .map(|bin| bin.attempts.saturating_sub(bin.rate_limited))
            .sum();
        let tokens: u64 = run.bins.iter().map(|bin| bin.admitted_tokens).sum();
        admitted_per_minute += admitted as f64 / window_minutes;
        tokens_per_minute += tokens as f64 / window_minutes;
        let rejected_by = |name: &str| run.rejections.get(name).copied().unwrap_or(0);
        rpm_rejections += rejected_by("rpm");
        tpm_rejections += rejected_by("tpm");
    }
    let share = |used: f64, limit: Option<u64>| {
        limit
            .filter(|&limit| limit > 0)
            .map(|limit| (used / limit as f64, limit))
    };
    // Where the limiter turned attempts away, the limit that did so most is the one that binds.
    if let (Some(rpm), Some(tpm)) = (limits.rpm, limits.tpm)
        && rpm_rejections != tpm_rejections
    {
        return Some(if tpm_rejections > rpm_rejections {
            (BindingLimit::Tpm, tpm)
        } else {
            (BindingLimit::Rpm, rpm)
        });
    }
    match (
        share(admitted_per_minute, limits.rpm),
        share(tokens_per_minute, limits.tpm),
    ) {
        (Some((rpm_share, rpm)), Some((tpm_share, tpm))) => Some(if tpm_share > rpm_share {
            (BindingLimit::Tpm, tpm)
        } else {
            (BindingLimit::Rpm, rpm)
        }),
        (Some((_, rpm)), None) => Some((BindingLimit::Rpm, rpm)),
        (None, Some((_, tpm))) => Some((BindingLimit::Tpm, tpm)),
        (None, None) => None,
    }
}

/// Goodput as its share of the limit that binds, for narrow tables: `43% of RPM`, or the rate
/// alone (`217/min`) when the variant has neither limit.
pub(crate) fn goodput_share_text(report: &RunReport, run: &RunResult) -> String {
    let text = goodput_text(report, run);
    match text.split_once(" (") {
        Some((_, share)) => share.trim_end_matches(')').to_owned(),
        None => text,
    }
}

/// Goodput as text: successes per minute with their share of the limit that binds
/// ([`binding_limit`]): `217/min (43% of RPM)`, or for a token-bound run the succeeded tokens'
/// share of TPM, `96/min (61% of TPM)`.
pub(crate) fn goodput_text(report: &RunReport, run: &RunResult) -> String {
    let goodput = &run.analysis.goodput;
    let rate = units::per_minute(goodput.requests_per_minute);
    match binding_limit(report, run) {
        Some((BindingLimit::Rpm, rpm)) => format!(
            "{rate} ({:.0}% of RPM)",
            goodput.requests_per_minute * 100.0 / rpm as f64
        ),
        Some((BindingLimit::Tpm, tpm)) => format!(
            "{rate} ({:.0}% of TPM)",
            goodput.tokens_per_minute * 100.0 / tpm as f64
        ),
        None => rate,
    }
}

/// The fewest requests held back that make a real backlog: fewer is the ordinary jitter of
/// arrivals, whose drain time says nothing about a strategy.
pub const REAL_BACKLOG_MIN_EXCESS: u64 = 10;

/// Whether a real backlog formed, so that its drain time means something. At the bin where open
/// requests peaked, requests were held back when either
/// - at least [`REAL_BACKLOG_MIN_EXCESS`] of them were in retry (a failed attempt, waiting or
///   retrying: 429s, 5xx or timeouts), or
/// - open requests exceeded what free-flowing traffic holds open (Little's law: that bin's
///   arrival rate times the run's median latency) by at least [`REAL_BACKLOG_MIN_EXCESS`] and by
///   five standard deviations of that count taken as Poisson (`5 * sqrt(free flow)`): requests
///   queued before their first attempt, e.g. by a local pacer.
///
/// A spike served at once, or the busiest minute of a steady day, is neither; its "drain" is
/// the time ordinary traffic took to fall back, and the tables show `-`.
pub fn real_backlog(report: &RunReport, run: &RunResult) -> bool {
    let backlog = &run.analysis.backlog;
    if backlog.peak_open == 0 {
        return false;
    }
    let bin_width_ms = report.scenario.bin_width_ms.max(1);
    let Some(peak_bin) = run
        .bins
        .iter()
        .find(|bin| bin.start_ms + bin_width_ms == backlog.peak_at_ms)
    else {
        // Without the bins (a hand-made report) only the peak itself can tell.
        return backlog.peak_open >= REAL_BACKLOG_MIN_EXCESS;
    };
    if peak_bin.retrying >= REAL_BACKLOG_MIN_EXCESS {
        return true;
    }
    let median_ms = if run.latency.count > 0 {
        run.latency.p50_us as f64 / 1_000.0
    } else {
        0.0
    };
    let free_flow = peak_bin.arrivals as f64 / bin_width_ms as f64 * median_ms;
    let excess = backlog.peak_open as f64 - free_flow;
    excess >= (REAL_BACKLOG_MIN_EXCESS as f64).max(5.0 * free_flow.sqrt())
}

/// What a column means, for the columns whose title does not say it: one short phrase each, for
/// the legend under every table.
pub fn column_note(title: &str) -> Option<&'static str> {
    Some(match title {
        "amplif." => "attempts per request",
        "goodput" => {
            "successes per minute over duration + drain, as a share of the limit that binds (a rate alone when the timeline changes the limits)"
        }
        "early retries" => "retries sent before the server's retry-after had passed",
        "drain" => "time from the backlog's peak until it cleared (\"-\": no real backlog formed)",
        "fairness" => "Jain's index of successes across a group's instances (1 = even)",
        "unfinished" => "still open when the run ended",
        "makespan" => "from the batch's start to its last request's end",
        _ => return None,
    })
}

fn cells(report: &RunReport, run: &RunResult) -> Vec<Cell> {
    let totals = &run.totals;
    let has_latency = run.latency.count > 0;
    let latency_cell = |micros: u64| {
        if has_latency {
            cell(Some(micros as f64), units::latency(micros))
        } else {
            cell(None, "-".to_owned())
        }
    };
    // A drain time without a real backlog is the time ordinary traffic took to fall back after
    // its busiest bin: noise, shown as "-" and never marked.
    let drain = real_backlog(report, run).then_some(run.analysis.backlog.drain_ms);
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
            goodput_text(report, run),
        ),
        cell(
            Some(run.analysis.early_retries as f64),
            run.analysis.early_retries.to_string(),
        ),
        match drain {
            Some(Some(millis)) => cell(Some(millis as f64), units::duration_ms(millis)),
            Some(None) => cell(None, "never".to_owned()),
            None => cell(None, "-".to_owned()),
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
