//! Counters behind `GET /metrics`, rendered in Prometheus' text exposition format.
//!
//! **Per-key series, bounded.** Each key the config declares has its own counters, labelled
//! with its redacted form (`model::redact`, as grading and the logs show keys); every other key
//! (and a request without one) counts under [`OTHER_KEY`]. The directory hands each request its
//! [`KeySlot`] when it resolves the key, so a request finds its counters by index, never by a
//! string, and a client sending random keys cannot add a single series.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::grading::LiveKeyCounts;

/// Upper bounds (seconds) of the latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Statuses counted without a lock; any other status goes to a locked map.
const COMMON_STATUSES: [u16; 9] = [200, 400, 401, 404, 413, 429, 500, 503, 504];

/// The `key` label every key the config does not declare counts under. No redacted key can
/// read this: redaction keeps at most the ends of a key and stars the rest.
pub const OTHER_KEY: &str = "other";

/// Which per-key counters a request counts in: a key the config declares has its own, every
/// other key shares [`KeySlot::OTHER`]. Issued by the directory when the server starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySlot(u32);

impl KeySlot {
    /// The counters of every key the config does not declare.
    pub const OTHER: KeySlot = KeySlot(u32::MAX);

    /// The counters of the `index`-th label given to [`Metrics::new`].
    pub(crate) fn declared(index: usize) -> KeySlot {
        KeySlot(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

/// One key label's counters.
#[derive(Debug)]
struct KeyCounters {
    /// The `key` label's value, escaped.
    label: String,
    /// Requests by common status; others go to [`Rare::key_requests`].
    requests: [AtomicU64; COMMON_STATUSES.len()],
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
}

impl KeyCounters {
    fn new(label: &str) -> KeyCounters {
        KeyCounters {
            label: label_value(label),
            requests: Default::default(),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
        }
    }
}

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
    /// Per-key counters: one per declared key label, then [`OTHER_KEY`]'s, last.
    keys: Vec<KeyCounters>,
    /// Requests outside the lists above, and 429s by exhausted limit: rare, so locked.
    rare: Mutex<Rare>,
}

#[derive(Debug, Default)]
struct Rare {
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    rate_limited: BTreeMap<String, u64>,
    /// Per-key requests with an uncommon status, by (index in `keys`, status).
    key_requests: BTreeMap<(usize, u16), u64>,
}

impl Metrics {
    /// Metrics whose request counter for each of `endpoints` needs no lock (other endpoint
    /// labels still count, through a lock), with per-key counters for each of `key_labels`
    /// (redacted keys; [`KeySlot::declared`] of a label's index finds its counters) and
    /// for [`OTHER_KEY`].
    pub fn new(endpoints: &[&'static str], key_labels: &[String]) -> Metrics {
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
            keys: key_labels
                .iter()
                .map(String::as_str)
                .chain([OTHER_KEY])
                .map(KeyCounters::new)
                .collect(),
            rare: Mutex::default(),
        }
    }

    /// The index in `keys` of a slot's counters: a slot past the declared labels is
    /// [`OTHER_KEY`]'s, the last.
    #[inline]
    fn key_index(&self, slot: KeySlot) -> usize {
        (slot.0 as usize).min(self.keys.len() - 1)
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

    /// Counts one API request of the key in `slot` with the status it was answered.
    #[inline]
    pub fn record_key_request(&self, slot: KeySlot, status: u16) {
        let index = self.key_index(slot);
        match COMMON_STATUSES.iter().position(|&known| known == status) {
            Some(common) => {
                self.keys[index].requests[common].fetch_add(1, Ordering::Relaxed);
            }
            None => *self.rare().key_requests.entry((index, status)).or_default() += 1,
        }
    }

    /// Adds the tokens of one request served to the key in `slot`.
    pub fn record_tokens(&self, slot: KeySlot, prompt: u64, completion: u64) {
        self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion, Ordering::Relaxed);
        let key = &self.keys[self.key_index(slot)];
        key.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        key.completion_tokens
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
            .chain(self.keys.iter().flat_map(|key| {
                key.requests
                    .iter()
                    .chain([&key.prompt_tokens, &key.completion_tokens])
            }))
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
        line(
            "# HELP ratelab_key_requests_total API requests, by API key (redacted; undeclared keys as other) and status."
                .into(),
        );
        line("# TYPE ratelab_key_requests_total counter".into());
        for (key, statuses) in self.keys.iter().zip(self.key_request_counts(&rare)) {
            for (status, count) in statuses {
                line(format!(
                    "ratelab_key_requests_total{{key=\"{}\",status=\"{status}\"}} {count}",
                    key.label
                ));
            }
        }
        line("# HELP ratelab_key_tokens_total Tokens served, by API key and direction.".into());
        line("# TYPE ratelab_key_tokens_total counter".into());
        for key in &self.keys {
            for (direction, counter) in [
                ("prompt", &key.prompt_tokens),
                ("completion", &key.completion_tokens),
            ] {
                line(format!(
                    "ratelab_key_tokens_total{{key=\"{}\",direction=\"{direction}\"}} {}",
                    key.label,
                    load(counter)
                ));
            }
        }
        out
    }

    /// Per-key request counts by status, indexed like `keys`: the lock-free counters and the
    /// rare ones.
    fn key_request_counts(&self, rare: &Rare) -> Vec<BTreeMap<u16, u64>> {
        let mut counts: Vec<BTreeMap<u16, u64>> = self
            .keys
            .iter()
            .map(|key| {
                COMMON_STATUSES
                    .iter()
                    .zip(&key.requests)
                    .map(|(&status, count)| (status, count.load(Ordering::Relaxed)))
                    .filter(|&(_, count)| count > 0)
                    .collect()
            })
            .collect();
        for (&(index, status), &count) in &rare.key_requests {
            *counts[index].entry(status).or_default() += count;
        }
        counts
    }

    /// The grader's per-key counters in the exposition format, under this server's key labels:
    /// a graded key whose redacted name is no declared key's label (an undeclared key, none,
    /// or the grader's own pool) counts under [`OTHER_KEY`].
    pub fn render_graded(&self, graded: &[(String, LiveKeyCounts)]) -> String {
        let mut per_key = vec![LiveKeyCounts::default(); self.keys.len()];
        for (name, counts) in graded {
            let label = label_value(name);
            let index = self.keys[..self.keys.len() - 1]
                .iter()
                .position(|key| key.label == label)
                .unwrap_or(self.keys.len() - 1);
            per_key[index].add(counts);
        }
        let mut out = String::new();
        for series in &GRADED_SERIES {
            let GradedSeries {
                name, kind, help, ..
            } = series;
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (key, counts) in self.keys.iter().zip(&per_key) {
                out.push_str(&format!(
                    "{name}{{key=\"{}\"}} {}\n",
                    key.label,
                    (series.value)(counts)
                ));
            }
        }
        out
    }
}

/// One per-key series of the grader's counters.
struct GradedSeries {
    name: &'static str,
    /// `counter` or `gauge`.
    kind: &'static str,
    help: &'static str,
    value: fn(&LiveKeyCounts) -> u64,
}

/// The grader's per-key series, in the order `/metrics` shows them.
const GRADED_SERIES: [GradedSeries; 7] = [
    GradedSeries {
        name: "ratelab_key_logical_requests_total",
        kind: "counter",
        help: "Logical requests graded, by API key.",
        value: |counts| counts.logical_requests,
    },
    GradedSeries {
        name: "ratelab_key_retries_total",
        kind: "counter",
        help: "Attempts after a logical request's first, by API key.",
        value: |counts| counts.retries,
    },
    GradedSeries {
        name: "ratelab_key_early_retries_total",
        kind: "counter",
        help: "Retries sent before the wait the 429 before them stated, by API key.",
        value: |counts| counts.early_retries,
    },
    GradedSeries {
        name: "ratelab_key_succeeded_total",
        kind: "counter",
        help: "Logical requests that got a success, by API key.",
        value: |counts| counts.succeeded,
    },
    // A gauge: a logical request without a success may still get one.
    GradedSeries {
        name: "ratelab_key_gave_up",
        kind: "gauge",
        help: "Logical requests without a success so far, by API key.",
        value: |counts| counts.logical_requests.saturating_sub(counts.succeeded),
    },
    GradedSeries {
        name: "ratelab_key_tokens_charged_total",
        kind: "counter",
        help: "Tokens the limiter charged, by API key.",
        value: |counts| counts.tokens_charged,
    },
    GradedSeries {
        name: "ratelab_key_tokens_wasted_total",
        kind: "counter",
        help: "Tokens charged to attempts that did not deliver a success, by API key.",
        value: |counts| counts.tokens_wasted,
    },
];

/// A label value as the exposition format writes it: backslash, double quote and line feed
/// escaped. Declared keys are the config's, and could hold any of them.
fn label_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_lists_counters_and_cumulative_buckets() {
        let metrics = Metrics::new(&["/v1/chat/completions"], &[]);
        // A status outside the common list and an endpoint outside the known ones still count.
        metrics.record_request("/v1/chat/completions", 418, Duration::from_millis(1));
        metrics.record_request("/v1/other", 200, Duration::from_millis(1));
        metrics.record_request("/v1/chat/completions", 200, Duration::from_millis(30));
        metrics.record_request("/v1/chat/completions", 429, Duration::from_millis(2));
        metrics.record_rate_limited("tokens_per_min");
        metrics.record_tokens(KeySlot::OTHER, 10, 20);
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
        let metrics = Metrics::new(&["/v1/embeddings"], &["sk-*****1111".to_owned()]);
        metrics.record_request("/v1/embeddings", 200, Duration::from_millis(3));
        metrics.record_request("/v1/embeddings", 299, Duration::from_millis(3));
        metrics.record_rate_limited("requests_per_min");
        metrics.record_tokens(KeySlot::declared(0), 1, 2);
        metrics.record_key_request(KeySlot::declared(0), 200);
        metrics.record_key_request(KeySlot::OTHER, 299);
        metrics.record_retry();
        metrics.reset();
        let text = metrics.render();
        let counts: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        assert!(counts.iter().all(|line| line.ends_with(" 0")), "{text}");
        assert!(!text.contains("endpoint="), "{text}");
        assert!(!text.contains("status="), "{text}");
    }

    #[test]
    fn declared_keys_count_apart_and_every_other_key_in_one_pool() {
        let labels = ["sk-*********1111".to_owned(), "sk-*********2222".to_owned()];
        let metrics = Metrics::new(&["/v1/chat/completions"], &labels);
        let (first, second) = (KeySlot::declared(0), KeySlot::declared(1));
        metrics.record_key_request(first, 200);
        metrics.record_key_request(first, 200);
        metrics.record_key_request(first, 429);
        // A status outside the common list still counts, through the lock.
        metrics.record_key_request(second, 418);
        metrics.record_key_request(KeySlot::OTHER, 401);
        // A slot past the declared labels is the pool's.
        metrics.record_key_request(KeySlot::declared(7), 401);
        metrics.record_tokens(first, 10, 20);
        metrics.record_tokens(second, 1, 2);
        let text = metrics.render();
        let key_lines: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("ratelab_key_"))
            .collect();
        assert_eq!(
            key_lines,
            [
                "ratelab_key_requests_total{key=\"sk-*********1111\",status=\"200\"} 2",
                "ratelab_key_requests_total{key=\"sk-*********1111\",status=\"429\"} 1",
                "ratelab_key_requests_total{key=\"sk-*********2222\",status=\"418\"} 1",
                "ratelab_key_requests_total{key=\"other\",status=\"401\"} 2",
                "ratelab_key_tokens_total{key=\"sk-*********1111\",direction=\"prompt\"} 10",
                "ratelab_key_tokens_total{key=\"sk-*********1111\",direction=\"completion\"} 20",
                "ratelab_key_tokens_total{key=\"sk-*********2222\",direction=\"prompt\"} 1",
                "ratelab_key_tokens_total{key=\"sk-*********2222\",direction=\"completion\"} 2",
                "ratelab_key_tokens_total{key=\"other\",direction=\"prompt\"} 0",
                "ratelab_key_tokens_total{key=\"other\",direction=\"completion\"} 0",
            ],
            "{text}"
        );
        // The totals still count every key.
        assert!(text.contains("ratelab_tokens_total{direction=\"prompt\"} 11"));
    }

    #[test]
    fn graded_counts_land_on_declared_labels_and_the_rest_in_the_pool() {
        let metrics = Metrics::new(&[], &["sk-*********1111".to_owned()]);
        let counts = |logical_requests, succeeded, tokens_wasted| LiveKeyCounts {
            logical_requests,
            retries: 1,
            early_retries: 1,
            succeeded,
            tokens_charged: 10,
            tokens_wasted,
        };
        let graded = [
            ("sk-*********1111".to_owned(), counts(3, 2, 5)),
            ("sk-*******9999".to_owned(), counts(2, 2, 0)),
            ("(none)".to_owned(), counts(1, 0, 0)),
            ("other".to_owned(), counts(1, 1, 5)),
        ];
        let text = metrics.render_graded(&graded);
        for expected in [
            "# TYPE ratelab_key_logical_requests_total counter",
            "ratelab_key_logical_requests_total{key=\"sk-*********1111\"} 3",
            "ratelab_key_logical_requests_total{key=\"other\"} 4",
            "ratelab_key_retries_total{key=\"other\"} 3",
            "ratelab_key_early_retries_total{key=\"sk-*********1111\"} 1",
            "ratelab_key_succeeded_total{key=\"other\"} 3",
            "# TYPE ratelab_key_gave_up gauge",
            "ratelab_key_gave_up{key=\"sk-*********1111\"} 1",
            "ratelab_key_gave_up{key=\"other\"} 1",
            "ratelab_key_tokens_charged_total{key=\"other\"} 30",
            "ratelab_key_tokens_wasted_total{key=\"sk-*********1111\"} 5",
            "ratelab_key_tokens_wasted_total{key=\"other\"} 5",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        // Seven series, two labels each.
        assert_eq!(
            text.lines().filter(|line| !line.starts_with('#')).count(),
            14
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("sk-a\"b\\c\nd"), "sk-a\\\"b\\\\c\\nd");
        let metrics = Metrics::new(&[], &["sk-\"x".to_owned()]);
        metrics.record_key_request(KeySlot::declared(0), 200);
        assert!(
            metrics
                .render()
                .contains("ratelab_key_requests_total{key=\"sk-\\\"x\",status=\"200\"} 1")
        );
    }
}
