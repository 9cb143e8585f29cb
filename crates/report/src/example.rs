//! A small, hand-built report for documentation examples and renderer tests: two strategies
//! against one tier, folded through the real [`RunMetrics`] so every derived number is
//! consistent.

use results::{
    AttemptDecision, AttemptOutcome, AttemptRecord, GroupSummary, LimitKind, REPORT_FORMAT_VERSION,
    RunMetrics, RunReport, ScenarioSummary, ServerSummary,
};
use scenario::ClientId;

const SECOND_NS: u64 = 1_000_000_000;

/// A two-minute example run: 240 requests from two instances of one group against a 100 RPM
/// limit, once with a strategy that never retries (`none`) and once with one that honours
/// `retry-after` (`retry-after`).
///
/// ```
/// let report = report::example_report();
/// assert_eq!(report.runs.len(), 2);
/// assert_eq!(report.runs[0].totals.requests, 240);
/// ```
pub fn example_report() -> RunReport {
    let runs = vec![example_run("none", false), example_run("retry-after", true)];
    RunReport {
        format_version: REPORT_FORMAT_VERSION,
        scenario: ScenarioSummary {
            name: "example".to_owned(),
            description: "Two instances share a key and send twice the RPM limit for a minute."
                .to_owned(),
            seed: 7,
            model: "gpt-4o-mini".to_owned(),
            duration_ms: 60_000,
            drain_ms: 120_000,
            bin_width_ms: 10_000,
            groups: vec![GroupSummary {
                name: "app".to_owned(),
                instances: 2,
                batch_requests: None,
                deadline_ms: None,
            }],
            servers: vec![ServerSummary {
                label: "tier-1".to_owned(),
                tier: Some("tier-1".to_owned()),
                limits: quota::LimitSet {
                    rpm: Some(100),
                    tpm: Some(60_000),
                    rpd: Some(10_000),
                    ..quota::LimitSet::default()
                },
                limit_changes: Vec::new(),
            }],
            strategies: vec!["none".to_owned(), "retry-after".to_owned()],
            expect: scenario::Expectations::default(),
        },
        runs,
        tested: None,
    }
}

/// One run: every request arrives at `i * 250ms`; the limiter admits the first 100 of each
/// minute and rejects the rest with a `retry-after` up to the next minute.
fn example_run(strategy: &str, retries: bool) -> results::RunResult {
    let mut metrics = RunMetrics::new(vec!["app".to_owned()], 10 * SECOND_NS);
    // Goodput over the whole horizon, a minute of traffic and two of drain, as the simulator
    // measures it.
    metrics.set_goodput_window(180 * SECOND_NS);
    let mut admitted_in_minute = [0u64; 4];
    // Sends are fed to the storm share in time order once all are known, as a simulator's
    // would come; the loop below visits them request by request.
    let mut sends: Vec<(u64, u32)> = Vec::new();
    for request in 0..240u64 {
        let client = ClientId {
            group: 0,
            instance: (request % 2) as u32,
        };
        let arrived_ns = request * SECOND_NS / 4;
        metrics.record_arrival(client, arrived_ns);
        let mut sent_ns = arrived_ns;
        for attempt in 0..4u32 {
            let minute = (sent_ns / (60 * SECOND_NS)) as usize;
            let admitted = minute < admitted_in_minute.len() && admitted_in_minute[minute] < 100;
            let next_minute_ns = (minute as u64 + 1) * 60 * SECOND_NS;
            let base = AttemptRecord {
                run: u32::from(retries),
                client,
                request,
                attempt,
                arrived_ns,
                sent_ns,
                ended_ns: sent_ns + SECOND_NS / 50,
                prompt_tokens: 200,
                max_tokens: 100,
                completion_tokens: 0,
                outcome: AttemptOutcome::Success,
                decision: AttemptDecision::Done,
            };
            sends.push((sent_ns, attempt));
            if admitted {
                admitted_in_minute[minute] += 1;
                // Service time grows with queueing in the minute, so latencies spread.
                let service_ns = SECOND_NS / 2 + admitted_in_minute[minute] * SECOND_NS / 100;
                metrics.record_attempt(&AttemptRecord {
                    ended_ns: sent_ns + service_ns,
                    completion_tokens: 80,
                    ..base
                });
                break;
            }
            let retry_after_ns = next_minute_ns - sent_ns;
            let last_try = !retries || attempt == 3;
            // Every third retry jumps the gun: it waits half of what the server asked.
            let wait_ns = if request % 3 == 0 {
                retry_after_ns / 2
            } else {
                retry_after_ns
            };
            metrics.record_attempt(&AttemptRecord {
                outcome: AttemptOutcome::RateLimited {
                    limit: LimitKind::Rpm,
                    retry_after_ns: Some(retry_after_ns),
                },
                decision: if last_try {
                    AttemptDecision::GiveUp {
                        reason: Some(retry::GiveUpReason::MaxAttempts),
                    }
                } else {
                    AttemptDecision::Retry { after_ns: wait_ns }
                },
                ..base
            });
            if last_try {
                break;
            }
            sent_ns = base.ended_ns + wait_ns;
        }
    }
    sends.sort_unstable();
    for (sent_ns, attempt) in sends {
        metrics.record_send(sent_ns, attempt);
    }
    metrics.finish("tier-1".to_owned(), strategy.to_owned())
}
