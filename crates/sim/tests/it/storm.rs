//! The storm share of simulated runs: retries that all wait the server's Retry-After, without
//! jitter, come back in the same second and make a storm; jittered ones spread out.

use crate::{parse, simulate};

/// A steady 480 requests a minute against a 600-RPM fixed window, and 200 more at once 50 s
/// in: the window fills, and the rest of its minute is rejected with a Retry-After pointing at
/// the next window. First attempts keep coming throughout, and the backlog clears long before
/// the traffic stops (a drain with retries alone would be a share of 100% for any strategy).
const SCENARIO: &str = r#"
name = "storm"
seed = 3
duration = "3m30s"
drain = "3m"

[server]
model = "gpt-4o-mini"
tier = "tier-1"
limits = { rpm = 600, tpm = 10000000, algorithm = "fixed-window" }

[[clients]]
name = "steady"
arrival = { kind = "constant", rpm = 480 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 20 }

[[clients]]
name = "burst"
instances = 200
start = "50s"
closed_loop = { concurrency = 1, think_time = "0s", requests_per_worker = 1 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 20 }

[[strategies]]
label = "synchronised"
kind = "honour-retry-after"
inner = { kind = "fixed", delay = "1s", max-attempts = 10 }

[[strategies]]
label = "jittered"
kind = "honour-retry-after"
jitter = 1.0
inner = { kind = "fixed", delay = "1s", max-attempts = 10 }

[expect]
max_storm_share = 0.85
"#;

#[test]
fn synchronised_retries_storm_and_jittered_ones_do_not() {
    let scenario = parse(SCENARIO);
    let (report, _, attempts) = simulate(&scenario);
    let share = |index: usize| report.runs[index].analysis.storm_share.unwrap();
    let (synchronised, jittered) = (share(0), share(1));
    // Every rejected request comes back at the next window's start, 80 retries in its first
    // second among 8 first attempts; jitter spreads them over up to twice the wait.
    assert_eq!(
        report.runs[0].analysis.storm_window,
        Some(results::StormWindow {
            start_ms: 60_000,
            end_ms: 60_895,
            attempts: 88,
            retries: 80,
        })
    );
    assert!(synchronised > 0.9, "synchronised: {synchronised}");
    assert!(jittered < 0.8, "jittered: {jittered}");
    // Both finish every request: the storm is in how the retries arrive, not in what is lost.
    for run in &report.runs {
        assert_eq!(run.totals.succeeded, run.totals.requests);
    }

    // The online sweep agrees with the definition applied to the trace sorted by send time.
    for (index, run) in report.runs.iter().enumerate() {
        let mut sends: Vec<(u64, bool)> = attempts
            .iter()
            .filter(|record| record.run as usize == index && record.was_sent())
            .map(|record| (record.sent_ns, record.attempt > 0))
            .collect();
        sends.sort_unstable();
        assert_eq!(results::storm_share(sends), run.analysis.storm_window);
    }

    // As a threshold: the jittered strategy meets it, the synchronised one does not.
    let passes: Vec<bool> = report
        .runs
        .iter()
        .map(|run| {
            let threshold = scenario
                .expect
                .applying_to(scenario::SloMetric::StormShare, &run.strategy)
                .unwrap();
            let share = run.analysis.storm_share.unwrap_or(0.0);
            scenario::SloMetric::StormShare.passes(share, threshold.limit)
        })
        .collect();
    assert_eq!(passes, [false, true]);
}
