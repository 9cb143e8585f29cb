//! Strategies that wrap others: caps on attempts and time ([`Capped`]), honouring
//! Retry-After ([`HonourRetryAfter`]) and an outer policy over an inner one ([`Stacked`]).

use std::time::Duration;

use rand::RngCore;

use crate::{
    Admission, Decision, GiveUpReason, Outcome, RequestState, Strategy, seconds, unit_interval,
};

/// Caps any strategy: at most `max_attempts` attempts, no attempt sent or scheduled after
/// `started_at + deadline`, and a per-attempt timeout (the smaller of its own and the inner's).
///
/// Generic over the strategy it caps, a boxed one by default: the registry caps a
/// [`crate::BackoffStrategy`] as one concrete value, so an outcome costs one virtual call, not
/// two.
#[derive(Debug)]
pub struct Capped<S = Box<dyn Strategy>> {
    inner: S,
    max_attempts: Option<u32>,
    deadline: Option<Duration>,
    attempt_timeout: Option<Duration>,
}

impl<S: Strategy> Capped<S> {
    /// Caps `inner`; `None` leaves a dimension uncapped.
    pub fn new(
        inner: S,
        max_attempts: Option<u32>,
        deadline: Option<Duration>,
        attempt_timeout: Option<Duration>,
    ) -> Capped<S> {
        Capped {
            inner,
            max_attempts,
            deadline,
            attempt_timeout,
        }
    }

    fn past_deadline(&self, request: &RequestState, at: Duration) -> bool {
        self.deadline
            .is_some_and(|deadline| at > request.started_at.saturating_add(deadline))
    }
}

impl<S: Strategy> Strategy for Capped<S> {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let admission = self.inner.before_attempt(request, now, rng);
        match admission {
            Admission::Send { after } if self.past_deadline(request, now + after) => {
                Admission::GiveUp {
                    reason: GiveUpReason::Deadline,
                }
            }
            _ => admission,
        }
    }

    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        let decision = self.inner.after_outcome(request, outcome, now, rng);
        let Decision::Retry { after } = decision else {
            return decision;
        };
        if self.max_attempts.is_some_and(|max| request.attempts >= max) {
            Decision::GiveUp {
                reason: GiveUpReason::MaxAttempts,
            }
        } else if self.past_deadline(request, now.saturating_add(after)) {
            Decision::GiveUp {
                reason: GiveUpReason::Deadline,
            }
        } else {
            decision
        }
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        match (self.attempt_timeout, self.inner.attempt_timeout()) {
            (Some(own), Some(inner)) => Some(own.min(inner)),
            (own, inner) => own.or(inner),
        }
    }

    /// A deadline can refuse an attempt before it is sent.
    fn asks_before_attempt(&self) -> bool {
        self.deadline.is_some() || self.inner.asks_before_attempt()
    }

    fn reads_rate_limit_headers(&self) -> bool {
        self.inner.reads_rate_limit_headers()
    }

    /// A success passes through as the inner strategy's `Done`.
    fn observes_success(&self) -> bool {
        self.inner.observes_success()
    }
}

/// Waits what the server asks (`retry-after-ms`, else numeric `retry-after`) instead of the
/// inner strategy's delay, whenever the inner strategy decides to retry.
///
/// A value over `cap` gives up with [`GiveUpReason::RetryAfterTooLong`] (or, with
/// `clamp_over_cap`, waits `cap`). `jitter` adds a positive `U(0, jitter x value)` so that
/// clients told the same Retry-After do not all return at the same instant.
#[derive(Debug)]
pub struct HonourRetryAfter {
    inner: Box<dyn Strategy>,
    cap: Duration,
    jitter: f64,
    clamp_over_cap: bool,
}

impl HonourRetryAfter {
    /// Honours Retry-After up to `cap` around `inner`, with a positive `jitter` fraction.
    pub fn new(
        inner: Box<dyn Strategy>,
        cap: Duration,
        jitter: f64,
        clamp_over_cap: bool,
    ) -> HonourRetryAfter {
        HonourRetryAfter {
            inner,
            cap,
            jitter,
            clamp_over_cap,
        }
    }
}

impl Strategy for HonourRetryAfter {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        self.inner.before_attempt(request, now, rng)
    }

    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        let decision = self.inner.after_outcome(request, outcome, now, rng);
        let Decision::Retry { .. } = decision else {
            return decision;
        };
        let Some(asked) = outcome.headers().and_then(|headers| headers.retry_after()) else {
            return decision;
        };
        let asked = if asked > self.cap {
            if !self.clamp_over_cap {
                return Decision::GiveUp {
                    reason: GiveUpReason::RetryAfterTooLong,
                };
            }
            self.cap
        } else {
            asked
        };
        // No draw without jitter, so adding the wrapper does not shift the RNG stream.
        let extra = if self.jitter > 0.0 {
            seconds(asked.as_secs_f64() * self.jitter * unit_interval(rng))
        } else {
            Duration::ZERO
        };
        Decision::Retry {
            after: asked.saturating_add(extra),
        }
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.inner.attempt_timeout()
    }

    fn asks_before_attempt(&self) -> bool {
        self.inner.asks_before_attempt()
    }

    fn reads_rate_limit_headers(&self) -> bool {
        self.inner.reads_rate_limit_headers()
    }

    /// A success passes through as the inner strategy's `Done`.
    fn observes_success(&self) -> bool {
        self.inner.observes_success()
    }
}

/// An outer policy over an inner one, as when application code wraps an SDK call that
/// retries on its own: each outer attempt runs a whole inner sequence of HTTP attempts, and the
/// outer policy decides only when the inner one gives up. tenacity `stop_after_attempt(6)`
/// around openai-python's 2 retries makes up to 6 x 3 = 18 HTTP calls per logical request.
///
/// Keeps one [`RequestState`] per layer in `request.layers` (outer, inner); the outer's
/// attempts count inner sequences.
///
/// ```
/// use std::time::Duration;
/// use rand::SeedableRng;
/// use retry::{Admission, Decision, Headers, Outcome, Registry, RetryClient};
///
/// let strategy = Registry::with_builtins()
///     .build_str("stacked:outer=(tenacity@9:max-attempts=6),inner=(openai-python@2.52)")
///     .unwrap();
/// let mut client = RetryClient::new(strategy);
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let (mut now, mut calls) = (Duration::ZERO, 0);
/// let mut request = client.begin(now, 0);
/// let overloaded = Outcome::response(503, Headers::new());
/// loop {
///     if let Admission::Send { after } = client.before_attempt(&mut request, now, &mut rng) {
///         now += after;
///     }
///     calls += 1;
///     match client.after_outcome(&mut request, &overloaded, now, &mut rng) {
///         Decision::Retry { after } => now += after,
///         _ => break,
///     }
/// }
/// assert_eq!(calls, 18);
/// ```
#[derive(Debug)]
pub struct Stacked {
    outer: Box<dyn Strategy>,
    inner: Box<dyn Strategy>,
}

impl Stacked {
    /// `outer` retries whatever `inner` gives up on.
    pub fn new(outer: Box<dyn Strategy>, inner: Box<dyn Strategy>) -> Stacked {
        Stacked { outer, inner }
    }
}

fn layer_states(request: &mut RequestState) -> (&mut RequestState, &mut RequestState) {
    if request.layers.len() != 2 {
        let fresh = RequestState::new(request.started_at, request.tokens);
        request.layers = vec![fresh.clone(), fresh];
    }
    let (outer, inner) = request.layers.split_at_mut(1);
    (&mut outer[0], &mut inner[0])
}

impl Strategy for Stacked {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let (outer_state, inner_state) = layer_states(request);
        let mut waited = Duration::ZERO;
        if inner_state.attempts == 0 {
            match self.outer.before_attempt(outer_state, now, rng) {
                Admission::Send { after } => {
                    waited = after;
                    outer_state.record_send(now + after);
                }
                give_up => return give_up,
            }
        }
        match self.inner.before_attempt(inner_state, now + waited, rng) {
            Admission::Send { after } => {
                let total = waited + after;
                inner_state.record_send(now + total);
                Admission::Send { after: total }
            }
            give_up => give_up,
        }
    }

    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        let (outer_state, inner_state) = layer_states(request);
        let inner_decision = self.inner.after_outcome(inner_state, outcome, now, rng);
        inner_state.record_decision(inner_decision);
        match inner_decision {
            Decision::Retry { .. } => inner_decision,
            Decision::Done => {
                // The outer layer sees the success too: its budgets and limiters learn from it.
                self.outer.after_outcome(outer_state, outcome, now, rng);
                Decision::Done
            }
            Decision::GiveUp { .. } => {
                let outer_decision = self.outer.after_outcome(outer_state, outcome, now, rng);
                outer_state.record_decision(outer_decision);
                if let Decision::Retry { after } = outer_decision {
                    *inner_state = RequestState::new(now + after, inner_state.tokens);
                }
                outer_decision
            }
        }
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.inner
            .attempt_timeout()
            .or(self.outer.attempt_timeout())
    }

    fn reads_rate_limit_headers(&self) -> bool {
        self.outer.reads_rate_limit_headers() || self.inner.reads_rate_limit_headers()
    }

    /// Both layers hear a success.
    fn observes_success(&self) -> bool {
        self.outer.observes_success() || self.inner.observes_success()
    }
}
