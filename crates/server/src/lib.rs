//! ratelab's mock OpenAI server: OpenAI-compatible endpoints around the server model of the
//! `model` crate, the one the simulator runs: every request's fate (limits, faults, latency)
//! is decided by `model::ServerModel` from a `model::ServerConfig`, and this crate parses HTTP
//! around it, writes OpenAI's bytes, and adds synthetic deterministic content, an admin API
//! and a manual clock.
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
mod connections;
mod content;
mod error;
mod extract;
mod graded_api;
pub mod grading;
mod headers;
mod metrics;
mod mock_server;
mod pipeline;
mod routes;
mod sse;
mod state;
mod token_count;
pub mod tokenizer;
pub mod wire;

pub use clock::Clock;
pub use error::ApiError;
pub use graded_api::GradedApi;
pub use grading::{Grader, Grading, KeyGrade, LiveCounts};
pub use mock_server::{MockServer, ServerError};
/// The config a server starts from, and its error: the `model` crate's, the same schema as a
/// scenario's `[server]` table. Its parts (latency, faults, headers, limits ...) are `model`'s
/// types too.
pub use model::{ConfigError, ServerConfig};
pub use routes::{MockApi, app};
pub use state::AppState;
