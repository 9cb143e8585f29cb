//! The online resilience metrics: early retries, requests in retry, backlog drain, fairness,
//! goodput and the quota spent on rejections, from hand-built attempt records.

use results::{AttemptDecision, AttemptOutcome, AttemptRecord, LimitKind, RunMetrics, jain_index};
use scenario::ClientId;

const SECOND: u64 = 1_000_000_000;

fn client(instance: u32) -> ClientId {
    ClientId { group: 0, instance }
}

fn attempt(instance: u32, request: u64, attempt: u32, sent: u64, ended: u64) -> AttemptRecord {
    AttemptRecord {
        run: 0,
        client: client(instance),
        request,
        attempt,
        arrived_ns: 0,
        sent_ns: sent,
        ended_ns: ended,
        prompt_tokens: 100,
        max_tokens: 50,
        completion_tokens: 0,
        outcome: AttemptOutcome::Success,
        decision: AttemptDecision::Done,
    }
}

fn rejected(record: AttemptRecord, retry_after_s: u64, wait_s: Option<u64>) -> AttemptRecord {
    AttemptRecord {
        outcome: AttemptOutcome::RateLimited {
            limit: LimitKind::Rpm,
            retry_after_ns: Some(retry_after_s * SECOND),
        },
        decision: match wait_s {
            Some(wait) => AttemptDecision::Retry {
                after_ns: wait * SECOND,
            },
            None => AttemptDecision::GiveUp { reason: None },
        },
        ..record
    }
}

fn succeeded(record: AttemptRecord) -> AttemptRecord {
    AttemptRecord {
        completion_tokens: 30,
        ..record
    }
}

/// Two instances over 10 one-second bins: instance 0's request is rejected twice (one retry
/// waits less than asked, one more) and succeeds at 6s; instance 1 gives up at once.
fn example() -> results::RunResult {
    let mut metrics = RunMetrics::new(vec!["app".to_owned()], SECOND);
    metrics.set_goodput_window(10 * SECOND);
    metrics.record_arrival(client(0), 0);
    metrics.record_arrival(client(1), 0);
    metrics.record_attempt(&rejected(attempt(0, 0, 0, 0, SECOND / 2), 2, Some(1)));
    metrics.record_attempt(&rejected(
        attempt(0, 0, 1, 3 * SECOND / 2, 2 * SECOND),
        3,
        Some(3),
    ));
    metrics.record_attempt(&succeeded(attempt(0, 0, 2, 5 * SECOND, 6 * SECOND)));
    metrics.record_attempt(&rejected(attempt(1, 0, 0, 0, SECOND / 2), 2, None));
    metrics.finish("tier-1".to_owned(), "test".to_owned())
}

#[test]
fn early_retries_count_waits_shorter_than_retry_after() {
    let result = example();
    assert_eq!(result.analysis.early_retries, 1);
    assert_eq!(result.analysis.rejected.rate_limited_attempts, 3);
}

#[test]
fn bins_carry_open_requests_and_requests_in_retry_at_their_end() {
    let result = example();
    let levels: Vec<(u64, u64)> = result
        .bins
        .iter()
        .map(|bin| (bin.open_requests, bin.retrying))
        .collect();
    // Bin 0: both arrived, instance 1 gave up, instance 0 entered retry. Bin 6: it succeeded.
    assert_eq!(
        levels,
        [(1, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1), (0, 0)]
    );
    assert_eq!(result.analysis.peak_retrying, 1);
    assert_eq!(result.bins[6].admitted_tokens, 150);
}

#[test]
fn backlog_peak_and_drain() {
    let backlog = example().analysis.backlog;
    assert_eq!(backlog.peak_open, 1);
    assert_eq!(backlog.peak_at_ms, 1_000);
    assert_eq!(backlog.drain_ms, Some(6_000));
}

#[test]
fn goodput_is_measured_over_the_fixed_window() {
    let goodput = example().analysis.goodput;
    // One success (130 tokens) over the 10s window, though the last success came at 6s.
    assert_eq!(goodput.window_ms, 10_000);
    assert_eq!(goodput.requests_per_minute, 6.0);
    assert_eq!(goodput.tokens_per_minute, 780.0);
}

/// A run of `requests` requests at 0s over a `window_s` window: the first `successes` succeed
/// one every `spacing_ms`, the rest are given up at once.
fn fast_or_slow(window_s: u64, requests: u64, successes: u64, spacing_ms: u64) -> f64 {
    let mut metrics = RunMetrics::new(vec!["app".to_owned()], SECOND);
    metrics.set_goodput_window(window_s * SECOND);
    for request in 0..requests {
        metrics.record_arrival(client(0), 0);
        let ended = (request + 1) * spacing_ms * 1_000_000;
        let record = attempt(0, request, 0, 0, ended);
        if request < successes {
            metrics.record_attempt(&succeeded(record));
        } else {
            metrics.record_attempt(&rejected(record, 1, None));
        }
    }
    metrics
        .finish("tier-1".to_owned(), "test".to_owned())
        .analysis
        .goodput
        .requests_per_minute
}

#[test]
fn a_run_that_succeeds_less_never_shows_more_goodput() {
    // A one-second scenario with a minute of drain: one strategy gets 2 of 100 requests through
    // within 20 ms and gives up the rest, another gets 60 through, one a second, over the drain.
    // Measured up to each run's last success, the first showed 120/min against the second's
    // 60/min; over the fixed 61s horizon, goodput follows the success counts.
    let gives_up_fast = fast_or_slow(61, 100, 2, 10);
    let keeps_trying = fast_or_slow(61, 100, 60, 1_000);
    assert!(
        gives_up_fast < keeps_trying,
        "{gives_up_fast}/min for 2 successes against {keeps_trying}/min for 60"
    );
    assert_eq!(gives_up_fast, 1.967);
    assert_eq!(keeps_trying, 59.016);
}

#[test]
fn without_a_window_goodput_runs_to_the_last_event_not_the_last_success() {
    let mut metrics = RunMetrics::new(vec!["app".to_owned()], SECOND);
    metrics.record_arrival(client(0), 0);
    metrics.record_arrival(client(0), 0);
    metrics.record_attempt(&succeeded(attempt(0, 0, 0, 0, SECOND)));
    // The second request is given up at 30s: the window runs to then, not to the success at 1s.
    metrics.record_attempt(&rejected(
        attempt(0, 1, 0, 29 * SECOND, 30 * SECOND),
        1,
        None,
    ));
    let goodput = metrics
        .finish("tier-1".to_owned(), "test".to_owned())
        .analysis
        .goodput;
    assert_eq!(goodput.window_ms, 30_000);
    assert_eq!(goodput.requests_per_minute, 2.0);
}

#[test]
fn fairness_is_jains_index_over_instances() {
    let fairness = &example().analysis.fairness["app"];
    assert_eq!(fairness.instances, 2);
    assert_eq!(fairness.jain_index, Some(0.5));
    assert_eq!(jain_index(&[3, 1]), Some(0.8));
}

#[test]
fn the_latency_cdf_ends_at_the_maximum() {
    let result = example();
    let cdf = &result.analysis.latency_cdf;
    assert_eq!(cdf.len(), results::CDF_QUANTILES.len());
    assert_eq!(cdf.last().map(|point| point.quantile), Some(1.0));
    assert_eq!(
        cdf.last().map(|point| point.latency_us),
        Some(result.latency.max_us)
    );
    assert!(
        cdf.windows(2)
            .all(|pair| pair[0].latency_us <= pair[1].latency_us)
    );
}

#[test]
fn bins_past_the_last_event_keep_the_open_level_up_to_the_horizon() {
    let text = r#"
name = "levels"
duration = "10s"
drain = "10s"
[server]
model = "gpt-4o-mini"
tier = "tier-1"
[[clients]]
name = "app"
instances = 3
arrival = { kind = "constant", rpm = 6 }
prompt_tokens = { kind = "fixed", value = 10 }
completion_tokens = { kind = "fixed", value = 10 }
[metrics]
bin = "5s"
"#;
    let scenario = scenario::parse_scenario(text, "levels.toml", &mut crate::read_from_disk)
        .expect("valid scenario");
    let mut metrics = RunMetrics::for_scenario(&scenario);
    // One request arrives at 1s and never finishes.
    metrics.record_arrival(client(0), SECOND);
    let result = metrics.finish("tier-1".to_owned(), "test".to_owned());
    let open: Vec<u64> = result.bins.iter().map(|bin| bin.open_requests).collect();
    assert_eq!(open, [1, 1, 1, 1], "20s horizon in 5s bins");
    assert_eq!(result.analysis.backlog.drain_ms, None);
    // All three instances count, though only one sent anything and none succeeded.
    assert_eq!(result.analysis.fairness["app"].instances, 3);
    assert_eq!(result.analysis.fairness["app"].jain_index, None);
    // Goodput is measured over the whole horizon, duration plus drain.
    assert_eq!(result.analysis.goodput.window_ms, 20_000);
}
