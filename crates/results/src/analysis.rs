//! Resilience metrics beyond the counters of [`crate::RunResult`]: goodput, backlog drain after
//! a spike, fairness across fan-out instances, quota spent on rejections, early retries, the
//! storm share and the latency CDF, each aggregated online.
//!
//! Memory grows with client instances and time bins, never with the number of requests: the
//! aggregator keeps one success counter per instance and two signed deltas per time bin, and
//! turns the deltas into per-bin levels (open requests, requests in retry) when the run ends.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use scenario::ClientId;
use serde::{Deserialize, Serialize};

use crate::result::TimeBin;
use crate::storm::{StormTracker, StormWindow};
use crate::trace::{AttemptDecision, AttemptOutcome, AttemptRecord};

/// The quantiles of the latency CDF in [`RunAnalysis::latency_cdf`]: a fixed set, so two runs'
/// curves can be compared point by point.
pub const CDF_QUANTILES: [f64; 27] = [
    0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8,
    0.85, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0,
];

/// What the counters alone do not say about how a strategy coped with the limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunAnalysis {
    /// Successful throughput.
    pub goodput: Goodput,
    /// How long the backlog of open requests took to drain after its peak.
    pub backlog: Backlog,
    /// Jain's fairness index over the instances of each client group, by group name.
    pub fairness: BTreeMap<String, Fairness>,
    /// Quota spent by attempts that did not succeed.
    pub rejected: RejectedCost,
    /// Retries sent before the wait the server asked for (`retry-after`) had passed.
    pub early_retries: u64,
    /// The largest number of requests in retry at the end of any time bin.
    pub peak_retrying: u64,
    /// The storm share ([`crate::storm_share`]): the largest share of retries among the
    /// attempts sent in any one-second window holding at least 10 attempts, from 0 to 1,
    /// rounded to 4 decimals; `None` when no one-second window held 10 attempts.
    #[serde(default)]
    pub storm_share: Option<f64>,
    /// The window the storm share was measured in; `None` with it.
    #[serde(default)]
    pub storm_window: Option<StormWindow>,
    /// End-to-end latency of succeeded requests at the quantiles of [`CDF_QUANTILES`].
    pub latency_cdf: Vec<CdfPoint>,
}

/// Successful throughput over a window that is fixed before the run and the same for every
/// strategy of a scenario: the whole run horizon, from the scenario start to the end of the drain
/// (`duration + drain`).
///
/// A window that ends at the last success would flatter a run that fails fast: a strategy that
/// gives up within a second of a one-second scenario would divide its few successes by one
/// second, while one that keeps retrying through the drain divides more successes by minutes.
/// Over a fixed window, goodput orders the strategies of one scenario exactly as their success
/// counts do, so a run that succeeded less never shows more goodput.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Goodput {
    /// Length of the measuring window, in milliseconds.
    pub window_ms: u64,
    /// Succeeded requests per minute over the window, rounded to 3 decimals.
    pub requests_per_minute: f64,
    /// Prompt plus completion tokens of succeeded requests per minute, rounded to 3 decimals.
    pub tokens_per_minute: f64,
}

/// The backlog of open requests (arrived, neither succeeded nor given up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Backlog {
    /// The largest number of open requests at the end of a time bin.
    pub peak_open: u64,
    /// When that peak was reached (end of its bin), in milliseconds.
    pub peak_at_ms: u64,
    /// Time from the peak until the backlog first fell back to within 10% of the way from the
    /// steady level (the median before the peak) to the peak; `None` if it never did.
    pub drain_ms: Option<u64>,
}

/// Jain's fairness index of one group's per-instance success counts.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Fairness {
    /// Instances in the group.
    pub instances: u32,
    /// `(sum x)^2 / (n * sum x^2)`: 1 when every instance got the same, `1/n` when one got
    /// everything; `None` when no instance succeeded. Rounded to 4 decimals.
    pub jain_index: Option<f64>,
}

/// Quota spent by attempts that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RejectedCost {
    /// Attempts rejected with 429; each still counts against the per-minute request limit.
    pub rate_limited_attempts: u64,
    /// Tokens charged (prompt plus `max_tokens`) by attempts that were admitted but then failed
    /// with a server error or timed out.
    pub wasted_tokens: u64,
}

/// One point of a latency CDF.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CdfPoint {
    /// Share of succeeded requests at or below `latency_us`, from 0 to 1.
    pub quantile: f64,
    /// Latency in microseconds.
    pub latency_us: u64,
}

/// Maps times to time-bin indices, remembering the latest bin: times arrive almost in order,
/// so most lookups skip a 64-bit division (several per simulated attempt otherwise).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BinIndexer {
    width_ns: u64,
    start_ns: u64,
    index: usize,
}

impl BinIndexer {
    /// An indexer for bins `width_ns` wide (not zero).
    pub(crate) fn new(width_ns: u64) -> Self {
        BinIndexer {
            width_ns,
            start_ns: 0,
            index: 0,
        }
    }

    /// The index of the bin holding `at_ns`: `at_ns / width_ns`.
    #[inline]
    pub(crate) fn index(&mut self, at_ns: u64) -> usize {
        if at_ns.wrapping_sub(self.start_ns) >= self.width_ns {
            let index = at_ns / self.width_ns;
            self.start_ns = index * self.width_ns;
            self.index = index as usize;
        }
        self.index
    }
}

/// Per-bin changes of the two levels the bins report.
#[derive(Debug, Clone, Copy, Default)]
struct LevelDelta {
    open: i64,
    retrying: i64,
    admitted_tokens: u64,
}

/// The online part of [`RunAnalysis`]; [`crate::RunMetrics`] feeds it.
#[derive(Debug, Clone)]
pub(crate) struct AnalysisAggregator {
    bin_width_ns: u64,
    /// One per time bin, as many as [`crate::RunMetrics`] has: it indexes a record's bin once
    /// and passes the index in.
    deltas: Vec<LevelDelta>,
    successes_per_instance: Vec<Vec<u64>>,
    goodput_window_ns: Option<u64>,
    last_event_ns: u64,
    succeeded: u64,
    succeeded_tokens: u64,
    rejected: RejectedCost,
    early_retries: u64,
    storm: StormTracker,
}

impl AnalysisAggregator {
    pub(crate) fn new(bin_width_ns: u64, instances_per_group: Vec<u32>) -> Self {
        AnalysisAggregator {
            bin_width_ns,
            deltas: Vec::new(),
            successes_per_instance: instances_per_group
                .into_iter()
                .map(|instances| vec![0; instances as usize])
                .collect(),
            goodput_window_ns: None,
            last_event_ns: 0,
            succeeded: 0,
            succeeded_tokens: 0,
            rejected: RejectedCost::default(),
            early_retries: 0,
            storm: StormTracker::new(),
        }
    }

    /// Grows the per-bin deltas to `bins` bins.
    pub(crate) fn add_bins(&mut self, bins: usize) {
        if bins > self.deltas.len() {
            self.deltas.resize(bins, LevelDelta::default());
        }
    }

    /// Sets the window goodput is measured over, from the start (the run horizon).
    pub(crate) fn set_goodput_window(&mut self, window_ns: u64) {
        self.goodput_window_ns = Some(window_ns);
    }

    /// Counts an arrival at `at_ns`, in bin `bin` (one [`AnalysisAggregator::add_bins`] made).
    #[inline]
    pub(crate) fn record_arrival(&mut self, client: ClientId, at_ns: u64, bin: usize) {
        self.last_event_ns = self.last_event_ns.max(at_ns);
        self.deltas[bin].open += 1;
        // An instance that sends but never succeeds still counts in its group's fairness.
        self.instance_slot(client);
    }

    /// Counts an attempt as it is sent, for the storm share: executors send in time order, while
    /// attempt records come when attempts end, out of send order.
    #[inline]
    pub(crate) fn record_send(&mut self, sent_ns: u64, is_retry: bool) {
        self.storm.record(sent_ns, is_retry);
    }

    /// Counts an attempt that ended in bin `bin` (one [`AnalysisAggregator::add_bins`] made).
    #[inline]
    pub(crate) fn record_attempt(&mut self, record: &AttemptRecord, bin: usize) {
        self.last_event_ns = self.last_event_ns.max(record.ended_ns);
        let charged = u64::from(record.prompt_tokens) + u64::from(record.max_tokens);
        let delta = &mut self.deltas[bin];
        match record.outcome {
            AttemptOutcome::RateLimited { retry_after_ns, .. } => {
                self.rejected.rate_limited_attempts += 1;
                if let (Some(asked_ns), AttemptDecision::Retry { after_ns }) =
                    (retry_after_ns, record.decision)
                    && after_ns < asked_ns
                {
                    self.early_retries += 1;
                }
            }
            AttemptOutcome::ServerError { .. } | AttemptOutcome::Timeout => {
                self.rejected.wasted_tokens += charged;
                delta.admitted_tokens += charged;
            }
            AttemptOutcome::Success => {
                delta.admitted_tokens += charged;
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
        if record.is_final() {
            delta.open -= 1;
            if record.attempt > 0 {
                delta.retrying -= 1;
            }
        } else if record.attempt == 0 {
            // A first attempt that failed: its request is in retry from now.
            delta.retrying += 1;
        }
        if record.decision == AttemptDecision::Done {
            self.succeeded += 1;
            self.succeeded_tokens +=
                u64::from(record.prompt_tokens) + u64::from(record.completion_tokens);
            self.count_instance_success(record.client);
        }
    }

    fn count_instance_success(&mut self, client: ClientId) {
        *self.instance_slot(client) += 1;
    }

    /// The success counter of `client`, created (with any lower instances) on first sight.
    #[inline]
    fn instance_slot(&mut self, client: ClientId) -> &mut u64 {
        // Instances known from the scenario take the one lookup; others are created.
        let known = self
            .successes_per_instance
            .get(client.group as usize)
            .is_some_and(|instances| (client.instance as usize) < instances.len());
        if known {
            return &mut self.successes_per_instance[client.group as usize]
                [client.instance as usize];
        }
        self.new_instance_slot(client)
    }

    #[cold]
    fn new_instance_slot(&mut self, client: ClientId) -> &mut u64 {
        let group = client.group as usize;
        if group >= self.successes_per_instance.len() {
            self.successes_per_instance.resize(group + 1, Vec::new());
        }
        let instances = &mut self.successes_per_instance[group];
        let instance = client.instance as usize;
        if instance >= instances.len() {
            instances.resize(instance + 1, 0);
        }
        &mut instances[instance]
    }

    /// Writes the per-bin levels into `bins` and returns the analysis.
    pub(crate) fn finish(
        self,
        bins: &mut [TimeBin],
        group_names: &[String],
        latency_us: &Histogram<u64>,
    ) -> RunAnalysis {
        let mut open = 0i64;
        let mut retrying = 0i64;
        let mut peak_retrying = 0u64;
        // Bins past the last change (the empty tail of the horizon) keep the last level.
        let no_change = LevelDelta::default();
        for (index, bin) in bins.iter_mut().enumerate() {
            let delta = self.deltas.get(index).unwrap_or(&no_change);
            open += delta.open;
            retrying += delta.retrying;
            bin.open_requests = open.max(0) as u64;
            bin.retrying = retrying.max(0) as u64;
            bin.admitted_tokens = delta.admitted_tokens;
            peak_retrying = peak_retrying.max(bin.retrying);
        }
        // Without a window from the scenario, the last event of any kind ends it: still the
        // same for a run that fails fast and for one that keeps trying, unlike the last success.
        let window_ns = self.goodput_window_ns.unwrap_or(self.last_event_ns);
        let per_minute = |count: u64| {
            if window_ns == 0 {
                0.0
            } else {
                round_to(count as f64 * 60e9 / window_ns as f64, 3)
            }
        };
        let goodput = Goodput {
            window_ms: window_ns / 1_000_000,
            requests_per_minute: per_minute(self.succeeded),
            tokens_per_minute: per_minute(self.succeeded_tokens),
        };
        let fairness = group_names
            .iter()
            .zip(&self.successes_per_instance)
            .map(|(name, successes)| {
                let fairness = Fairness {
                    instances: u32::try_from(successes.len()).unwrap_or(u32::MAX),
                    jain_index: jain_index(successes),
                };
                (name.clone(), fairness)
            })
            .collect();
        let latency_cdf = if latency_us.is_empty() {
            Vec::new()
        } else {
            CDF_QUANTILES
                .iter()
                .map(|&quantile| CdfPoint {
                    quantile,
                    latency_us: latency_us.value_at_quantile(quantile),
                })
                .collect()
        };
        let storm_window = self.storm.finish();
        RunAnalysis {
            storm_share: storm_window.map(|window| round_to(window.share(), 4)),
            storm_window,
            goodput,
            backlog: backlog(bins, self.bin_width_ns / 1_000_000),
            fairness,
            rejected: self.rejected,
            early_retries: self.early_retries,
            peak_retrying,
            latency_cdf,
        }
    }
}

/// Jain's index of `values`, rounded to 4 decimals; `None` when all are zero or there are none.
///
/// ```
/// # use results::jain_index;
/// assert_eq!(jain_index(&[5, 5, 5, 5]), Some(1.0));
/// assert_eq!(jain_index(&[8, 0, 0, 0]), Some(0.25));
/// assert_eq!(jain_index(&[0, 0]), None);
/// ```
pub fn jain_index(values: &[u64]) -> Option<f64> {
    let sum: f64 = values.iter().map(|&value| value as f64).sum();
    let sum_of_squares: f64 = values.iter().map(|&value| (value as f64).powi(2)).sum();
    if sum_of_squares == 0.0 {
        return None;
    }
    Some(round_to(
        sum * sum / (values.len() as f64 * sum_of_squares),
        4,
    ))
}

/// The backlog peak and how long it took to drain, from the per-bin open-request levels.
fn backlog(bins: &[TimeBin], bin_width_ms: u64) -> Backlog {
    let Some((peak_index, peak_bin)) = bins
        .iter()
        .enumerate()
        .max_by_key(|(index, bin)| (bin.open_requests, std::cmp::Reverse(*index)))
    else {
        return Backlog::default();
    };
    let peak_open = peak_bin.open_requests;
    let bin_end = |index: usize| (index as u64 + 1) * bin_width_ms;
    let mut before: Vec<u64> = bins[..peak_index]
        .iter()
        .map(|bin| bin.open_requests)
        .collect();
    before.sort_unstable();
    let steady = before.get(before.len() / 2).copied().unwrap_or(0);
    let target = steady + peak_open.saturating_sub(steady) / 10;
    let drain_ms = bins[peak_index..]
        .iter()
        .position(|bin| bin.open_requests <= target)
        .map(|offset| bin_end(peak_index + offset) - bin_end(peak_index));
    Backlog {
        peak_open,
        peak_at_ms: if peak_open == 0 {
            0
        } else {
            bin_end(peak_index)
        },
        drain_ms: if peak_open == 0 { Some(0) } else { drain_ms },
    }
}

/// `value` rounded to `decimals` places, so JSON stays short and stable.
pub(crate) fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::BinIndexer;

    proptest! {
        #[test]
        fn the_bin_indexer_always_divides(
            width_ns in 1u64..10_000_000_000,
            times in proptest::collection::vec(
                prop_oneof![0u64..100_000_000_000, any::<u64>()],
                1..200,
            ),
        ) {
            let mut indexer = BinIndexer::new(width_ns);
            // Mostly increasing, as in a run, then in the given (arbitrary) order.
            let mut sorted = times.clone();
            sorted.sort_unstable();
            for at_ns in sorted.into_iter().chain(times) {
                prop_assert_eq!(indexer.index(at_ns), (at_ns / width_ns) as usize);
            }
        }
    }
}
