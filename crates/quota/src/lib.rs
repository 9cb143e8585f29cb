//! ratelab's limiter model: OpenAI-exact rate limits as a pure function of time.
//!
//! The mock server and the simulator share this crate, so a simulated hour and a live run
//! agree. Nothing here reads a clock, sleeps, spawns or does I/O: `now` is an [`Instant`]
//! passed in, and a rejection is a [`Rejection`] value saying which limit refused and exactly
//! when the request would fit.
//!
//! The pieces, in the order a request meets them:
//! - [`Catalog`]: tiers and per-model limits ([`Catalog::builtin`], user overrides);
//! - [`LimitSet`] (serde config: limits, [`Algorithm`], quantization, [`RejectedRequests`]),
//!   compiled into [`Limits`];
//! - [`TokenChargeRule`] / [`RequestSize`] / [`Charge::request`]: what a request costs;
//! - [`Limiter`]: keyed state, atomic checks over organization and project [`ScopedKey`]s;
//!   [`SlotLimiter`] the same checks over numbered holders ([`HolderSlot`]), for an owner that
//!   resolves its holders once;
//! - [`RateLimitHeaders`], [`rate_limit_headers`], [`retry_headers`], [`ErrorBody`]: what
//!   OpenAI sends back, under the names of [`header_names`];
//! - [`parse_duration`]: the one duration grammar (Go's plus days), for files, specs and
//!   headers alike.
//!
//! ```
//! use quota::{Catalog, Charge, Instant, Limiter, Scope, ScopedKey};
//!
//! let catalog = Catalog::builtin();
//! let limits = catalog.limits("tier-1", "gpt-4o").unwrap().limit_set().compile().unwrap();
//! let mut limiter = Limiter::new();
//! let key = ("org-1", "gpt-4o");
//! let scopes = [ScopedKey { scope: Scope::Organization, key: &key, limits: &limits }];
//!
//! let admitted = limiter.decide(Instant::ZERO, Charge::request(4), &scopes).unwrap();
//! let headers = quota::rate_limit_headers(&admitted.statuses);
//! assert!(headers.contains(&("x-ratelimit-remaining-tokens", "29996".to_owned())));
//! assert!(headers.contains(&("x-ratelimit-reset-tokens", "8ms".to_owned())));
//! ```

mod admission;
mod algorithm;
mod catalog;
mod charge;
mod duration;
mod error_body;
mod go_duration;
mod headers;
mod key_state;
mod limiter;
mod limits;
mod slots;
mod store;
mod time;
mod token_bucket;

pub use catalog::{
    BUILTIN_CATALOG_TOML, Catalog, CatalogError, CatalogOverrides, ModelEntry, ModelKind,
    ModelLimits, TierInfo,
};
pub use charge::{RequestSize, TokenChargeRule};
pub use duration::{DurationError, format_duration, parse_duration};
pub use error_body::{ErrorBody, ErrorDetail};
pub use go_duration::{format_go_duration, header_duration};
pub use headers::{
    Header, RateLimitHeaders, RateLimitWindow, header_names, rate_limit_headers,
    retry_after_millis, retry_after_seconds, retry_headers, write_rate_limit_headers,
};
pub use limiter::{Admitted, Decision, LimitStatus, Limiter, Rejected, Rejection, ScopedKey};
pub use limits::{
    Algorithm, Charge, LimitConfigError, LimitKind, LimitRule, LimitSet, Limits, RejectedRequests,
    Scope, Unit,
};
pub use slots::{DirectLimiter, HolderSlot, SlotLimiter};
pub use time::Instant;
