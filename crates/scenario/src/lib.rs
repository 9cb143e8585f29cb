//! ratelab scenarios: the file format, validation with `file:line:col` errors and seeded
//! workload generation.
//!
//! The flow is one way: [`parse_scenario`] turns TOML into a checked [`Scenario`]; [`workload`]
//! derives one lazy, seeded [`ClientStream`] per client instance; an executor (the `sim` crate,
//! later `live`) sends the requests. What it makes of them, the trace, the metrics and the
//! run's results, is the `results` crate's, which depends on this one.
//!
//! This crate is pure: it never reads a clock, sleeps, or spawns; files a scenario refers to
//! are read through a function the caller passes in.

mod error;
pub mod expect;
pub mod file;
mod model;
mod replay;
mod sample;
mod seeds;
mod validate;
mod work;
mod workload;

pub use error::{Location, ScenarioError};
pub use expect::{Expectations, PlanGate, SloMetric, Threshold, strategy_kind};
pub use model::{
    ArrivalProcess, ClientGroup, Driver, GroupKey, NamedStrategy, RequestShape, Scenario,
    ServerSpec, ServerVariant, SizeDistribution,
};
pub use replay::{RecordedArrival, RecordedTrace, TraceFormat};
pub use seeds::{MAX_SEEDS, derive_seeds};
pub use validate::{
    DEFAULT_STRATEGY, ReadFile, json_schema, parse_scenario, parse_scenario_with_catalog,
    server_variant,
};
pub use work::{MEMORY_CEILING_BYTES, REQUEST_CEILING, WorkEstimate, estimate_work};
pub use workload::{ClientId, ClientStream, RequestSpec, StreamPurpose, stream_rng, workload};
