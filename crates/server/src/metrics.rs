//! Counters behind `GET /metrics`, rendered in Prometheus' text exposition format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Statuses counted without a lock; any other status goes to a locked map.
const COMMON_STATUSES: [u16; 9] = [200, 400, 401, 404, 413, 429, 500, 503, 504];

/// Everything `/metrics` reports; cheap to update from any request task. The counters every
/// request touches are atomics, so concurrent requests never wait on each other here.
#[derive(Debug)]
pub struct Metrics {
    /// Request counts by endpoint (in the order of [`Metrics::new`]'s list) and common status.
    requests: Vec<(&'static str, [AtomicU64; COMMON_STATUSES.len()])>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    retries: AtomicU64,
    /// Requests outside the lists above, and 429s by exhausted limit: rare, so locked.
    rare: Mutex<Rare>,
}

#[derive(Debug, Default)]
struct Rare {
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    rate_limited: BTreeMap<String, u64>,
}

impl Metrics {
    /// Metrics whose request counter for each of `endpoints` needs no lock; other endpoint
    /// labels still count, through a lock.
    pub fn new(endpoints: &[&'static str]) -> Metrics {
        Metrics {
            requests: endpoints
                .iter()
                .map(|&endpoint| (endpoint, Default::default()))
                .collect(),
            latency_buckets: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum_nanos: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rare: Mutex::default(),
        }
    }

    fn rare(&self) -> std::sync::MutexGuard<'_, Rare> {
        // A panic while holding the lock cannot leave counters inconsistent in a harmful way.
        self.rare
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Counts one finished request on `endpoint` (a route pattern) with its status and latency.
    pub fn record_request(&self, endpoint: &str, status: u16, latency: Duration) {
        let common = self
            .requests
            .iter()
            .find(|(known, _)| *known == endpoint)
            .zip(COMMON_STATUSES.iter().position(|&known| known == status));
        match common {
            Some(((_, counts), slot)) => {
                counts[slot].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut rare = self.rare();
                // Look up before inserting so the common case allocates nothing.
                let statuses = match rare.requests.get_mut(endpoint) {
                    Some(statuses) => statuses,
                    None => rare.requests.entry(endpoint.to_owned()).or_default(),
                };
                *statuses.entry(status).or_default() += 1;
            }
        }
        let seconds = latency.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one 429, labelled by what was exhausted (e.g. `tokens_per_min`, `slow_down`).
    pub fn record_rate_limited(&self, kind: &str) {
        *self.rare().rate_limited.entry(kind.to_owned()).or_default() += 1;
    }

    /// Adds the tokens of one served request.
    pub fn record_tokens(&self, prompt: u64, completion: u64) {
        self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion, Ordering::Relaxed);
    }

    /// Counts a request an SDK marked as a retry (`x-stainless-retry-count` above zero).
    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets every counter back to zero. Requests finishing meanwhile may land on either side.
    pub fn reset(&self) {
        let mut rare = self.rare();
        *rare = Rare::default();
        let atomics = self
            .requests
            .iter()
            .flat_map(|(_, counts)| counts)
            .chain(&self.latency_buckets)
            .chain([
                &self.latency_count,
                &self.latency_sum_nanos,
                &self.prompt_tokens,
                &self.completion_tokens,
                &self.retries,
            ]);
        for counter in atomics {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Request counts by endpoint, then status: the lock-free counters and the rare ones.
    fn request_counts(&self, rare: &Rare) -> BTreeMap<String, BTreeMap<u16, u64>> {
        let mut counts = rare.requests.clone();
        for (endpoint, by_status) in &self.requests {
            for (&status, count) in COMMON_STATUSES.iter().zip(by_status) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    *counts
                        .entry((*endpoint).to_owned())
                        .or_default()
                        .entry(status)
                        .or_default() += count;
                }
            }
        }
        counts
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let rare = self.rare();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line("# HELP ratelab_requests_total Requests served, by endpoint and status.".into());
        line("# TYPE ratelab_requests_total counter".into());
        for (endpoint, statuses) in &self.request_counts(&rare) {
            for (status, count) in statuses {
                line(format!(
                    "ratelab_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}"
                ));
            }
        }
        line("# HELP ratelab_rate_limited_total 429 responses, by exhausted limit.".into());
        line("# TYPE ratelab_rate_limited_total counter".into());
        for (kind, count) in &rare.rate_limited {
            line(format!(
                "ratelab_rate_limited_total{{kind=\"{kind}\"}} {count}"
            ));
        }
        line("# HELP ratelab_tokens_total Tokens served, by direction.".into());
        line("# TYPE ratelab_tokens_total counter".into());
        line(format!(
            "ratelab_tokens_total{{direction=\"prompt\"}} {}",
            load(&self.prompt_tokens)
        ));
        line(format!(
            "ratelab_tokens_total{{direction=\"completion\"}} {}",
            load(&self.completion_tokens)
        ));
        line("# HELP ratelab_retries_total Requests an SDK marked as retries.".into());
        line("# TYPE ratelab_retries_total counter".into());
        line(format!("ratelab_retries_total {}", load(&self.retries)));
        line(
            "# HELP ratelab_request_duration_seconds Time to the response head, in server time."
                .into(),
        );
        line("# TYPE ratelab_request_duration_seconds histogram".into());
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            line(format!(
                "ratelab_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                load(count)
            ));
        }
        line(format!(
            "ratelab_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            load(&self.latency_count)
        ));
        line(format!(
            "ratelab_request_duration_seconds_sum {}",
            Duration::from_nanos(load(&self.latency_sum_nanos)).as_secs_f64()
        ));
        line(format!(
            "ratelab_request_duration_seconds_count {}",
            load(&self.latency_count)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_lists_counters_and_cumulative_buckets() {
        let metrics = Metrics::new(&["/v1/chat/completions"]);
        // A status outside the common list and an endpoint outside the known ones still count.
        metrics.record_request("/v1/chat/completions", 418, Duration::from_millis(1));
        metrics.record_request("/v1/other", 200, Duration::from_millis(1));
        metrics.record_request("/v1/chat/completions", 200, Duration::from_millis(30));
        metrics.record_request("/v1/chat/completions", 429, Duration::from_millis(2));
        metrics.record_rate_limited("tokens_per_min");
        metrics.record_tokens(10, 20);
        let text = metrics.render();
        for expected in [
            "ratelab_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1",
            "ratelab_rate_limited_total{kind=\"tokens_per_min\"} 1",
            "ratelab_tokens_total{direction=\"completion\"} 20",
            "ratelab_requests_total{endpoint=\"/v1/chat/completions\",status=\"418\"} 1",
            "ratelab_requests_total{endpoint=\"/v1/other\",status=\"200\"} 1",
            "ratelab_request_duration_seconds_bucket{le=\"0.005\"} 3",
            "ratelab_request_duration_seconds_bucket{le=\"0.05\"} 4",
            "ratelab_request_duration_seconds_sum 0.034",
            "ratelab_request_duration_seconds_count 4",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }

    #[test]
    fn reset_zeroes_every_counter() {
        let metrics = Metrics::new(&["/v1/embeddings"]);
        metrics.record_request("/v1/embeddings", 200, Duration::from_millis(3));
        metrics.record_request("/v1/embeddings", 299, Duration::from_millis(3));
        metrics.record_rate_limited("requests_per_min");
        metrics.record_tokens(1, 2);
        metrics.record_retry();
        metrics.reset();
        let text = metrics.render();
        let counts: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        assert!(counts.iter().all(|line| line.ends_with(" 0")), "{text}");
        assert!(!text.contains("endpoint="), "{text}");
    }
}
