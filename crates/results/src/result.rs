//! Results of a run: what `report.json` holds and what the report crate renders.
//!
//! Every number is an integer or a rounded ratio and every map is ordered, so the same seed
//! serializes to byte-identical JSON.

use std::collections::BTreeMap;

use scenario::Expectations;
use serde::{Deserialize, Serialize};

use crate::analysis::RunAnalysis;

/// Version of the `report.json` layout; bumped on incompatible changes.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// Everything `ratelab run` learned: the scenario and one result per (server variant, strategy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`REPORT_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// What was run.
    pub scenario: ScenarioSummary,
    /// One entry per server variant and strategy, variants outermost, both in scenario order.
    pub runs: Vec<RunResult>,
    /// Present when a real program was tested (`ratelab test`, or `ratelab serve --scenario`):
    /// which run is the program as the server saw it, and which runs simulate its declared
    /// strategies beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tested: Option<TestedClient>,
}

/// A real client graded by the mock server, next to the simulated models of its strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestedClient {
    /// The strategy label of the client's run (`client`).
    pub run: String,
    /// The command that ran, or a description of the clients served by hand.
    pub command: String,
    /// Copies of the command that ran at once (`--instances`); 0 when started by hand.
    pub instances: u32,
    /// The strategy labels of the simulated runs beside it: the scenario's `[[strategies]]`,
    /// on the same server variant, workload and seed.
    pub models: Vec<String>,
    /// What the server saw of the client beyond the run's numbers (its grading): all keys
    /// together first (`key` is `total`), then each key, redacted, when there are several.
    #[serde(default)]
    pub seen: Vec<ServerSaw>,
}

/// What the mock server saw of a client's calls (or one key's): `grading.json`'s figures that
/// a run's numbers do not carry. Definitions: docs/client-testing.md.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSaw {
    /// `total`, or a redacted API key.
    pub key: String,
    /// HTTP requests (attempts).
    pub requests: u64,
    /// Logical requests: every attempt of one call.
    pub logical_requests: u64,
    /// Attempts after a logical request's first.
    pub retries: u64,
    /// Retries sent before the wait their 429 stated.
    pub early_retries: u64,
    /// Retries within 100 ms of the retry before them.
    pub clustered_retries: u64,
    /// The storm share, when some second held enough attempts to measure it.
    pub storm_share: Option<f64>,
    /// Logical requests that never succeeded.
    pub gave_up: u64,
    /// Retries of answers that said not to retry: `x-should-retry: false` or
    /// `insufficient_quota`.
    pub retried_no_retry: u64,
    /// Tokens the limiter charged the attempts.
    pub tokens_charged: u64,
    /// Of those, tokens charged to attempts that delivered no success.
    pub tokens_wasted: u64,
}

/// The scenario a report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    /// Scenario name.
    pub name: String,
    /// Scenario description.
    pub description: String,
    /// The seed actually used (after `--seed`).
    pub seed: u64,
    /// Model whose limits applied.
    pub model: String,
    /// How long clients sent new requests, in milliseconds.
    pub duration_ms: u64,
    /// How long retries could still finish afterwards, in milliseconds.
    pub drain_ms: u64,
    /// Width of each [`TimeBin`], in milliseconds.
    pub bin_width_ms: u64,
    /// Client groups with their fan-out.
    pub groups: Vec<GroupSummary>,
    /// Server variants with their resolved limits, in run order.
    #[serde(default)]
    pub servers: Vec<ServerSummary>,
    /// Strategy labels, in run order (each run's `spec` holds the full form).
    #[serde(default)]
    pub strategies: Vec<String>,
    /// The scenario's `[expect]` thresholds and gate, so a report re-rendered from
    /// `report.json` judges its runs as `ratelab run` and `ratelab check` did. Flattened: the
    /// JSON has `expect` (the thresholds, absent when there are none) and `gate` (the gated
    /// strategy labels, absent when every strategy is gated).
    #[serde(flatten)]
    pub expect: Expectations,
}

/// A server variant as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// Variant label: the tier, or `custom`, with the rejection rule when rules are compared.
    pub label: String,
    /// The catalog tier the limits come from; absent for explicit limits without a tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The limits and limiter options that applied at the start of the run.
    pub limits: quota::LimitSet,
    /// The timeline's changes of limits (`at[-until]: change`, e.g. `25m: tier tier-2`), when
    /// the server's limits change over the run: then no single limit is the one the goodput is
    /// a share of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limit_changes: Vec<String>,
}

/// A client group as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Group name.
    pub name: String,
    /// Instances sharing the key.
    pub instances: u32,
    /// A batch (closed-loop workers with `requests_per_worker`): the requests it is to send in
    /// all, instances x concurrency x requests_per_worker. Absent for other groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_requests: Option<u64>,
    /// The group's end-to-end request deadline (`deadline`), in milliseconds, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

/// The outcome of one strategy against one server variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Server variant label (the tier, e.g. `tier-1`).
    pub server: String,
    /// Strategy label: the scenario's short `label`, else the spec's compact form.
    pub strategy: String,
    /// The strategy's full spec in compact form (`name:key=value,...`).
    #[serde(default)]
    pub spec: String,
    /// Counts over the whole run.
    pub totals: Totals,
    /// End-to-end latency of succeeded requests (arrival to success, retries included).
    pub latency: LatencySummary,
    /// 429s by the limit that caused them (`rpm`, `tpm`, `rpd`, `tpd`, `too_large`, `other`).
    pub rejections: BTreeMap<String, u64>,
    /// Requests given up, by the strategy's reason (`max-attempts`, `circuit-open`, ...).
    #[serde(default)]
    pub give_up_reasons: BTreeMap<retry::GiveUpReason, u64>,
    /// Counts per client group, by group name.
    pub groups: BTreeMap<String, Totals>,
    /// Counts per time bin, from the scenario start; attempts are binned by when they ended,
    /// arrivals by when they arrived.
    pub bins: Vec<TimeBin>,
    /// Goodput, backlog drain, fairness, rejected cost, early retries and the latency CDF.
    #[serde(default)]
    pub analysis: RunAnalysis,
    /// How far the batch got (groups with `requests_per_worker`); absent when the scenario has
    /// no batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchResult>,
    /// The headline metrics over every seed of a multi-seed run (`ratelab run --seeds N`), with
    /// their means and 95% intervals; the other fields are those of the first seed. Absent for
    /// a run on one seed, so a one-seed report reads exactly as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<crate::SeedStats>,
}

/// How far a run got through the scenario's batch: the closed-loop groups with
/// `requests_per_worker`, whose work is fixed in advance. Strategies that pace or back off
/// start fewer of its requests before the run stops sending at `duration`, so success rates
/// alone compare different work; these numbers put them on the same work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// Requests the batch is to send: the sum of its groups' `batch_requests`.
    pub requests: u64,
    /// Of those, requests never started because the run stopped sending first.
    pub not_started: u64,
    /// The batch's completion time: from its start (the earliest start of its groups) to the
    /// end of its last request, success or give-up, in milliseconds. `None` ("not finished")
    /// when a request never started or was still open when the run ended.
    pub makespan_ms: Option<u64>,
}

/// Request and attempt counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Logical requests that arrived.
    pub requests: u64,
    /// Requests that eventually succeeded.
    pub succeeded: u64,
    /// Requests the strategy gave up.
    pub gave_up: u64,
    /// Requests still open when the run stopped.
    pub unfinished: u64,
    /// HTTP attempts sent.
    pub attempts: u64,
    /// Attempts rejected with 429.
    pub rate_limited: u64,
    /// Attempts failed with a 5xx.
    pub server_errors: u64,
    /// Attempts that timed out on the client.
    pub timeouts: u64,
    /// Prompt tokens of succeeded requests.
    pub prompt_tokens: u64,
    /// Completion tokens of succeeded requests.
    pub completion_tokens: u64,
}

impl Totals {
    /// Attempts per logical request: 1.0 means no retries.
    ///
    /// ```
    /// let totals = results::Totals { requests: 4, attempts: 10, ..Default::default() };
    /// assert_eq!(totals.amplification(), 2.5);
    /// ```
    pub fn amplification(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.attempts as f64 / self.requests as f64
        }
    }

    /// Share of requests that succeeded, from 0 to 1.
    pub fn success_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.succeeded as f64 / self.requests as f64
        }
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean, rounded.
    pub mean_us: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// Counts in one time bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBin {
    /// Bin start since the scenario start, in milliseconds.
    pub start_ms: u64,
    /// Requests that arrived.
    pub arrivals: u64,
    /// Attempts that ended.
    pub attempts: u64,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Attempts rejected with 429.
    pub rate_limited: u64,
    /// Attempts failed with a 5xx.
    pub server_errors: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Requests given up.
    pub gave_up: u64,
    /// Tokens charged (prompt plus `max_tokens`) by attempts admitted past the limiter that
    /// ended in this bin.
    #[serde(default)]
    pub admitted_tokens: u64,
    /// Requests open (arrived, not yet succeeded or given up) at the end of the bin.
    #[serde(default)]
    pub open_requests: u64,
    /// Requests in retry (a first attempt failed, not yet finished) at the end of the bin.
    #[serde(default)]
    pub retrying: u64,
}

impl ScenarioSummary {
    /// The summary of a validated scenario.
    pub fn of(scenario: &scenario::Scenario) -> ScenarioSummary {
        let millis =
            |duration: std::time::Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        ScenarioSummary {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            seed: scenario.seed,
            model: scenario.server.model.clone(),
            duration_ms: millis(scenario.duration),
            drain_ms: millis(scenario.drain),
            bin_width_ms: millis(scenario.bin_width),
            groups: scenario
                .groups
                .iter()
                .map(|group| GroupSummary {
                    name: group.name.clone(),
                    instances: group.instances,
                    batch_requests: group.batch_requests(),
                    deadline_ms: group.shape.deadline.map(millis),
                })
                .collect(),
            servers: scenario
                .server
                .variants
                .iter()
                .map(|variant| ServerSummary {
                    label: variant.label.clone(),
                    tier: variant.tier.clone(),
                    limits: variant.limits.clone(),
                    limit_changes: limit_changes(&variant.config.timeline),
                })
                .collect(),
            strategies: scenario
                .strategies
                .iter()
                .map(|strategy| strategy.label.clone())
                .collect(),
            expect: scenario.expect.clone(),
        }
    }
}

/// The timeline's entries that change limits, described as `at[-until]: change`.
fn limit_changes(timeline: &[model::TimelineEntry]) -> Vec<String> {
    timeline
        .iter()
        .filter(|entry| entry.changes_limits())
        .map(model::TimelineEntry::describe)
        .collect()
}
