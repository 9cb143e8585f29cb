//! The three questions a report answers, in one sentence each: which strategy is best, does the
//! client survive this traffic, and which tier is needed.

use scenario::{RunReport, RunResult};

use crate::units;

/// The success rate at which a run counts as surviving the traffic.
pub const SURVIVAL_SUCCESS_RATE: f64 = 0.99;

/// One sentence per question, plain text (renderers add their own markup).
///
/// The best run of a server variant has the highest success rate, then the lowest
/// amplification, then the lowest p99; a run survives when it succeeds for at least
/// [`SURVIVAL_SUCCESS_RATE`] of its requests. With several server variants, the tier needed is
/// the first variant in scenario order where some strategy survives.
///
/// ```
/// let answers = report::answers(&report::example_report());
/// assert_eq!(answers[0], "Best strategy on tier-1: retry-after (80.8% success, 1.97x amplification, p99 35.3s).");
/// assert!(answers[1].starts_with("Survives: no."));
/// ```
pub fn answers(report: &RunReport) -> Vec<String> {
    let mut servers: Vec<&str> = Vec::new();
    for run in &report.runs {
        if !servers.contains(&run.server.as_str()) {
            servers.push(&run.server);
        }
    }
    let mut lines = Vec::new();
    let mut first_surviving = None;
    for server in &servers {
        let runs = report.runs.iter().filter(|run| run.server == *server);
        // The first of equally ranked runs wins: min_by keeps the first, on a reversed order.
        let Some(best) = runs.min_by(|a, b| compare_rank(b, a)) else {
            continue;
        };
        lines.push(format!(
            "Best strategy on {server}: {} ({} success, {} amplification, p99 {}).",
            best.strategy,
            units::percent(best.totals.success_rate()),
            units::factor(best.totals.amplification()),
            if best.latency.count == 0 {
                "n/a".to_owned()
            } else {
                units::latency(best.latency.p99_us)
            }
        ));
        let survives = best.totals.success_rate() >= SURVIVAL_SUCCESS_RATE;
        if survives && first_surviving.is_none() {
            first_surviving = Some((*server, best.strategy.as_str()));
        }
        lines.push(if survives {
            format!(
                "Survives: yes. On {server}, {} succeeds for at least {} of requests.",
                best.strategy,
                units::percent(SURVIVAL_SUCCESS_RATE)
            )
        } else {
            format!(
                "Survives: no. On {server}, no strategy succeeds for {} of requests.",
                units::percent(SURVIVAL_SUCCESS_RATE)
            )
        });
    }
    if servers.len() > 1 {
        lines.push(match first_surviving {
            Some((server, strategy)) => format!(
                "Tier needed: {server}, the first compared variant where a strategy ({strategy}) survives."
            ),
            None => format!(
                "Tier needed: none of {} survives this traffic; try a higher tier or less load.",
                servers.join(", ")
            ),
        });
    }
    lines
}

/// Orders runs by success rate, then by amplification and p99 reversed (lower is better).
fn compare_rank(a: &RunResult, b: &RunResult) -> std::cmp::Ordering {
    let p99 = |run: &RunResult| {
        if run.latency.count == 0 {
            f64::INFINITY
        } else {
            run.latency.p99_us as f64
        }
    };
    a.totals
        .success_rate()
        .total_cmp(&b.totals.success_rate())
        .then(
            b.totals
                .amplification()
                .total_cmp(&a.totals.amplification()),
        )
        .then(p99(b).total_cmp(&p99(a)))
}
