//! ratelab's server model: the one configuration of a server (a scenario's `[server]` table
//! and a `ratelab serve` config are the same schema, [`ServerConfig`]) and the decision of
//! every request's fate from it ([`ServerModel::decide`]), shared by the simulator and the mock
//! server so that a result in virtual time holds against a real client.
//!
//! The decision takes the server time, the caller, the request's cost and an RNG stream, and
//! returns a typed [`Reply`]: admitted (with the limits' statuses and any late fault) or
//! refused (a 429 with its rejection and headers, an injected error, a hang). The latency of
//! the answer comes from [`ServerModel::latency_at`], and `[[timeline]]` changes tier, limits,
//! faults and latency over the run for both executors alike.
//!
//! This crate is pure: it never reads a clock, sleeps, spawns or does I/O; time and randomness
//! are parameters.

mod completion;
mod config;
mod duration;
mod error;
mod faults;
mod latency;
mod pricing;
mod server;
mod timeline;

pub use completion::LengthDistribution;
pub use config::{
    ClockKind, ConfigError, ConfiguredLimits, ConnectionLimits, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_ORGANIZATION, DEFAULT_PROJECT, DEFAULT_TIER, HeaderPolicy, LimiterOptions,
    OrganizationConfig, ProjectConfig, RateLimitHeaderPolicy, ServerConfig, WrittenOptions,
    json_schema, read_catalog_file, redact,
};
pub use duration::{HumanDuration, parse_duration};
pub use error::{ModelError, ModelErrorKind};
pub use faults::{
    ActiveWindow, DEFAULT_HANG, Fault, FaultConfig, FaultRates, FaultScript, Faults, ScriptStep,
    validate_script,
};
pub use latency::{LatencyConfig, LatencyNanos, LatencyPlan};
pub use pricing::{PRICES_DATE, Price, PriceTable};
pub use server::{
    Admission, Caller, Cost, LateFault, RateLimited, Refusal, Reply, RequestLimits, RouteId,
    SPEND_WATCH_MARGIN, ServerModel, build_catalog,
};
pub use timeline::{Timeline, TimelineEntry};
