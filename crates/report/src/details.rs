//! The secondary numbers per run (tail latency, 429s by limit, backlog, storm share, tokens), as
//! plain text cells that the Markdown and HTML renderers lay out as a table.

use results::{RunReport, RunResult};

use crate::scoreboard::server_limits;
use crate::units;

/// Column headers of [`detail_rows`].
pub(crate) const DETAIL_HEADERS: [&str; 13] = [
    "run",
    "p90",
    "p99.9",
    "max",
    "gave up by reason",
    "429s by limit",
    "5xx",
    "timeouts",
    "peak in retry",
    "storm share",
    "peak backlog",
    "tokens/min",
    "wasted tokens",
];

/// One row of text cells per run, matching [`DETAIL_HEADERS`].
pub(crate) fn detail_rows(report: &RunReport) -> Vec<Vec<String>> {
    report
        .runs
        .iter()
        .map(|run| detail_row(report, run))
        .collect()
}

fn detail_row(report: &RunReport, run: &RunResult) -> Vec<String> {
    let latency = |micros: u64| {
        if run.latency.count == 0 {
            "-".to_owned()
        } else {
            units::latency(micros)
        }
    };
    let rejections = if run.rejections.is_empty() {
        "-".to_owned()
    } else {
        run.rejections
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let reasons = if run.give_up_reasons.is_empty() {
        "-".to_owned()
    } else {
        run.give_up_reasons
            .iter()
            .map(|(reason, count)| format!("{reason} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let backlog = &run.analysis.backlog;
    let tokens_per_minute = run.analysis.goodput.tokens_per_minute;
    let tokens = match server_limits(report, &run.server).and_then(|limits| limits.tpm) {
        Some(tpm) if tpm > 0 => format!(
            "{} ({:.0}% of TPM)",
            units::compact(tokens_per_minute),
            tokens_per_minute * 100.0 / tpm as f64
        ),
        _ => units::compact(tokens_per_minute),
    };
    vec![
        format!("{} / {}", run.server, run.strategy),
        latency(run.latency.p90_us),
        latency(run.latency.p999_us),
        latency(run.latency.max_us),
        reasons,
        rejections,
        run.totals.server_errors.to_string(),
        run.totals.timeouts.to_string(),
        run.analysis.peak_retrying.to_string(),
        storm_share(run),
        format!(
            "{} at {}",
            backlog.peak_open,
            units::duration_ms(backlog.peak_at_ms)
        ),
        tokens,
        run.analysis.rejected.wasted_tokens.to_string(),
    ]
}

/// The storm share with its window: `60.0% (6/10 at 1m02s)`, the retries among the attempts
/// sent in the stormiest one-second window and when it began; `-` when no one-second window
/// held enough attempts to count.
fn storm_share(run: &RunResult) -> String {
    match (run.analysis.storm_share, run.analysis.storm_window) {
        (Some(share), Some(window)) => format!(
            "{} ({}/{} at {})",
            units::percent(share),
            window.retries,
            window.attempts,
            units::duration_ms(window.start_ms)
        ),
        _ => "-".to_owned(),
    }
}
