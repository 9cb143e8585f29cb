//! Delay formulas (fixed, exponential, the AWS jitter family, Polly v8's decorrelated jitter
//! v2, tenacity's `wait_random_exponential`) and [`BackoffStrategy`], which retries with one.

use std::time::Duration;

use rand::RngCore;

use crate::{Decision, GiveUpReason, Outcome, RequestState, Strategy, seconds, unit_interval};

/// Which failures a [`BackoffStrategy`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    /// Transient failures only: 408, 409, 429 (except `insufficient_quota`), 5xx, transport
    /// errors and timeouts; `x-should-retry` overrides the status.
    Transient,
    /// Every failure, 400s and `insufficient_quota` included: what a bare tenacity
    /// `@retry(...)` does, since it retries on any exception.
    AnyFailure,
}

impl Retryable {
    /// Whether this policy retries `outcome` (never a success).
    pub fn retries(self, outcome: &Outcome) -> bool {
        if outcome.is_success() {
            return false;
        }
        match self {
            Retryable::AnyFailure => true,
            Retryable::Transient => {
                if let Some(explicit) = outcome.headers().and_then(|headers| headers.should_retry())
                {
                    return explicit;
                }
                match outcome {
                    Outcome::Response { status, .. } => {
                        !outcome.is_insufficient_quota()
                            && matches!(status, 408 | 409 | 429 | 500..)
                    }
                    Outcome::TransportError | Outcome::Timeout => true,
                }
            }
        }
    }
}

/// A delay formula. `n` below is the number of retries so far (0 before the first retry),
/// `U(a, b)` a uniform draw `a + (b - a) x u` with `u` from [`unit_interval`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// No retries at all: the first failure gives up with [`GiveUpReason::MaxAttempts`].
    Never,
    /// `delay`, every time.
    Fixed { delay: Duration },
    /// `min(cap, base x factor^n)`, no jitter.
    Exponential {
        base: Duration,
        factor: f64,
        cap: Duration,
    },
    /// AWS "full jitter": `U(0, min(cap, base x 2^n))`.
    /// Source: Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015.
    FullJitter { base: Duration, cap: Duration },
    /// AWS "equal jitter": `t = min(cap, base x 2^n)`, then `t/2 + U(0, t/2)`.
    /// Source: Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015.
    EqualJitter { base: Duration, cap: Duration },
    /// AWS "decorrelated jitter": `min(cap, U(base, previous x 3))`, `previous` starting at
    /// `base`. Source: Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog.
    DecorrelatedJitter { base: Duration, cap: Duration },
    /// Polly v8 decorrelated jitter v2 (`RetryHelper.DecorrelatedJitterBackoffV2`, formula by
    /// George Polevoy): `t = n + u`, `next = 2^t x tanh(sqrt(4 t))`,
    /// `delay = (next - prev) / 1.4 x base`, `prev = next`, capped at `max_delay`.
    /// Polly's defaults: base delay 2 s, 3 retries, no max delay.
    PollyDecorrelatedV2 {
        base: Duration,
        max_delay: Option<Duration>,
    },
    /// tenacity `wait_random_exponential(min, max, multiplier)`: `high = max(min,
    /// min(multiplier x 2^(attempt-1), max))` with `attempt` the attempts made so far, then
    /// `U(min, high)` since tenacity 9.0, `U(0, high)` before.
    TenacityRandomExponential {
        min: Duration,
        max: Duration,
        multiplier: f64,
        lower_bound_is_min: bool,
    },
}

impl Backoff {
    /// The delay before the next retry, updating the formula's memory in `request`.
    /// Returns `None` for [`Backoff::Never`].
    pub fn next_delay(
        &self,
        request: &mut RequestState,
        rng: &mut dyn RngCore,
    ) -> Option<Duration> {
        self.next_delay_from(request, rng, &[])
    }

    /// [`Backoff::next_delay`], reading `min(cap, base x factor^n)` from `grown[n]` where
    /// `grown` holds it ([`Backoff::grown_table`]) instead of computing it.
    fn next_delay_from(
        &self,
        request: &mut RequestState,
        rng: &mut dyn RngCore,
        grown: &[Duration],
    ) -> Option<Duration> {
        let retries = request.retries();
        let exponential =
            |base: Duration, factor: f64, cap: Duration| match grown.get(retries as usize) {
                Some(&delay) => delay,
                None => grown_delay(base, factor, cap, retries),
            };
        let uniform =
            |low: f64, high: f64, rng: &mut dyn RngCore| low + (high - low) * unit_interval(rng);
        Some(match *self {
            Backoff::Never => return None,
            Backoff::Fixed { delay } => delay,
            Backoff::Exponential { base, factor, cap } => exponential(base, factor, cap),
            Backoff::FullJitter { base, cap } => {
                let ceiling = exponential(base, 2.0, cap).as_secs_f64();
                seconds(uniform(0.0, ceiling, rng))
            }
            Backoff::EqualJitter { base, cap } => {
                let half = exponential(base, 2.0, cap).as_secs_f64() / 2.0;
                seconds(half + uniform(0.0, half, rng))
            }
            Backoff::DecorrelatedJitter { base, cap } => {
                let previous = request.previous_delay.unwrap_or(base).as_secs_f64();
                let drawn = uniform(base.as_secs_f64(), previous * 3.0, rng);
                seconds(drawn.min(cap.as_secs_f64()))
            }
            Backoff::PollyDecorrelatedV2 { base, max_delay } => {
                const FACTOR: f64 = 4.0;
                const SCALING_FACTOR: f64 = 1.0 / 1.4;
                let t = f64::from(retries) + unit_interval(rng);
                let next = 2f64.powf(t) * (FACTOR * t).sqrt().tanh();
                let ceiling = max_delay.unwrap_or(Duration::MAX);
                if next.is_infinite() {
                    request.formula_memory = next;
                    return Some(ceiling);
                }
                let intrinsic = next - request.formula_memory;
                request.formula_memory = next;
                seconds(intrinsic * SCALING_FACTOR * base.as_secs_f64()).min(ceiling)
            }
            Backoff::TenacityRandomExponential {
                min,
                max,
                multiplier,
                lower_bound_is_min,
            } => {
                let attempt_number = request.attempts.max(1);
                let result = multiplier * 2f64.powi((attempt_number - 1).min(1024) as i32);
                let high = min.as_secs_f64().max(result.min(max.as_secs_f64()));
                let low = if lower_bound_is_min {
                    min.as_secs_f64()
                } else {
                    0.0
                };
                seconds(uniform(low, high, rng))
            }
        })
    }

    /// `min(cap, base x factor^n)` for the first [`GROWN_TABLE_LEN`] retries of the
    /// exponential family, computed once by the same function: the strategy path then skips a
    /// `powi` and a seconds-to-`Duration` conversion per retry (46 instructions per attempt on
    /// issue 16's workload). Empty for the other formulas.
    fn grown_table(&self) -> Vec<Duration> {
        let (base, factor, cap) = match *self {
            Backoff::Exponential { base, factor, cap } => (base, factor, cap),
            Backoff::FullJitter { base, cap } | Backoff::EqualJitter { base, cap } => {
                (base, 2.0, cap)
            }
            _ => return Vec::new(),
        };
        (0..GROWN_TABLE_LEN)
            .map(|retries| grown_delay(base, factor, cap, retries))
            .collect()
    }
}

/// Retries covered by [`Backoff::grown_table`]: more than any built-in's default attempts.
const GROWN_TABLE_LEN: u32 = 16;

/// `min(cap, base x factor^n)` after `retries` retries (`n` at most 1024), as a [`Duration`].
fn grown_delay(base: Duration, factor: f64, cap: Duration, retries: u32) -> Duration {
    let grown = base.as_secs_f64() * factor.powi(retries.min(1024) as i32);
    seconds(grown.min(cap.as_secs_f64()))
}

/// Retries the failures `retryable` selects, waiting `backoff` between attempts, with no limit
/// of its own: wrap it in [`crate::Capped`] (the registry does) to bound attempts or time.
///
/// ```
/// use std::time::Duration;
/// use rand::SeedableRng;
/// use retry::{Backoff, BackoffStrategy, Decision, Headers, Outcome, RetryClient, Retryable};
///
/// let strategy = BackoffStrategy::new(
///     Backoff::Exponential { base: Duration::from_millis(100), factor: 2.0, cap: Duration::from_secs(1) },
///     Retryable::Transient,
/// );
/// let mut client = RetryClient::new(Box::new(strategy));
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut request = client.begin(Duration::ZERO, 0);
/// let busy = Outcome::response(503, Headers::new());
/// let mut delays = Vec::new();
/// for _ in 0..5 {
///     client.before_attempt(&mut request, Duration::ZERO, &mut rng);
///     if let Decision::Retry { after } = client.after_outcome(&mut request, &busy, Duration::ZERO, &mut rng) {
///         delays.push(after.as_millis());
///     }
/// }
/// assert_eq!(delays, [100, 200, 400, 800, 1000]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffStrategy {
    backoff: Backoff,
    retryable: Retryable,
    /// `backoff`'s [`Backoff::grown_table`].
    grown: Vec<Duration>,
}

impl BackoffStrategy {
    /// Retries `retryable` failures with `backoff`.
    pub fn new(backoff: Backoff, retryable: Retryable) -> BackoffStrategy {
        BackoffStrategy {
            grown: backoff.grown_table(),
            backoff,
            retryable,
        }
    }
}

impl Strategy for BackoffStrategy {
    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        _now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        if outcome.is_success() {
            return Decision::Done;
        }
        if !self.retryable.retries(outcome) {
            return Decision::GiveUp {
                reason: GiveUpReason::NotRetryable,
            };
        }
        match self.backoff.next_delay_from(request, rng, &self.grown) {
            Some(after) => Decision::Retry { after },
            None => Decision::GiveUp {
                reason: GiveUpReason::MaxAttempts,
            },
        }
    }
    /// Backoff decides only after an outcome.
    fn asks_before_attempt(&self) -> bool {
        false
    }

    /// Backoff reads `x-should-retry` at most.
    fn reads_rate_limit_headers(&self) -> bool {
        false
    }

    /// A success ends the request, and backoff keeps nothing between requests.
    fn observes_success(&self) -> bool {
        false
    }
}
