//! ratelab results: the trace every executor emits, the online metrics that fold it, and the
//! run results that `report.json` holds.
//!
//! The flow continues from the `scenario` crate: an executor (the `sim` crate, the mock server's
//! grading, later `live`) sends a scenario's requests, emits one [`AttemptRecord`] per attempt
//! and folds them with [`RunMetrics`] into a [`RunResult`]; a [`RunReport`] gathers the runs
//! (with [`SeedStats`] over several seeds) for `report.json`, which the `report` crate renders.
//!
//! The aggregator lives here, next to the trace type, rather than in `report`: executors feed
//! it while they run, and `report` only reads finished [`RunReport`]s.
//!
//! This crate is pure: it never reads a clock, sleeps, spawns or does I/O.

mod analysis;
mod metrics;
mod result;
mod seed_stats;
mod storm;
mod trace;

pub use analysis::{
    Backlog, CDF_QUANTILES, CdfPoint, Fairness, Goodput, RejectedCost, RunAnalysis, jain_index,
};
pub use metrics::RunMetrics;
pub use result::{
    BatchResult, GroupSummary, LatencySummary, REPORT_FORMAT_VERSION, RunReport, RunResult,
    ScenarioSummary, ServerSaw, ServerSummary, TestedClient, TimeBin, Totals,
};
pub use seed_stats::{Confidence, HeadlineMetric, Interval, SeedMetric, SeedStats, SeedValues};
pub use storm::{STORM_MIN_ATTEMPTS, STORM_WINDOW_NS, StormTracker, StormWindow, storm_share};
pub use trace::{AttemptDecision, AttemptOutcome, AttemptRecord, LimitKind};
