//! Retry budgets, per client: the AWS standard retry quota, gRPC retry throttling, a
//! Finagle-style percent budget and Google SRE client-side adaptive throttling.

use std::collections::VecDeque;
use std::time::Duration;

use rand::RngCore;

use crate::{Admission, Decision, GiveUpReason, Outcome, RequestState, Strategy, unit_interval};

/// Drops the instants before `horizon` from time-ordered queues: the trailing window that the
/// Finagle budget and SRE throttling both count over.
fn forget_before<const N: usize>(horizon: Duration, queues: [&mut VecDeque<Duration>; N]) {
    for queue in queues {
        while queue.front().is_some_and(|at| *at < horizon) {
            queue.pop_front();
        }
    }
}

/// Passes `before_attempt` (and whether it asks), `attempt_timeout` and
/// `reads_rate_limit_headers` through to `self.inner`.
macro_rules! delegate_before_attempt {
    () => {
        fn before_attempt(
            &mut self,
            request: &mut RequestState,
            now: Duration,
            rng: &mut dyn RngCore,
        ) -> Admission {
            self.inner.before_attempt(request, now, rng)
        }

        fn asks_before_attempt(&self) -> bool {
            self.inner.asks_before_attempt()
        }

        fn attempt_timeout(&self) -> Option<Duration> {
            self.inner.attempt_timeout()
        }

        fn reads_rate_limit_headers(&self) -> bool {
            self.inner.reads_rate_limit_headers()
        }
    };
}

const BUDGET_EXHAUSTED: Decision = Decision::GiveUp {
    reason: GiveUpReason::BudgetExhausted,
};

/// The AWS SDKs' standard-mode retry quota: a bucket of `capacity` tokens (500) shared by the
/// client; each retry takes `retry_cost` (5), or `timeout_cost` (10) after a timeout; a
/// success refunds what its request last took, or adds 1 when it needed no retry. An empty
/// quota stops retries. Source: AWS SDKs and Tools Reference Guide, "Retry behavior", standard
/// mode; botocore `retries/quota.py` and `retries/standard.py`.
#[derive(Debug)]
pub struct AwsRetryQuota {
    inner: Box<dyn Strategy>,
    capacity: u32,
    available: u32,
    retry_cost: u32,
    timeout_cost: u32,
}

impl AwsRetryQuota {
    /// A full quota of `capacity` tokens around `inner`.
    pub fn new(
        inner: Box<dyn Strategy>,
        capacity: u32,
        retry_cost: u32,
        timeout_cost: u32,
    ) -> AwsRetryQuota {
        AwsRetryQuota {
            inner,
            capacity,
            available: capacity,
            retry_cost,
            timeout_cost,
        }
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        self.available
    }
}

impl Strategy for AwsRetryQuota {
    delegate_before_attempt!();

    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        let decision = self.inner.after_outcome(request, outcome, now, rng);
        match decision {
            Decision::Done => {
                let refund = match request.quota_tokens_held {
                    0 => 1,
                    held => held,
                };
                request.quota_tokens_held = 0;
                self.available = (self.available + refund).min(self.capacity);
                decision
            }
            Decision::Retry { .. } => {
                let cost = if *outcome == Outcome::Timeout {
                    self.timeout_cost
                } else {
                    self.retry_cost
                };
                if self.available < cost {
                    return BUDGET_EXHAUSTED;
                }
                self.available -= cost;
                request.quota_tokens_held = cost;
                decision
            }
            Decision::GiveUp { .. } => decision,
        }
    }
}

/// gRPC retry throttling: a token count starting at `max_tokens`; each failure takes 1, each
/// success adds `token_ratio` (up to `max_tokens`); retries stop while the count is at or below
/// `max_tokens / 2`. Source: gRPC proposal A6 "gRPC Retry Design", retry throttling.
#[derive(Debug)]
pub struct GrpcThrottle {
    inner: Box<dyn Strategy>,
    max_tokens: f64,
    token_ratio: f64,
    tokens: f64,
}

impl GrpcThrottle {
    /// A full token count around `inner`.
    pub fn new(inner: Box<dyn Strategy>, max_tokens: f64, token_ratio: f64) -> GrpcThrottle {
        GrpcThrottle {
            inner,
            max_tokens,
            token_ratio,
            tokens: max_tokens,
        }
    }

    /// The current token count.
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

impl Strategy for GrpcThrottle {
    delegate_before_attempt!();

    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        if outcome.is_success() {
            self.tokens = (self.tokens + self.token_ratio).min(self.max_tokens);
        } else if outcome.is_failure_signal() {
            self.tokens = (self.tokens - 1.0).max(0.0);
        }
        let decision = self.inner.after_outcome(request, outcome, now, rng);
        match decision {
            Decision::Retry { .. } if self.tokens <= self.max_tokens / 2.0 => BUDGET_EXHAUSTED,
            _ => decision,
        }
    }
}

/// A Finagle-style percent budget: retries may add at most `percent` of the requests seen
/// over the last `ttl`, plus a reserve of `min_retries_per_second x ttl`. Source: Finagle
/// `RetryBudget` (defaults ttl 10 s, 10 retries per second, 20%).
#[derive(Debug)]
pub struct FinagleBudget {
    inner: Box<dyn Strategy>,
    ttl: Duration,
    min_retries_per_second: f64,
    percent: f64,
    requests: VecDeque<Duration>,
    retries: VecDeque<Duration>,
}

impl FinagleBudget {
    /// An empty budget around `inner`.
    pub fn new(
        inner: Box<dyn Strategy>,
        ttl: Duration,
        min_retries_per_second: f64,
        percent: f64,
    ) -> FinagleBudget {
        FinagleBudget {
            inner,
            ttl,
            min_retries_per_second,
            percent,
            requests: VecDeque::new(),
            retries: VecDeque::new(),
        }
    }

    /// Retries the budget allows right now (may be fractional).
    pub fn balance(&mut self, now: Duration) -> f64 {
        forget_before(
            now.saturating_sub(self.ttl),
            [&mut self.requests, &mut self.retries],
        );
        self.min_retries_per_second * self.ttl.as_secs_f64()
            + self.percent * self.requests.len() as f64
            - self.retries.len() as f64
    }
}

impl Strategy for FinagleBudget {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        if request.attempts == 0 {
            self.requests.push_back(now);
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
        let decision = self.inner.after_outcome(request, outcome, now, rng);
        if let Decision::Retry { .. } = decision {
            if self.balance(now) < 1.0 {
                return BUDGET_EXHAUSTED;
            }
            self.retries.push_back(now);
        }
        decision
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.inner.attempt_timeout()
    }

    fn reads_rate_limit_headers(&self) -> bool {
        self.inner.reads_rate_limit_headers()
    }
}

/// Google SRE client-side adaptive throttling: over the last `window` (2 min) the client counts
/// `requests` (attempts, locally rejected ones included) and `accepts` (responses that were not
/// throttles), and rejects each new attempt locally with probability
/// `max(0, (requests - k x accepts) / (requests + 1))`. Source: "Site Reliability Engineering"
/// (O'Reilly 2016), chapter 21 "Handling Overload", with `k = 2`.
#[derive(Debug)]
pub struct SreAdaptiveThrottle {
    inner: Box<dyn Strategy>,
    k: f64,
    window: Duration,
    requests: VecDeque<Duration>,
    accepts: VecDeque<Duration>,
}

impl SreAdaptiveThrottle {
    /// An empty history around `inner`.
    pub fn new(inner: Box<dyn Strategy>, k: f64, window: Duration) -> SreAdaptiveThrottle {
        SreAdaptiveThrottle {
            inner,
            k,
            window,
            requests: VecDeque::new(),
            accepts: VecDeque::new(),
        }
    }

    /// The probability that the next attempt is rejected locally.
    pub fn rejection_probability(&mut self, now: Duration) -> f64 {
        forget_before(
            now.saturating_sub(self.window),
            [&mut self.requests, &mut self.accepts],
        );
        let requests = self.requests.len() as f64;
        let accepts = self.accepts.len() as f64;
        ((requests - self.k * accepts) / (requests + 1.0)).max(0.0)
    }
}

impl Strategy for SreAdaptiveThrottle {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let probability = self.rejection_probability(now);
        self.requests.push_back(now);
        if unit_interval(rng) < probability {
            return Admission::GiveUp {
                reason: GiveUpReason::ClientThrottled,
            };
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
        if outcome.status().is_some() && !outcome.is_throttle() {
            self.accepts.push_back(now);
        }
        self.inner.after_outcome(request, outcome, now, rng)
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.inner.attempt_timeout()
    }

    fn reads_rate_limit_headers(&self) -> bool {
        self.inner.reads_rate_limit_headers()
    }
}
