//! ratelab scenarios: the file format, validation with `file:line:col` errors, seeded workload
//! generation, and the trace and result types every executor produces.
//!
//! The flow is one way: [`parse_scenario`] turns TOML into a checked [`Scenario`]; [`workload`]
//! derives one lazy, seeded [`ClientStream`] per client instance; an executor (the `sim` crate,
//! later `live`) sends the requests, emits one [`AttemptRecord`] per attempt and folds them with
//! [`RunMetrics`] into a [`RunResult`]; a [`RunReport`] gathers the runs for `report.json`.
//!
//! This crate is pure: it never reads a clock, sleeps, or spawns; files a scenario refers to
//! are read through a function the caller passes in.

mod analysis;
mod error;
pub mod expect;
pub mod file;
mod metrics;
mod model;
mod replay;
mod result;
mod sample;
mod seeds;
mod storm;
mod trace;
mod validate;
mod work;
mod workload;

pub use analysis::{
    Backlog, CDF_QUANTILES, CdfPoint, Fairness, Goodput, RejectedCost, RunAnalysis, jain_index,
};

pub use error::{Location, ScenarioError};
pub use expect::{Expectations, SloMetric, Threshold, strategy_kind};
pub use metrics::RunMetrics;
pub use model::{
    ArrivalProcess, ClientGroup, Driver, GroupKey, NamedStrategy, RequestShape, Scenario,
    ServerSpec, ServerVariant, SizeDistribution,
};
pub use replay::{RecordedArrival, RecordedTrace, TraceFormat};
pub use result::{
    BatchResult, GroupSummary, LatencySummary, REPORT_FORMAT_VERSION, RunReport, RunResult,
    ScenarioSummary, ServerSummary, TimeBin, Totals,
};
pub use seeds::{
    Confidence, HeadlineMetric, Interval, MAX_SEEDS, SeedMetric, SeedStats, SeedValues,
    derive_seeds,
};
pub use storm::{STORM_MIN_ATTEMPTS, STORM_WINDOW_NS, StormTracker, StormWindow, storm_share};
pub use trace::{AttemptDecision, AttemptOutcome, AttemptRecord, LimitKind};
pub use validate::{DEFAULT_STRATEGY, ReadFile, json_schema, parse_scenario};
pub use work::{MEMORY_CEILING_BYTES, REQUEST_CEILING, WorkEstimate, estimate_work};
pub use workload::{ClientId, ClientStream, RequestSpec, StreamPurpose, stream_rng, workload};
