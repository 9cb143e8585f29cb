//! Online aggregation of a trace into a [`RunResult`]: memory grows with client groups and time
//! bins, never with the number of requests.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use scenario::{ClientId, Scenario};

use crate::analysis::{AnalysisAggregator, BinIndexer};
use crate::result::{BatchResult, LatencySummary, RunResult, TimeBin, Totals};
use crate::trace::{AttemptDecision, AttemptOutcome, AttemptRecord, LimitKind};

/// Every kind, `Other` last (a kind missing here would count as `Other`).
const LIMIT_KINDS: [LimitKind; 7] = [
    LimitKind::Rpm,
    LimitKind::Rpd,
    LimitKind::Tpm,
    LimitKind::Tpd,
    LimitKind::Ipm,
    LimitKind::TooLarge,
    LimitKind::Other,
];

/// Folds arrivals and attempt records into counters, time bins and a latency histogram.
///
/// ```
/// use results::{AttemptDecision, AttemptOutcome, AttemptRecord, RunMetrics};
/// use scenario::ClientId;
///
/// let mut metrics = RunMetrics::new(vec!["app".into()], 1_000_000_000);
/// let client = ClientId { group: 0, instance: 0 };
/// metrics.record_arrival(client, 0);
/// metrics.record_attempt(&AttemptRecord {
///     run: 0, client, request: 0, attempt: 0,
///     arrived_ns: 0, sent_ns: 0, ended_ns: 250_000_000,
///     prompt_tokens: 10, max_tokens: 20, completion_tokens: 20,
///     outcome: AttemptOutcome::Success, decision: AttemptDecision::Done,
/// });
/// let result = metrics.finish("tier-1".into(), "sdk-default".into());
/// assert_eq!(result.totals.succeeded, 1);
/// assert_eq!(result.latency.p50_us / 1000, 250);
/// ```
#[derive(Debug, Clone)]
pub struct RunMetrics {
    group_names: Vec<String>,
    bin_width_ns: u64,
    bin_index: BinIndexer,
    /// Per-group counters; the run's totals are their sum, taken when asked (every record
    /// counts in exactly one group), so an attempt updates one set of counters, not two.
    groups: Vec<Totals>,
    rejections: [u64; LIMIT_KINDS.len()],
    give_up_reasons: BTreeMap<retry::GiveUpReason, u64>,
    bins: Vec<TimeBin>,
    /// Bins every result has at least, so runs of one scenario share one time axis.
    min_bins: usize,
    latency_us: LatencyCounts,
    analysis: AnalysisAggregator,
    /// The scenario's batch, if it has one: closed-loop groups with a fixed number of requests.
    batch: Option<BatchTracker>,
}

/// What the makespan of a batch needs: which groups belong to it, with their planned
/// requests, when it started, and when its last request so far ended.
#[derive(Debug, Clone)]
struct BatchTracker {
    /// Requests each group is to send, `None` for groups outside the batch.
    planned: Vec<Option<u64>>,
    start_ns: u64,
    last_end_ns: u64,
}

impl BatchTracker {
    #[inline]
    fn record_end(&mut self, group: u32, ended_ns: u64) {
        if self
            .planned
            .get(group as usize)
            .is_some_and(Option::is_some)
        {
            self.last_end_ns = self.last_end_ns.max(ended_ns);
        }
    }

    fn finish(&self, groups: &[Totals]) -> BatchResult {
        let mut requests = 0u64;
        let mut started = 0u64;
        let mut finished = 0u64;
        for (planned, group) in self.planned.iter().zip(groups) {
            if let Some(planned) = planned {
                requests = requests.saturating_add(*planned);
                started += group.requests;
                finished += group.succeeded + group.gave_up;
            }
        }
        BatchResult {
            requests,
            not_started: requests.saturating_sub(started),
            makespan_ms: (finished >= requests)
                .then(|| self.last_end_ns.saturating_sub(self.start_ns) / 1_000_000),
        }
    }
}

impl RunMetrics {
    /// An empty aggregate for groups named `group_names` (indexed by [`ClientId::group`]).
    ///
    /// A zero `bin_width_ns` is treated as one second.
    pub fn new(group_names: Vec<String>, bin_width_ns: u64) -> Self {
        let groups = vec![Totals::default(); group_names.len()];
        let bin_width_ns = if bin_width_ns == 0 {
            1_000_000_000
        } else {
            bin_width_ns
        };
        RunMetrics {
            group_names,
            bin_width_ns,
            bin_index: BinIndexer::new(bin_width_ns),
            groups,
            rejections: [0; LIMIT_KINDS.len()],
            give_up_reasons: BTreeMap::new(),
            bins: Vec::new(),
            min_bins: 0,
            latency_us: LatencyCounts::default(),
            analysis: AnalysisAggregator::new(bin_width_ns, Vec::new()),
            batch: None,
        }
    }

    /// An empty aggregate for a scenario's groups and bin width.
    pub fn for_scenario(scenario: &Scenario) -> Self {
        let names = scenario
            .groups
            .iter()
            .map(|group| group.name.clone())
            .collect();
        let width = u64::try_from(scenario.bin_width.as_nanos()).unwrap_or(u64::MAX);
        let mut metrics = RunMetrics::new(names, width);
        let horizon = u64::try_from(scenario.horizon().as_nanos()).unwrap_or(u64::MAX);
        metrics.min_bins = usize::try_from(horizon.div_ceil(metrics.bin_width_ns)).unwrap_or(0);
        // Known instance counts let fairness count instances that never succeeded.
        let instances = scenario
            .groups
            .iter()
            .map(|group| group.instances)
            .collect();
        metrics.analysis = AnalysisAggregator::new(metrics.bin_width_ns, instances);
        let planned: Vec<Option<u64>> = scenario
            .groups
            .iter()
            .map(scenario::ClientGroup::batch_requests)
            .collect();
        let batch_start = scenario
            .groups
            .iter()
            .filter(|group| group.batch_requests().is_some())
            .map(|group| group.start)
            .min();
        if let Some(start) = batch_start {
            let start_ns = u64::try_from(start.as_nanos()).unwrap_or(u64::MAX);
            metrics.batch = Some(BatchTracker {
                planned,
                start_ns,
                last_end_ns: start_ns,
            });
        }
        metrics.set_goodput_window(horizon);
        metrics
    }

    /// Tracks a batch of `requests` sent by group 0 from `start_ns`: its makespan, and how many
    /// of its requests never started. For runs not built from a scenario's groups, such as a
    /// real client graded by the mock server, whose one group is the whole client.
    pub fn track_batch(&mut self, requests: u64, start_ns: u64) {
        let mut planned = vec![None; self.groups.len()];
        if let Some(first) = planned.first_mut() {
            *first = Some(requests);
        }
        self.batch = Some(BatchTracker {
            planned,
            start_ns,
            last_end_ns: start_ns,
        });
    }

    /// Sets the window goodput is measured over, from the scenario start: the run horizon
    /// (`duration + drain`), the same for every strategy, so a run that gives up early is not
    /// flattered by a short window (see [`crate::Goodput`]). Without it, the window ends at the
    /// last arrival or attempt recorded.
    pub fn set_goodput_window(&mut self, window_ns: u64) {
        self.analysis.set_goodput_window(window_ns);
    }

    /// The index of the bin holding `at_ns`, creating it (and any before it) on first sight,
    /// in the analysis' bins too: both are indexed once per record.
    #[inline]
    fn bin_index(&mut self, at_ns: u64) -> usize {
        let index = self.bin_index.index(at_ns);
        if index >= self.bins.len() {
            self.add_bins(index);
        }
        index
    }

    #[cold]
    fn add_bins(&mut self, last: usize) {
        let width_ms = self.bin_width_ns / 1_000_000;
        let first_new = self.bins.len();
        self.bins.extend((first_new..=last).map(|bin| TimeBin {
            start_ms: bin as u64 * width_ms,
            ..TimeBin::default()
        }));
        self.analysis.add_bins(self.bins.len());
    }

    /// The index of `client`'s group in `groups`.
    #[inline]
    fn group(&mut self, client: ClientId) -> usize {
        // Almost every call names a known group: one comparison, then the rare cases.
        let known = (client.group as usize) < self.groups.len();
        if known {
            return client.group as usize;
        }
        self.group_slow(client)
    }

    #[cold]
    fn group_slow(&mut self, client: ClientId) -> usize {
        let index = (client.group as usize).min(self.groups.len().saturating_sub(1));
        if self.groups.is_empty() {
            self.groups.push(Totals::default());
            self.group_names.push(String::from("default"));
        }
        index
    }

    /// Counts a logical request arriving at `at_ns`.
    pub fn record_arrival(&mut self, client: ClientId, at_ns: u64) {
        let group = self.group(client);
        self.groups[group].requests += 1;
        let bin = self.bin_index(at_ns);
        self.bins[bin].arrivals += 1;
        self.analysis.record_arrival(client, at_ns, bin);
    }

    /// Counts an HTTP attempt as it is sent, for the storm share ([`crate::storm_share`]):
    /// `attempt` is its number within the request, from 0, so any later one is a retry.
    ///
    /// Executors call it at each send, in non-decreasing `sent_ns` order (the simulator's
    /// virtual time never goes back), besides [`RunMetrics::record_attempt`] when the attempt
    /// ends: records arrive in end order, which is not send order. Without these calls the
    /// result has no storm share.
    #[inline]
    pub fn record_send(&mut self, sent_ns: u64, attempt: u32) {
        self.analysis.record_send(sent_ns, attempt > 0);
    }

    /// Counts one attempt (a [`AttemptOutcome::NotSent`] record counts no attempt) and, when it
    /// ended its request, the request's fate and latency.
    #[inline]
    pub fn record_attempt(&mut self, record: &AttemptRecord) {
        let bin = self.bin_index(record.ended_ns);
        self.analysis.record_attempt(record, bin);
        let group = self.group(record.client);
        // Counters are bumped in place: the group's and the bin's, nothing else per attempt.
        let totals = &mut self.groups[group];
        let bin = &mut self.bins[bin];
        let sent = u64::from(record.was_sent());
        totals.attempts += sent;
        bin.attempts += sent;
        match record.outcome {
            AttemptOutcome::Success | AttemptOutcome::NotSent => {}
            AttemptOutcome::RateLimited { limit, .. } => {
                totals.rate_limited += 1;
                bin.rate_limited += 1;
                self.rejections[limit_slot(limit)] += 1;
            }
            AttemptOutcome::ServerError { .. } => {
                totals.server_errors += 1;
                bin.server_errors += 1;
            }
            AttemptOutcome::Timeout => {
                totals.timeouts += 1;
                bin.timeouts += 1;
            }
        }
        match record.decision {
            AttemptDecision::Done => {
                totals.succeeded += 1;
                totals.prompt_tokens += u64::from(record.prompt_tokens);
                totals.completion_tokens += u64::from(record.completion_tokens);
                bin.succeeded += 1;
                let latency_us = record.ended_ns.saturating_sub(record.arrived_ns) / 1_000;
                self.latency_us.record(latency_us.max(1));
                if let Some(batch) = &mut self.batch {
                    batch.record_end(record.client.group, record.ended_ns);
                }
            }
            AttemptDecision::GiveUp { reason } => {
                totals.gave_up += 1;
                bin.gave_up += 1;
                if let Some(reason) = reason {
                    *self.give_up_reasons.entry(reason).or_insert(0) += 1;
                }
                if let Some(batch) = &mut self.batch {
                    batch.record_end(record.client.group, record.ended_ns);
                }
            }
            AttemptDecision::Retry { .. } => {}
        }
    }

    /// The totals so far: the sum of the groups' (`unfinished` is set only by
    /// [`RunMetrics::finish`]).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for group in &self.groups {
            add_totals(&mut totals, group);
        }
        totals
    }

    /// The finished result, labelled with its server variant and strategy (whose `spec` is the
    /// label until the caller sets the full spec). For a scenario's
    /// metrics ([`RunMetrics::for_scenario`]) the bins cover the whole horizon, empty or not.
    pub fn finish(mut self, server: String, strategy: String) -> RunResult {
        if self.min_bins > 0 && self.bins.len() < self.min_bins {
            let last_start = (self.min_bins as u64 - 1) * self.bin_width_ns;
            self.bin_index(last_start);
        }
        let mut totals = self.totals();
        let mut bins = self.bins;
        let histogram = self.latency_us.into_histogram();
        let analysis = self
            .analysis
            .finish(&mut bins, &self.group_names, &histogram);
        totals.unfinished = totals
            .requests
            .saturating_sub(totals.succeeded + totals.gave_up);
        let batch = self.batch.as_ref().map(|batch| batch.finish(&self.groups));
        let groups = self
            .group_names
            .into_iter()
            .zip(self.groups)
            .map(|(name, mut group)| {
                group.unfinished = group
                    .requests
                    .saturating_sub(group.succeeded + group.gave_up);
                (name, group)
            })
            .collect();
        let rejections = LIMIT_KINDS
            .iter()
            .zip(self.rejections)
            .filter(|(_, count)| *count > 0)
            .map(|(kind, count)| (kind.as_str().to_owned(), count))
            .collect::<BTreeMap<_, _>>();
        let latency = if histogram.is_empty() {
            LatencySummary::default()
        } else {
            LatencySummary {
                count: histogram.len(),
                mean_us: histogram.mean().round() as u64,
                p50_us: histogram.value_at_quantile(0.5),
                p90_us: histogram.value_at_quantile(0.9),
                p99_us: histogram.value_at_quantile(0.99),
                p999_us: histogram.value_at_quantile(0.999),
                max_us: histogram.max(),
            }
        };
        RunResult {
            server,
            spec: strategy.clone(),
            strategy,
            totals,
            latency,
            rejections,
            give_up_reasons: self.give_up_reasons,
            groups,
            bins,
            analysis,
            batch,
            seeds: None,
        }
    }
}

/// Latencies counted in hdrhistogram's buckets for three significant digits (percentiles exact
/// to 0.1%) in a plain vector, turned into the `Histogram` when the run ends: its own
/// `record` (a bounds probe, a resize check, min, max and a saturating total per value) was
/// over a hundred instructions per success, this is an index and an add. The histogram built
/// from the counts equals one recorded value by value (property and edge tests check it for
/// every latency a run can have, below 2^55 us, and every bucket edge to 2^63; so does every
/// statistic read from it: they depend only on the buckets' counts and on the buckets of the
/// largest and smallest values).
#[derive(Debug, Clone, Default)]
struct LatencyCounts {
    /// Counts by hdrhistogram's index; as long as the largest index seen.
    counts: Vec<u64>,
}

impl LatencyCounts {
    /// Three significant digits give hdrhistogram 2,048 sub-buckets (2^11 > 2 x 10^3), half
    /// of them, 2^10, new in each bucket after the first; values are whole units (1 us).
    const HALF_MAGNITUDE: u32 = 10;
    /// `64 - unit magnitude (0) - HALF_MAGNITUDE - 1`: hdrhistogram's `leading_zero_count_base`.
    const LEADING_ZERO_BASE: u32 = 53;
    const SUB_BUCKET_MASK: u64 = (1 << (Self::HALF_MAGNITUDE + 1)) - 1;

    /// hdrhistogram's `index_for(value)`.
    #[inline]
    fn index(value: u64) -> usize {
        let bucket = Self::LEADING_ZERO_BASE - (value | Self::SUB_BUCKET_MASK).leading_zeros();
        let sub_bucket = (value >> bucket) as usize;
        ((bucket as usize + 1) << Self::HALF_MAGNITUDE) + sub_bucket - (1 << Self::HALF_MAGNITUDE)
    }

    /// hdrhistogram's `value_for(index)`: the lowest value of the index's bucket.
    fn lowest_value(index: usize) -> u64 {
        let half = 1usize << Self::HALF_MAGNITUDE;
        let bucket = (index >> Self::HALF_MAGNITUDE).saturating_sub(1);
        let sub_bucket = if index < half {
            index
        } else {
            (index & (half - 1)) + half
        };
        (sub_bucket as u64) << bucket
    }

    #[inline]
    fn record(&mut self, value: u64) {
        let index = Self::index(value);
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
    }

    /// The histogram of every value recorded.
    fn into_histogram(self) -> Histogram<u64> {
        let mut histogram = Histogram::new(3).expect("hdrhistogram supports 3 significant digits");
        for (index, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                // The histogram resizes itself; recording fails only past u64 range.
                let _ = histogram.record_n(Self::lowest_value(index), count);
            }
        }
        histogram
    }
}

/// The slot of `limit` in [`LIMIT_KINDS`].
#[inline]
fn limit_slot(limit: LimitKind) -> usize {
    match limit {
        LimitKind::Rpm => 0,
        LimitKind::Rpd => 1,
        LimitKind::Tpm => 2,
        LimitKind::Tpd => 3,
        LimitKind::Ipm => 4,
        LimitKind::TooLarge => 5,
        LimitKind::Other => 6,
    }
}

fn add_totals(into: &mut Totals, delta: &Totals) {
    into.requests += delta.requests;
    into.succeeded += delta.succeeded;
    into.gave_up += delta.gave_up;
    into.attempts += delta.attempts;
    into.rate_limited += delta.rate_limited;
    into.server_errors += delta.server_errors;
    into.timeouts += delta.timeouts;
    into.prompt_tokens += delta.prompt_tokens;
    into.completion_tokens += delta.completion_tokens;
}

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;
    use proptest::prelude::*;

    use super::{LIMIT_KINDS, LatencyCounts, limit_slot};

    proptest! {
        #[test]
        fn latency_counts_make_the_histogram_recording_makes(
            values in proptest::collection::vec(
                prop_oneof![1u64..5_000, 1u64..100_000_000, 1u64..=u64::MAX / 1_000],
                0..300,
            ),
        ) {
            let mut counts = LatencyCounts::default();
            let mut recorded = Histogram::<u64>::new(3).unwrap();
            for &value in &values {
                counts.record(value);
                let _ = recorded.record(value);
            }
            let built = counts.into_histogram();
            prop_assert!(built == recorded);
            prop_assert_eq!(built.len(), recorded.len());
            prop_assert_eq!(built.max(), recorded.max());
            prop_assert_eq!(built.min_nz(), recorded.min_nz());
            prop_assert_eq!(built.mean().to_bits(), recorded.mean().to_bits());
            for quantile in crate::CDF_QUANTILES.into_iter().chain([0.999, 0.5]) {
                prop_assert_eq!(
                    built.value_at_quantile(quantile),
                    recorded.value_at_quantile(quantile)
                );
            }
        }
    }

    #[test]
    fn latency_counts_index_every_value_as_hdrhistogram_does() {
        // Every bucket boundary: the last value of a bucket, its first and the next, up to
        // 2^63 (a latency in microseconds is below 2^55: u64 nanoseconds over 1,000).
        let mut values = vec![0, 1, 2, 1023, 1024, 2047, 2048, u64::MAX / 1_000];
        for shift in 0..64 {
            let edge = 1u64 << shift;
            values.extend([edge - 1, edge, edge + 1, edge.saturating_mul(3) / 2]);
        }
        for value in values {
            let mut counts = LatencyCounts::default();
            counts.record(value);
            let mut recorded = Histogram::<u64>::new(3).unwrap();
            let _ = recorded.record(value);
            assert!(counts.into_histogram() == recorded, "{value}");
        }
    }

    #[test]
    fn every_limit_kind_has_its_own_slot() {
        for (slot, kind) in LIMIT_KINDS.iter().enumerate() {
            assert_eq!(limit_slot(*kind), slot, "{kind:?}");
        }
    }
}
