//! ratelab retry strategies: the [`Strategy`] trait, the per-request state it reads, and the
//! built-in policies people actually run against rate-limited LLM APIs.
//!
//! This crate is pure. Time is a [`Duration`] since the run's epoch, passed in by the executor
//! (a virtual clock in the simulator, a real one in the live driver); randomness is a
//! `&mut dyn RngCore` passed in (ratelab seeds one `ChaCha8Rng` per client). Nothing here reads
//! a clock, sleeps or touches a global RNG; `clippy.toml` bans those.
//!
//! # Driving one logical request
//!
//! One [`RetryClient`] per client instance holds the strategy (budgets, breakers and adaptive
//! limiters are per client); one [`RequestState`] per logical request holds the attempt history.
//!
//! ```
//! use std::time::Duration;
//! use rand::SeedableRng;
//! use retry::{Admission, Decision, Headers, Outcome, Registry, RetryClient};
//!
//! let registry = Registry::with_builtins();
//! let strategy = registry.build_str("openai-python@2.52").unwrap();
//! let mut client = RetryClient::new(strategy);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//!
//! let mut now = Duration::ZERO;
//! let mut request = client.begin(now, 100);
//! let mut http_calls = 0;
//! let result = loop {
//!     match client.before_attempt(&mut request, now, &mut rng) {
//!         Admission::Send { after } => now += after,
//!         Admission::GiveUp { reason } => break Err(reason),
//!     }
//!     http_calls += 1;
//!     // The server always answers 429 with `retry-after: 1` here.
//!     let outcome = Outcome::response(429, Headers::from_pairs([("retry-after", "1")]));
//!     match client.after_outcome(&mut request, &outcome, now, &mut rng) {
//!         Decision::Done => break Ok(()),
//!         Decision::Retry { after } => now += after,
//!         Decision::GiveUp { reason } => break Err(reason),
//!     }
//! };
//! assert_eq!(result, Err(retry::GiveUpReason::MaxAttempts));
//! assert_eq!(http_calls, 3); // max_retries = 2
//! assert_eq!(now, Duration::from_secs(2)); // slept exactly the Retry-After twice
//! ```

mod backoff;
mod breaker;
mod budget;
mod builtins;
mod official;
mod outcome;
mod pacing;
mod registry;
mod spec;
mod wrappers;

use std::fmt;
use std::time::Duration;

pub use rand::RngCore;

pub use backoff::{Backoff, BackoffStrategy, Retryable};
pub use breaker::{BreakerState, CircuitBreaker};
pub use budget::{AwsRetryQuota, FinagleBudget, GrpcThrottle, SreAdaptiveThrottle};
pub use official::{OfficialClient, OfficialClientKind};
pub use outcome::{Headers, Outcome};
pub use pacing::{AwsAdaptive, HeaderPacing, LocalTokenBucket};
pub use registry::{ParamInfo, ParamKind, Params, Registry, StrategyFactory, StrategyInfo};
pub use spec::{PACING_STRATEGIES, ParamValue, SpecError, StrategySpec};
pub use wrappers::{Capped, HonourRetryAfter, Stacked};

/// What a strategy says before an attempt is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send the attempt after this pacing delay (zero: send now). The strategy has already
    /// reserved its slot at `now + after`; the executor must not ask again for this attempt.
    Send { after: Duration },
    /// Do not send: fail the logical request fast (circuit open, client-side throttling, ...).
    GiveUp { reason: GiveUpReason },
}

impl Admission {
    /// Send immediately.
    pub const NOW: Admission = Admission::Send {
        after: Duration::ZERO,
    };
}

/// What a strategy decides after an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The outcome was a success: the logical request is finished.
    Done,
    /// Send another attempt after this delay.
    Retry { after: Duration },
    /// Stop and report the last failure to the caller.
    GiveUp { reason: GiveUpReason },
}

/// Why a strategy stopped retrying (or refused to send).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The attempt limit (or the client's `max_retries`) was reached.
    MaxAttempts,
    /// The next attempt would start after the total deadline (or the elapsed-time limit).
    Deadline,
    /// A retry budget or retry quota had no tokens left.
    BudgetExhausted,
    /// Client-side throttling rejected the request locally (Google SRE adaptive throttling).
    ClientThrottled,
    /// The circuit breaker is open.
    CircuitOpen,
    /// The outcome is not one this strategy retries (e.g. 400, `x-should-retry: false`).
    NotRetryable,
    /// The server asked for a wait longer than the strategy accepts.
    RetryAfterTooLong,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GiveUpReason::MaxAttempts => "max attempts reached",
            GiveUpReason::Deadline => "deadline exceeded",
            GiveUpReason::BudgetExhausted => "retry budget exhausted",
            GiveUpReason::ClientThrottled => "throttled client-side",
            GiveUpReason::CircuitOpen => "circuit open",
            GiveUpReason::NotRetryable => "not retryable",
            GiveUpReason::RetryAfterTooLong => "retry-after too long",
        })
    }
}

/// The attempt history of one logical request, at one layer of a strategy.
///
/// The executor gets it from [`RetryClient::begin`] and passes it back on every call;
/// [`RetryClient`] keeps the counters, strategies only read them. [`Stacked`] keeps one nested
/// state per layer in [`RequestState::layers`].
#[derive(Debug, Clone, PartialEq)]
pub struct RequestState {
    /// When the logical request (or, in a nested layer, this sequence of attempts) began.
    pub started_at: Duration,
    /// When its first attempt was sent, once one was.
    pub first_send: Option<Duration>,
    /// When its latest attempt was sent, once one was: a response's `x-ratelimit-*` headers
    /// describe the server as that attempt found it, so header pacing needs the time.
    pub last_send: Option<Duration>,
    /// Attempts sent so far, counting the one in flight.
    pub attempts: u32,
    /// The delay chosen before the latest retry (decorrelated jitter feeds on it).
    pub previous_delay: Option<Duration>,
    /// A number a formula carries between attempts (Polly's decorrelated jitter v2 `prev`).
    pub formula_memory: f64,
    /// Estimated tokens this request charges (for TPM pacing).
    pub tokens: u64,
    /// Retry-quota tokens this request holds (AWS standard mode refunds them on success).
    pub quota_tokens_held: u32,
    /// Per-layer states of stacked strategies (outer first).
    pub layers: Vec<RequestState>,
}

impl RequestState {
    /// A fresh state for a request that begins at `now` and charges `tokens` tokens.
    pub fn new(now: Duration, tokens: u64) -> RequestState {
        RequestState {
            started_at: now,
            first_send: None,
            last_send: None,
            attempts: 0,
            previous_delay: None,
            formula_memory: 0.0,
            tokens,
            quota_tokens_held: 0,
            layers: Vec::new(),
        }
    }

    /// Makes this state what [`RequestState::new`] gives, in place: an executor that keeps
    /// request slots restarts a finished request's state without dropping it and building
    /// another (the simulator did that for every request). Nested states are cleared, their
    /// memory kept.
    #[inline]
    pub fn restart(&mut self, now: Duration, tokens: u64) {
        // Every field by name, so a new one is a compile error here rather than a value carried
        // over from the last request.
        let RequestState {
            started_at,
            first_send,
            last_send,
            attempts,
            previous_delay,
            formula_memory,
            tokens: charged,
            quota_tokens_held,
            layers,
        } = self;
        *started_at = now;
        *first_send = None;
        *last_send = None;
        *attempts = 0;
        *previous_delay = None;
        *formula_memory = 0.0;
        *charged = tokens;
        *quota_tokens_held = 0;
        // Dropping nested states is a call even when there are none: only clear what is there.
        if !layers.is_empty() {
            layers.clear();
        }
    }

    /// Retries so far: attempts sent minus the first one.
    pub fn retries(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }

    /// Records that an attempt is sent at `at`.
    pub fn record_send(&mut self, at: Duration) {
        self.attempts += 1;
        self.first_send.get_or_insert(at);
        self.last_send = Some(at);
    }

    /// Records a decision, keeping the delay of a retry.
    pub fn record_decision(&mut self, decision: Decision) {
        if let Decision::Retry { after } = decision {
            self.previous_delay = Some(after);
        }
    }
}

/// A retry strategy: one object per client instance, shared by all its logical requests.
///
/// Object-safe: executors hold a `Box<dyn Strategy>`. Callers go through [`RetryClient`],
/// which keeps the [`RequestState`] counters; a strategy only reads them (wrappers pass the
/// same state to their inner strategy).
pub trait Strategy: fmt::Debug + Send {
    /// Called before each attempt: an optional pacing delay, or a fast failure.
    /// `request.attempts` does not yet count this attempt.
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let _ = (request, now, rng);
        Admission::NOW
    }

    /// Called after each outcome, successes included (budgets and limiters learn from them).
    /// `request.attempts` counts the attempt that produced `outcome`.
    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision;

    /// The timeout for one attempt, if this strategy sets one. It is fixed for the strategy's
    /// life (a configuration value, not a state): the simulator reads it once per client.
    fn attempt_timeout(&self) -> Option<Duration> {
        None
    }

    /// Whether [`Strategy::before_attempt`] may answer anything but [`Admission::NOW`].
    /// `false` promises that it always answers `NOW`, draws nothing and changes nothing, so
    /// [`RetryClient`] skips the call (a virtual call per wrapper layer, for every attempt).
    /// Fixed for the strategy's life: `RetryClient` reads it once. The default, `true`, is the
    /// safe answer for a strategy that does not say; wrappers answer for the strategies they
    /// wrap.
    fn asks_before_attempt(&self) -> bool {
        true
    }

    /// Whether decisions may depend on the `x-ratelimit-*` headers
    /// ([`Headers::remaining_requests`] and its siblings). An executor that pays to compute
    /// them (the simulator asks the limiter for every limit's status) may leave them out for a
    /// strategy that answers `false`; `retry-after`, `retry-after-ms` and `x-should-retry` are
    /// always passed. The default, `true`, is the safe answer for a strategy that does not say;
    /// wrappers answer for the strategies they wrap.
    fn reads_rate_limit_headers(&self) -> bool {
        true
    }

    /// Whether [`Strategy::after_outcome`] may do anything on a success (a 2xx) but answer
    /// [`Decision::Done`]. `false` promises that on a success it answers `Done`, draws nothing
    /// and changes nothing but the request's own state, whatever the headers and the time: no
    /// one can tell when, or whether, it heard the success. The simulator then records a
    /// success's completion when the attempt is admitted instead of scheduling it (one event
    /// fewer per success). Fixed for the strategy's life. The default, `true`, is the safe
    /// answer for a strategy that does not say (budgets, breakers and limiters learn from
    /// successes); wrappers answer for the strategies they wrap.
    fn observes_success(&self) -> bool {
        true
    }
}

/// A boxed strategy is a strategy, so [`Capped`] holds a box or a concrete strategy alike.
impl<S: Strategy + ?Sized> Strategy for Box<S> {
    #[inline]
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        (**self).before_attempt(request, now, rng)
    }

    #[inline]
    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        (**self).after_outcome(request, outcome, now, rng)
    }

    #[inline]
    fn attempt_timeout(&self) -> Option<Duration> {
        (**self).attempt_timeout()
    }

    #[inline]
    fn asks_before_attempt(&self) -> bool {
        (**self).asks_before_attempt()
    }

    #[inline]
    fn reads_rate_limit_headers(&self) -> bool {
        (**self).reads_rate_limit_headers()
    }

    #[inline]
    fn observes_success(&self) -> bool {
        (**self).observes_success()
    }
}

/// The executor-facing handle: a client's strategy plus the per-request bookkeeping.
#[derive(Debug)]
pub struct RetryClient {
    strategy: Box<dyn Strategy>,
    /// [`Strategy::asks_before_attempt`], read once.
    asks_before_attempt: bool,
}

impl RetryClient {
    /// Wraps a client's strategy.
    pub fn new(strategy: Box<dyn Strategy>) -> RetryClient {
        RetryClient {
            asks_before_attempt: strategy.asks_before_attempt(),
            strategy,
        }
    }

    /// Starts a logical request at `now` that charges `tokens` tokens.
    pub fn begin(&self, now: Duration, tokens: u64) -> RequestState {
        RequestState::new(now, tokens)
    }

    /// [`RetryClient::begin`] into an existing state (see [`RequestState::restart`]).
    #[inline]
    pub fn begin_in(&self, request: &mut RequestState, now: Duration, tokens: u64) {
        request.restart(now, tokens);
    }

    /// Asks before sending an attempt; on `Send { after }` the attempt counts as sent at
    /// `now + after`.
    pub fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let admission = if self.asks_before_attempt {
            self.strategy.before_attempt(request, now, rng)
        } else {
            Admission::NOW
        };
        if let Admission::Send { after } = admission {
            request.record_send(now + after);
        }
        admission
    }

    /// Reports the outcome of the latest attempt, observed at `now`.
    pub fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        let decision = self.strategy.after_outcome(request, outcome, now, rng);
        request.record_decision(decision);
        decision
    }

    /// The per-attempt timeout, if the strategy sets one.
    #[inline]
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.strategy.attempt_timeout()
    }

    /// Whether the strategy may read the `x-ratelimit-*` headers (see
    /// [`Strategy::reads_rate_limit_headers`]).
    pub fn reads_rate_limit_headers(&self) -> bool {
        self.strategy.reads_rate_limit_headers()
    }

    /// Whether the strategy may act on a success (see [`Strategy::observes_success`]).
    pub fn observes_success(&self) -> bool {
        self.strategy.observes_success()
    }

    /// The wrapped strategy.
    pub fn strategy_mut(&mut self) -> &mut dyn Strategy {
        self.strategy.as_mut()
    }
}

/// A uniform draw in `[0, 1)` from the top 53 bits of one `next_u64`, the same mapping as
/// rand's `StandardUniform` for `f64`; spelled out so tests can feed exact values.
pub fn unit_interval(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Seconds as a [`Duration`], saturating: negative or NaN is zero, too large is `Duration::MAX`.
pub fn seconds(value: f64) -> Duration {
    if value.is_nan() || value <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX)
    }
}
