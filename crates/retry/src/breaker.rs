//! A circuit breaker per client: closed, open (fail fast), half-open (one probe).

use std::time::Duration;

use rand::RngCore;

use crate::{Admission, Decision, GiveUpReason, Outcome, RequestState, Strategy};

/// Where a [`CircuitBreaker`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows; counts consecutive failures.
    Closed { consecutive_failures: u32 },
    /// Every attempt fails fast until `until`.
    Open { until: Duration },
    /// One probe may go; its outcome closes or reopens the breaker.
    HalfOpen { probe_in_flight: bool },
}

/// A consecutive-failure circuit breaker around `inner`: `failure_threshold` failures in a row
/// (throttles, 5xx, transport errors, timeouts) open it for `open_for`; then one probe is let
/// through (half-open): a non-failure closes it, a failure reopens it. A retry that would land
/// while it is open gives up at once. Source: Michael Nygard, "Release It!" (2007), and Martin
/// Fowler, "CircuitBreaker" (2014); the 5 s break matches Polly v8's `BreakDuration` default.
///
/// ```
/// use std::time::Duration;
/// use rand::SeedableRng;
/// use retry::{Admission, Backoff, BackoffStrategy, BreakerState, CircuitBreaker, Headers, Outcome,
///     RetryClient, Retryable, GiveUpReason};
///
/// let inner = BackoffStrategy::new(Backoff::Never, Retryable::Transient);
/// let mut client = RetryClient::new(Box::new(CircuitBreaker::new(Box::new(inner), 2, Duration::from_secs(5))));
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// for _ in 0..2 {
///     let mut request = client.begin(Duration::ZERO, 0);
///     client.before_attempt(&mut request, Duration::ZERO, &mut rng);
///     client.after_outcome(&mut request, &Outcome::response(503, Headers::new()), Duration::ZERO, &mut rng);
/// }
/// let mut request = client.begin(Duration::from_secs(1), 0);
/// assert_eq!(
///     client.before_attempt(&mut request, Duration::from_secs(1), &mut rng),
///     Admission::GiveUp { reason: GiveUpReason::CircuitOpen },
/// );
/// ```
#[derive(Debug)]
pub struct CircuitBreaker {
    inner: Box<dyn Strategy>,
    failure_threshold: u32,
    open_for: Duration,
    state: BreakerState,
}

impl CircuitBreaker {
    /// A closed breaker around `inner`.
    pub fn new(inner: Box<dyn Strategy>, failure_threshold: u32, open_for: Duration) -> Self {
        CircuitBreaker {
            inner,
            failure_threshold: failure_threshold.max(1),
            open_for,
            state: BreakerState::Closed {
                consecutive_failures: 0,
            },
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }
}

const OPEN: Admission = Admission::GiveUp {
    reason: GiveUpReason::CircuitOpen,
};

impl Strategy for CircuitBreaker {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        match self.state {
            BreakerState::Closed { .. } => {}
            BreakerState::Open { until } if now < until => return OPEN,
            BreakerState::Open { .. }
            | BreakerState::HalfOpen {
                probe_in_flight: false,
            } => {
                self.state = BreakerState::HalfOpen {
                    probe_in_flight: true,
                };
            }
            BreakerState::HalfOpen {
                probe_in_flight: true,
            } => return OPEN,
        }
        self.inner.before_attempt(request, now, rng)
    }

    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        let failed = outcome.is_failure_signal();
        self.state = match (self.state, failed) {
            (BreakerState::Closed { .. }, false) | (BreakerState::HalfOpen { .. }, false) => {
                BreakerState::Closed {
                    consecutive_failures: 0,
                }
            }
            (
                BreakerState::Closed {
                    consecutive_failures,
                },
                true,
            ) if consecutive_failures + 1 < self.failure_threshold => BreakerState::Closed {
                consecutive_failures: consecutive_failures + 1,
            },
            (BreakerState::Closed { .. }, true) | (BreakerState::HalfOpen { .. }, true) => {
                BreakerState::Open {
                    until: now + self.open_for,
                }
            }
            // Late outcomes of attempts sent before the breaker opened change nothing.
            (open @ BreakerState::Open { .. }, _) => open,
        };
        let decision = self.inner.after_outcome(request, outcome, now, rng);
        match (decision, self.state) {
            (Decision::Retry { after }, BreakerState::Open { until }) if now + after < until => {
                Decision::GiveUp {
                    reason: GiveUpReason::CircuitOpen,
                }
            }
            _ => decision,
        }
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.inner.attempt_timeout()
    }

    fn reads_rate_limit_headers(&self) -> bool {
        self.inner.reads_rate_limit_headers()
    }
}
