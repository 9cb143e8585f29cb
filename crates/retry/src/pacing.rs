//! Client-side rate limiting that delays sends instead of collecting 429s: pacing from
//! OpenAI's `x-ratelimit-*` headers, a local token bucket at a configured RPM/TPM, and the AWS
//! SDKs' adaptive mode (a CUBIC-controlled send rate).

use std::time::Duration;

use rand::RngCore;

use crate::{Admission, Decision, Outcome, RequestState, Strategy, seconds};

/// A continuously refilling bucket that hands out reservations: the level may go negative,
/// and a reservation waits until the level it needs has refilled.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    capacity: f64,
    rate_per_second: f64,
    level: f64,
    at: Duration,
}

impl Bucket {
    fn full(capacity: f64, rate_per_second: f64, at: Duration) -> Bucket {
        Bucket {
            capacity,
            rate_per_second,
            level: capacity,
            at,
        }
    }

    fn refill(&mut self, now: Duration) {
        if now > self.at {
            let gained = (now - self.at).as_secs_f64() * self.rate_per_second;
            self.level = (self.level + gained).min(self.capacity);
            self.at = now;
        }
    }

    /// Reserves `cost` at `now`; returns how long to wait before using it.
    fn reserve(&mut self, now: Duration, cost: f64) -> Duration {
        self.refill(now);
        let wait = if self.level >= cost || self.rate_per_second <= 0.0 {
            Duration::ZERO
        } else {
            seconds((cost - self.level) / self.rate_per_second)
        };
        self.level -= cost;
        wait
    }
}

/// Passes `after_outcome` and `attempt_timeout` through, after `self.observe(outcome, now)`;
/// reads the rate-limit headers when `self.reads_own_headers()` or the inner strategy does.
macro_rules! observe_then_delegate {
    () => {
        fn after_outcome(
            &mut self,
            request: &mut RequestState,
            outcome: &Outcome,
            now: Duration,
            rng: &mut dyn RngCore,
        ) -> Decision {
            self.observe(outcome, now);
            self.inner.after_outcome(request, outcome, now, rng)
        }

        fn attempt_timeout(&self) -> Option<Duration> {
            self.inner.attempt_timeout()
        }

        fn reads_rate_limit_headers(&self) -> bool {
            self.reads_own_headers() || self.inner.reads_rate_limit_headers()
        }
    };
}

fn paced(
    inner: &mut dyn Strategy,
    wait: Duration,
    request: &mut RequestState,
    now: Duration,
    rng: &mut dyn RngCore,
) -> Admission {
    match inner.before_attempt(request, now + wait, rng) {
        Admission::Send { after } => Admission::Send {
            after: wait + after,
        },
        give_up => give_up,
    }
}

/// Header-aware pacing: models each of OpenAI's buckets from the latest
/// `x-ratelimit-remaining-*`/`x-ratelimit-reset-*`/`x-ratelimit-limit-*` headers (level =
/// remaining, refill rate = `(limit - remaining) / reset`, or `limit / 60 s` when full) and
/// delays a send until the bucket holds one request and the request's tokens. Before the first
/// headers arrive it sends at once. Each response's headers replace the model, so sends still in
/// flight when a response arrives are forgotten: with high concurrency it over-sends slightly,
/// as a real client reading the same headers would. Source: OpenAI's rate-limit guide (headers) and its cookbook
/// `api_request_parallel_processor.py` (throttle below the limits instead of retrying).
#[derive(Debug)]
pub struct HeaderPacing {
    inner: Box<dyn Strategy>,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl HeaderPacing {
    /// Paces `inner` from the headers it observes.
    pub fn new(inner: Box<dyn Strategy>) -> HeaderPacing {
        HeaderPacing {
            inner,
            requests: None,
            tokens: None,
        }
    }

    fn model(
        remaining: Option<u64>,
        limit: Option<u64>,
        reset: Option<Duration>,
        now: Duration,
    ) -> Option<Bucket> {
        let remaining = remaining? as f64;
        let limit = limit.map(|limit| limit as f64);
        let capacity = limit.unwrap_or(remaining).max(remaining).max(1.0);
        let rate_per_second = match (limit, reset) {
            (Some(limit), Some(reset)) if limit > remaining && !reset.is_zero() => {
                (limit - remaining) / reset.as_secs_f64()
            }
            (Some(limit), _) => limit / 60.0,
            (None, Some(reset)) if !reset.is_zero() => 1.0 / reset.as_secs_f64(),
            (None, _) => 0.0,
        };
        Some(Bucket {
            capacity,
            rate_per_second,
            level: remaining,
            at: now,
        })
    }

    /// Its model comes from the `x-ratelimit-*` headers.
    fn reads_own_headers(&self) -> bool {
        true
    }

    fn observe(&mut self, outcome: &Outcome, now: Duration) {
        let Some(headers) = outcome.headers() else {
            return;
        };
        if let Some(bucket) = Self::model(
            headers.remaining_requests(),
            headers.limit_requests(),
            headers.reset_requests(),
            now,
        ) {
            self.requests = Some(bucket);
        }
        if let Some(bucket) = Self::model(
            headers.remaining_tokens(),
            headers.limit_tokens(),
            headers.reset_tokens(),
            now,
        ) {
            self.tokens = Some(bucket);
        }
    }
}

impl Strategy for HeaderPacing {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let for_requests = self
            .requests
            .as_mut()
            .map(|bucket| bucket.reserve(now, 1.0));
        let for_tokens = self
            .tokens
            .as_mut()
            .map(|bucket| bucket.reserve(now, request.tokens as f64));
        let wait = for_requests
            .unwrap_or_default()
            .max(for_tokens.unwrap_or_default());
        paced(self.inner.as_mut(), wait, request, now, rng)
    }

    observe_then_delegate!();
}

/// A local token bucket per client at a configured RPM and/or TPM, each refilling
/// continuously (`limit / 60 s`) up to `burst` (default: the whole limit, as OpenAI's own
/// bucket). Source: the token-bucket model OpenAI's limiter follows (ratelab's shared notes,
/// section 2), as in governor's GCRA.
#[derive(Debug)]
pub struct LocalTokenBucket {
    inner: Box<dyn Strategy>,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl LocalTokenBucket {
    /// Full buckets at `rpm` requests and `tpm` tokens per minute, with bursts of the given
    /// sizes (`None`: the whole per-minute limit).
    pub fn new(
        inner: Box<dyn Strategy>,
        rpm: Option<f64>,
        tpm: Option<f64>,
        request_burst: Option<f64>,
        token_burst: Option<f64>,
    ) -> LocalTokenBucket {
        let bucket = |limit: f64, burst: Option<f64>| {
            Bucket::full(
                burst.unwrap_or(limit).max(1.0),
                limit / 60.0,
                Duration::ZERO,
            )
        };
        LocalTokenBucket {
            inner,
            requests: rpm.map(|rpm| bucket(rpm, request_burst)),
            tokens: tpm.map(|tpm| bucket(tpm, token_burst)),
        }
    }

    /// It learns from statuses and its own clock, never from `x-ratelimit-*` headers.
    fn reads_own_headers(&self) -> bool {
        false
    }

    fn observe(&mut self, _outcome: &Outcome, _now: Duration) {}
}

impl Strategy for LocalTokenBucket {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let for_requests = self
            .requests
            .as_mut()
            .map(|bucket| bucket.reserve(now, 1.0));
        let for_tokens = self.tokens.as_mut().map(|bucket| {
            // A request larger than the whole bucket would wait forever; let it through at the
            // refill pace and let the server reject it, as OpenAI does.
            let cost = (request.tokens as f64).min(bucket.capacity);
            bucket.reserve(now, cost)
        });
        let wait = for_requests
            .unwrap_or_default()
            .max(for_tokens.unwrap_or_default());
        paced(self.inner.as_mut(), wait, request, now, rng)
    }

    observe_then_delegate!();
}

/// The AWS SDKs' adaptive retry mode: a client-side token bucket, enabled at the first
/// throttle, whose fill rate follows CUBIC (`beta = 0.7`, `C = 0.4`) from a smoothed measure of
/// the send rate. Source: AWS SDKs and Tools Reference Guide, "Retry behavior", adaptive mode;
/// botocore `retries/adaptive.py`, `retries/cubic.py`, `retries/bucket.py`.
#[derive(Debug)]
pub struct AwsAdaptive {
    inner: Box<dyn Strategy>,
    enabled: bool,
    fill_rate: f64,
    max_capacity: f64,
    current_capacity: f64,
    last_refill: f64,
    measured_rate: f64,
    request_count: f64,
    last_rate_bucket: f64,
    last_max_rate: f64,
    last_throttle_time: f64,
    time_window: f64,
}

impl AwsAdaptive {
    const BETA: f64 = 0.7;
    const SCALE_CONSTANT: f64 = 0.4;
    const SMOOTH: f64 = 0.8;
    const MIN_FILL_RATE: f64 = 0.5;
    const MIN_CAPACITY: f64 = 1.0;

    /// A disabled limiter around `inner` (it turns on at the first throttle).
    pub fn new(inner: Box<dyn Strategy>) -> AwsAdaptive {
        AwsAdaptive {
            inner,
            enabled: false,
            fill_rate: Self::MIN_FILL_RATE,
            max_capacity: Self::MIN_CAPACITY,
            current_capacity: 0.0,
            last_refill: 0.0,
            measured_rate: 0.0,
            request_count: 0.0,
            last_rate_bucket: 0.0,
            last_max_rate: 0.0,
            last_throttle_time: 0.0,
            time_window: 0.0,
        }
    }

    /// The current send rate limit in requests per second, once enabled.
    pub fn fill_rate(&self) -> Option<f64> {
        self.enabled.then_some(self.fill_rate)
    }

    /// The smoothed measured send rate.
    pub fn measured_rate(&self) -> f64 {
        self.measured_rate
    }

    fn refill(&mut self, now: f64) {
        let gained = (now - self.last_refill).max(0.0) * self.fill_rate;
        self.current_capacity = (self.current_capacity + gained).min(self.max_capacity);
        self.last_refill = now;
    }

    fn update_rate(&mut self, new_rate: f64, now: f64) {
        self.refill(now);
        self.fill_rate = new_rate.max(Self::MIN_FILL_RATE);
        self.max_capacity = new_rate.max(Self::MIN_CAPACITY);
        self.current_capacity = self.current_capacity.min(self.max_capacity);
    }

    fn update_measured_rate(&mut self, now: f64) {
        let bucket = (now * 2.0).floor() / 2.0;
        self.request_count += 1.0;
        if bucket > self.last_rate_bucket {
            let current = self.request_count / (bucket - self.last_rate_bucket);
            self.measured_rate = current * Self::SMOOTH + self.measured_rate * (1.0 - Self::SMOOTH);
            self.request_count = 0.0;
            self.last_rate_bucket = bucket;
        }
    }

    /// It learns from statuses and its own clock, never from `x-ratelimit-*` headers.
    fn reads_own_headers(&self) -> bool {
        false
    }

    fn observe(&mut self, outcome: &Outcome, now: Duration) {
        let now = now.as_secs_f64();
        self.update_measured_rate(now);
        let calculated = if outcome.is_throttle() {
            let rate_to_use = if self.enabled {
                self.measured_rate.min(self.fill_rate)
            } else {
                self.measured_rate
            };
            self.last_max_rate = rate_to_use;
            self.time_window =
                (self.last_max_rate * (1.0 - Self::BETA) / Self::SCALE_CONSTANT).cbrt();
            self.last_throttle_time = now;
            self.enabled = true;
            rate_to_use * Self::BETA
        } else {
            let elapsed = now - self.last_throttle_time;
            Self::SCALE_CONSTANT * (elapsed - self.time_window).powi(3) + self.last_max_rate
        };
        self.update_rate(calculated.min(2.0 * self.measured_rate), now);
    }
}

impl Strategy for AwsAdaptive {
    fn before_attempt(
        &mut self,
        request: &mut RequestState,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Admission {
        let mut wait = Duration::ZERO;
        if self.enabled {
            self.refill(now.as_secs_f64());
            if self.current_capacity < 1.0 {
                wait = seconds((1.0 - self.current_capacity) / self.fill_rate);
            }
            self.current_capacity -= 1.0;
        }
        paced(self.inner.as_mut(), wait, request, now, rng)
    }

    observe_then_delegate!();
}
