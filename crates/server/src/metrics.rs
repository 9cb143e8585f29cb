//! Counters behind `GET /metrics`, rendered in Prometheus' text exposition format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Everything `/metrics` reports; cheap to update from any request task.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
    // Token totals are plain sums: atomics spare every served request a second lock.
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    rate_limited: BTreeMap<String, u64>,
    retries: u64,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_count: u64,
    latency_sum_seconds: f64,
}

impl Metrics {
    fn with<T>(&self, update: impl FnOnce(&mut Counters) -> T) -> T {
        // A panic while holding the lock cannot leave counters inconsistent in a harmful way.
        let mut counters = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        update(&mut counters)
    }

    /// Counts one finished request on `endpoint` (a route pattern) with its status and latency.
    pub fn record_request(&self, endpoint: &str, status: u16, latency: Duration) {
        self.with(|counters| {
            // Look up before inserting so the common case allocates nothing.
            let statuses = match counters.requests.get_mut(endpoint) {
                Some(statuses) => statuses,
                None => counters.requests.entry(endpoint.to_owned()).or_default(),
            };
            *statuses.entry(status).or_default() += 1;
            let seconds = latency.as_secs_f64();
            for (bucket, bound) in counters.latency_buckets.iter_mut().zip(LATENCY_BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            counters.latency_count += 1;
            counters.latency_sum_seconds += seconds;
        });
    }

    /// Counts one 429, labelled by what was exhausted (e.g. `tokens_per_min`, `slow_down`).
    pub fn record_rate_limited(&self, kind: &str) {
        self.with(|counters| *counters.rate_limited.entry(kind.to_owned()).or_default() += 1);
    }

    /// Adds the tokens of one served request.
    pub fn record_tokens(&self, prompt: u64, completion: u64) {
        self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion, Ordering::Relaxed);
    }

    /// Counts a request an SDK marked as a retry (`x-stainless-retry-count` above zero).
    pub fn record_retry(&self) {
        self.with(|counters| counters.retries += 1);
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        self.with(|counters| {
            *counters = Counters::default();
            self.prompt_tokens.store(0, Ordering::Relaxed);
            self.completion_tokens.store(0, Ordering::Relaxed);
        });
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        self.with(|counters| {
            let mut out = String::new();
            let mut line = |text: String| {
                out.push_str(&text);
                out.push('\n');
            };
            line("# HELP ratelab_requests_total Requests served, by endpoint and status.".into());
            line("# TYPE ratelab_requests_total counter".into());
            for (endpoint, statuses) in &counters.requests {
                for (status, count) in statuses {
                    line(format!(
                        "ratelab_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}"
                    ));
                }
            }
            line("# HELP ratelab_rate_limited_total 429 responses, by exhausted limit.".into());
            line("# TYPE ratelab_rate_limited_total counter".into());
            for (kind, count) in &counters.rate_limited {
                line(format!("ratelab_rate_limited_total{{kind=\"{kind}\"}} {count}"));
            }
            line("# HELP ratelab_tokens_total Tokens served, by direction.".into());
            line("# TYPE ratelab_tokens_total counter".into());
            line(format!(
                "ratelab_tokens_total{{direction=\"prompt\"}} {}",
                self.prompt_tokens.load(Ordering::Relaxed)
            ));
            line(format!(
                "ratelab_tokens_total{{direction=\"completion\"}} {}",
                self.completion_tokens.load(Ordering::Relaxed)
            ));
            line("# HELP ratelab_retries_total Requests an SDK marked as retries.".into());
            line("# TYPE ratelab_retries_total counter".into());
            line(format!("ratelab_retries_total {}", counters.retries));
            line("# HELP ratelab_request_duration_seconds Time to the response head, in server time.".into());
            line("# TYPE ratelab_request_duration_seconds histogram".into());
            for (bound, count) in LATENCY_BUCKETS.iter().zip(counters.latency_buckets) {
                line(format!(
                    "ratelab_request_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
                ));
            }
            line(format!(
                "ratelab_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
                counters.latency_count
            ));
            line(format!(
                "ratelab_request_duration_seconds_sum {}",
                counters.latency_sum_seconds
            ));
            line(format!(
                "ratelab_request_duration_seconds_count {}",
                counters.latency_count
            ));
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_lists_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record_request("/v1/chat/completions", 200, Duration::from_millis(30));
        metrics.record_request("/v1/chat/completions", 429, Duration::from_millis(2));
        metrics.record_rate_limited("tokens_per_min");
        metrics.record_tokens(10, 20);
        let text = metrics.render();
        for expected in [
            "ratelab_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1",
            "ratelab_rate_limited_total{kind=\"tokens_per_min\"} 1",
            "ratelab_tokens_total{direction=\"completion\"} 20",
            "ratelab_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "ratelab_request_duration_seconds_bucket{le=\"0.05\"} 2",
            "ratelab_request_duration_seconds_count 2",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }
}
