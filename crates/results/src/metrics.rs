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
    totals: Totals,
    groups: Vec<Totals>,
    rejections: [u64; LIMIT_KINDS.len()],
    give_up_reasons: BTreeMap<retry::GiveUpReason, u64>,
    bins: Vec<TimeBin>,
    /// Bins every result has at least, so runs of one scenario share one time axis.
    min_bins: usize,
    latency_us: Histogram<u64>,
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
            totals: Totals::default(),
            groups,
            rejections: [0; LIMIT_KINDS.len()],
            give_up_reasons: BTreeMap::new(),
            bins: Vec::new(),
            min_bins: 0,
            // Three significant digits: percentiles exact to 0.1%, a few tens of kilobytes.
            latency_us: Histogram::new(3).expect("hdrhistogram supports 3 significant digits"),
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

    #[inline]
    fn bin(&mut self, at_ns: u64) -> &mut TimeBin {
        let index = self.bin_index.index(at_ns);
        if index >= self.bins.len() {
            let width_ms = self.bin_width_ns / 1_000_000;
            let first_new = self.bins.len();
            self.bins.extend((first_new..=index).map(|bin| TimeBin {
                start_ms: bin as u64 * width_ms,
                ..TimeBin::default()
            }));
        }
        &mut self.bins[index]
    }

    #[inline]
    fn group(&mut self, client: ClientId) -> &mut Totals {
        // Almost every call names a known group: one bounds check, then the rare cases.
        let known = (client.group as usize) < self.groups.len();
        if known {
            return &mut self.groups[client.group as usize];
        }
        self.group_slow(client)
    }

    #[cold]
    fn group_slow(&mut self, client: ClientId) -> &mut Totals {
        let index = (client.group as usize).min(self.groups.len().saturating_sub(1));
        if self.groups.is_empty() {
            self.groups.push(Totals::default());
            self.group_names.push(String::from("default"));
        }
        &mut self.groups[index]
    }

    /// Counts a logical request arriving at `at_ns`.
    pub fn record_arrival(&mut self, client: ClientId, at_ns: u64) {
        self.totals.requests += 1;
        self.group(client).requests += 1;
        self.bin(at_ns).arrivals += 1;
        self.analysis.record_arrival(client, at_ns);
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
        self.analysis.record_attempt(record);
        let sent = u64::from(record.was_sent());
        let mut delta = Totals {
            attempts: sent,
            ..Totals::default()
        };
        let mut bin_delta = TimeBin {
            attempts: sent,
            ..TimeBin::default()
        };
        match record.outcome {
            AttemptOutcome::Success | AttemptOutcome::NotSent => {}
            AttemptOutcome::RateLimited { limit, .. } => {
                delta.rate_limited = 1;
                bin_delta.rate_limited = 1;
                let slot = LIMIT_KINDS
                    .iter()
                    .position(|kind| *kind == limit)
                    .unwrap_or(LIMIT_KINDS.len() - 1);
                self.rejections[slot] += 1;
            }
            AttemptOutcome::ServerError { .. } => {
                delta.server_errors = 1;
                bin_delta.server_errors = 1;
            }
            AttemptOutcome::Timeout => {
                delta.timeouts = 1;
                bin_delta.timeouts = 1;
            }
        }
        match record.decision {
            AttemptDecision::Done => {
                delta.succeeded = 1;
                delta.prompt_tokens = u64::from(record.prompt_tokens);
                delta.completion_tokens = u64::from(record.completion_tokens);
                bin_delta.succeeded = 1;
                let latency_us = record.ended_ns.saturating_sub(record.arrived_ns) / 1_000;
                // The histogram resizes itself; recording fails only past u64 range, which a
                // latency in microseconds never reaches.
                let _ = self.latency_us.record(latency_us.max(1));
                if let Some(batch) = &mut self.batch {
                    batch.record_end(record.client.group, record.ended_ns);
                }
            }
            AttemptDecision::GiveUp { reason } => {
                delta.gave_up = 1;
                bin_delta.gave_up = 1;
                if let Some(reason) = reason {
                    *self.give_up_reasons.entry(reason).or_insert(0) += 1;
                }
                if let Some(batch) = &mut self.batch {
                    batch.record_end(record.client.group, record.ended_ns);
                }
            }
            AttemptDecision::Retry { .. } => {}
        }
        add_totals(&mut self.totals, &delta);
        add_totals(self.group(record.client), &delta);
        let bin = self.bin(record.ended_ns);
        bin.attempts += bin_delta.attempts;
        bin.succeeded += bin_delta.succeeded;
        bin.rate_limited += bin_delta.rate_limited;
        bin.server_errors += bin_delta.server_errors;
        bin.timeouts += bin_delta.timeouts;
        bin.gave_up += bin_delta.gave_up;
    }

    /// The totals so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The finished result, labelled with its server variant and strategy (whose `spec` is the
    /// label until the caller sets the full spec). For a scenario's
    /// metrics ([`RunMetrics::for_scenario`]) the bins cover the whole horizon, empty or not.
    pub fn finish(mut self, server: String, strategy: String) -> RunResult {
        if self.min_bins > 0 && self.bins.len() < self.min_bins {
            let last_start = (self.min_bins as u64 - 1) * self.bin_width_ns;
            self.bin(last_start);
        }
        let mut bins = self.bins;
        let analysis = self
            .analysis
            .finish(&mut bins, &self.group_names, &self.latency_us);
        let mut totals = self.totals;
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
        let histogram = &self.latency_us;
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
