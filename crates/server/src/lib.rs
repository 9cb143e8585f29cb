//! ratelab's mock OpenAI server: OpenAI-compatible endpoints whose limits, headers and 429
//! bodies come from the `quota` crate, with synthetic deterministic content, a latency model,
//! injected faults, an admin API and a manual clock.
//!
//! Use it in-process with [`MockServer::start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), ratelab_server::ServerError> {
//! let server = ratelab_server::MockServer::start(ratelab_server::ServerConfig::default()).await?;
//! // Point an OpenAI client at it: OPENAI_BASE_URL=<base_url>.
//! println!("{}", server.base_url());
//! # Ok(()) }
//! ```
//!
//! or mount [`app`], a tower service, in a router of your own:
//!
//! ```no_run
//! # fn demo() -> Result<(), ratelab_server::ConfigError> {
//! let state = ratelab_server::AppState::new(ratelab_server::ServerConfig::default())?;
//! let router: axum::Router = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .fallback_service(ratelab_server::app(state));
//! # Ok(()) }
//! ```

mod admin;
mod auth;
pub mod clock;
pub mod config;
mod connections;
mod content;
mod error;
mod extract;
pub mod faults;
mod graded_api;
pub mod grading;
mod headers;
pub mod latency;
pub mod limits;
mod metrics;
mod mock_server;
mod pipeline;
mod pricing;
mod routes;
mod sse;
mod state;
mod token_count;
pub mod tokenizer;
pub mod wire;

pub use auth::redact;
pub use clock::{Clock, ClockKind};
pub use config::{ConfigError, ConnectionLimits, HeaderSwitches, ServerConfig};
pub use content::LengthDistribution;
pub use error::ApiError;
pub use faults::{Fault, FaultConfig, FaultScript, ScriptStep};
pub use graded_api::GradedApi;
pub use grading::{Grader, Grading, KeyGrade};
pub use latency::LatencyConfig;
pub use limits::LimiterOptions;
pub use mock_server::{MockServer, ServerError};
pub use pricing::Price;
pub use routes::{MockApi, app};
pub use state::AppState;
