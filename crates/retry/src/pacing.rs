//! Client-side rate limiting that delays sends instead of collecting 429s: pacing from
//! OpenAI's `x-ratelimit-*` headers, a local token bucket at a configured RPM/TPM, and the AWS
//! SDKs' adaptive mode (a CUBIC-controlled send rate).

use std::collections::VecDeque;
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

/// Passes `after_outcome` and `attempt_timeout` through, after
/// `self.observe(request, outcome, now)`;
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
            self.observe(request, outcome, now);
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

/// Header-aware pacing: models each of OpenAI's buckets from the `x-ratelimit-remaining-*`/
/// `x-ratelimit-reset-*`/`x-ratelimit-limit-*` headers (refill rate `(limit - remaining) /
/// reset`, at most `limit / 60 s`) and delays a send until the bucket holds one request
/// and the request's tokens. Before the first headers arrive it sends at once.
///
/// It knows only what a real client reading the same headers knows: what it sent, and when, and
/// what came back. A response's headers describe the server as the attempt that got it found
/// it, so the model is anchored at that attempt's send time: `remaining`, plus the refill
/// since, minus every send this client made or reserved after it (the sends in flight and the
/// queue of paced sends). Without that correction each response would reset the debt of the
/// queued sends, and under overload every new request would wait one refill interval while the
/// queue went out as fast as it arrived. Headers older than the model's anchor are ignored: a
/// slow success can arrive after a fast 429 that was sent later. Other clients sharing the
/// organization's limits are seen only through the headers, so several of them still over-send
/// until the next response. Source: OpenAI's rate-limit guide (headers) and its cookbook
/// `api_request_parallel_processor.py` (throttle below the limits instead of retrying).
#[derive(Debug)]
pub struct HeaderPacing {
    inner: Box<dyn Strategy>,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    /// When the attempt whose headers built the models was sent.
    anchored_at: Option<Duration>,
    ledger: SendLedger,
}

impl HeaderPacing {
    /// Paces `inner` from the headers it observes.
    pub fn new(inner: Box<dyn Strategy>) -> HeaderPacing {
        HeaderPacing {
            inner,
            requests: None,
            tokens: None,
            anchored_at: None,
            ledger: SendLedger::default(),
        }
    }

    /// The bucket the headers describe at `sent_at`, refilled to `now`, less `spent_since`
    /// (what this client sent or reserved after `sent_at`).
    fn model(
        window: (Option<u64>, Option<u64>, Option<Duration>),
        sent_at: Duration,
        now: Duration,
        spent_since: f64,
    ) -> Option<Bucket> {
        let (remaining, limit, reset) = window;
        let remaining = remaining? as f64;
        let limit = limit.map(|limit| limit as f64);
        let capacity = limit.unwrap_or(remaining).max(remaining).max(1.0);
        let rate_per_second = match (limit, reset) {
            // `remaining` is rounded down, so when few units are missing this overestimates
            // the refill (59.5 left of 60 reads as 59, refilling one in 0.5 s); OpenAI's limits
            // are per minute or per day, so no refill is faster than `limit / 60 s`.
            (Some(limit), Some(reset)) if limit > remaining && !reset.is_zero() => {
                ((limit - remaining) / reset.as_secs_f64()).min(limit / 60.0)
            }
            (Some(limit), _) => limit / 60.0,
            (None, Some(reset)) if !reset.is_zero() => 1.0 / reset.as_secs_f64(),
            (None, _) => 0.0,
        };
        let mut bucket = Bucket {
            capacity,
            rate_per_second,
            level: remaining,
            at: sent_at,
        };
        // Refilled first, then charged: the bucket cannot have held more than its capacity
        // at any moment, so this never credits more than the server could have.
        bucket.refill(now);
        bucket.level -= spent_since;
        Some(bucket)
    }

    /// Its model comes from the `x-ratelimit-*` headers.
    fn reads_own_headers(&self) -> bool {
        true
    }

    fn observe(&mut self, request: &RequestState, outcome: &Outcome, now: Duration) {
        let sent_at = request.last_send.unwrap_or(now).min(now);
        let (requests_since, tokens_since) = self.ledger.settle(sent_at, request.tokens, now);
        let Some(headers) = outcome.headers() else {
            return;
        };
        if self.anchored_at.is_some_and(|anchor| sent_at < anchor) {
            return;
        }
        let requests = Self::model(
            (
                headers.remaining_requests(),
                headers.limit_requests(),
                headers.reset_requests(),
            ),
            sent_at,
            now,
            requests_since,
        );
        let tokens = Self::model(
            (
                headers.remaining_tokens(),
                headers.limit_tokens(),
                headers.reset_tokens(),
            ),
            sent_at,
            now,
            tokens_since,
        );
        if requests.is_some() || tokens.is_some() {
            self.anchored_at = Some(sent_at);
        }
        if let Some(bucket) = requests {
            self.requests = Some(bucket);
        }
        if let Some(bucket) = tokens {
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
        let before = (self.requests, self.tokens);
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
        match paced(self.inner.as_mut(), wait, request, now, rng) {
            Admission::Send { after } => {
                self.ledger.record(now + after, request.tokens);
                Admission::Send { after }
            }
            give_up => {
                // Nothing is sent: the reservation goes back.
                (self.requests, self.tokens) = before;
                give_up
            }
        }
    }

    observe_then_delegate!();
}

/// The sends a client made or reserved and has not heard back from all of, so a response's
/// headers can be corrected for the sends that followed the attempt that got them.
#[derive(Debug, Default)]
struct SendLedger {
    /// The sends from the oldest unanswered one on, in order of send time.
    sends: VecDeque<Sent>,
    /// The sums over `sends`.
    total_requests: u64,
    total_tokens: u64,
}

/// One send in the ledger.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Duration,
    tokens: u64,
    /// Its outcome has not arrived: the oldest such send bounds what the ledger keeps.
    unanswered: bool,
}

impl SendLedger {
    /// An outcome that never arrives (an executor that stops) must not pin the ledger forever;
    /// no attempt is answered later than this.
    const HORIZON: Duration = Duration::from_secs(3600);

    fn record(&mut self, at: Duration, tokens: u64) {
        // Sends are reserved nearly in time order; search from the back.
        let index = self.sends.len()
            - self
                .sends
                .iter()
                .rev()
                .take_while(|sent| sent.at > at)
                .count();
        let sent = Sent {
            at,
            tokens,
            unanswered: true,
        };
        self.sends.insert(index, sent);
        self.total_requests += 1;
        self.total_tokens = self.total_tokens.saturating_add(tokens);
    }

    /// The outcome of the attempt sent at `sent_at` (charging `tokens`) arrived at `now`: returns
    /// the requests and tokens of the other sends at or after `sent_at`, which the server had
    /// not seen when it answered, and forgets what no unanswered attempt needs.
    fn settle(&mut self, sent_at: Duration, tokens: u64, now: Duration) -> (f64, f64) {
        let (mut earlier_requests, mut earlier_tokens) = (0u64, 0u64);
        for sent in &self.sends {
            if sent.at >= sent_at {
                break;
            }
            earlier_requests += 1;
            earlier_tokens = earlier_tokens.saturating_add(sent.tokens);
        }
        let mut requests = self.total_requests - earlier_requests;
        let mut spent_tokens = self.total_tokens.saturating_sub(earlier_tokens);
        // This attempt's own send: one still unanswered at `sent_at` (sends at one instant are
        // alike; which of them is answered does not matter).
        let own = self
            .sends
            .iter_mut()
            .skip(earlier_requests as usize)
            .take_while(|sent| sent.at == sent_at)
            .find(|sent| sent.unanswered);
        if let Some(own) = own {
            // Its send is in the ledger; the headers already count it (or, for a rejection,
            // it cost nothing).
            own.unanswered = false;
            requests = requests.saturating_sub(1);
            spent_tokens = spent_tokens.saturating_sub(tokens);
        }
        // Unanswered sends older than the horizon count as answered: the oldest newer one
        // bounds what is kept.
        let stale = now.saturating_sub(Self::HORIZON);
        let keep_from = self
            .sends
            .iter()
            .find(|sent| sent.unanswered && sent.at >= stale)
            .map_or(Duration::MAX, |sent| sent.at);
        while let Some(&sent) = self.sends.front() {
            if sent.at >= keep_from {
                break;
            }
            self.sends.pop_front();
            self.total_requests -= 1;
            self.total_tokens = self.total_tokens.saturating_sub(sent.tokens);
        }
        (requests as f64, spent_tokens as f64)
    }
}

/// A local token bucket per client at a configured RPM and/or TPM, each refilling
/// continuously (`limit / 60 s`) up to `burst` (default: the whole limit, as OpenAI's own
/// bucket). Source: the token-bucket model of OpenAI's limiter (docs/limits.md, "The bucket"),
/// as in governor's GCRA.
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

    fn observe(&mut self, _request: &RequestState, _outcome: &Outcome, _now: Duration) {}
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
/// the send rate (responses counted in half-second buckets, smoothing 0.8), never above twice
/// the measured rate nor below 0.5 requests a second. Source: AWS SDKs and Tools Reference
/// Guide, "Retry behavior", adaptive mode; botocore `retries/adaptive.py`,
/// `retries/throttling.py`, `retries/bucket.py`.
///
/// # Where ratelab deviates, and why
///
/// botocore's requests wait in the bucket on a condition variable and are woken whenever the
/// rate changes, so a queue drains at the rate of the moment. ratelab's executors take a
/// pacing delay as final, so a request's send time is fixed when it joins the queue, at the
/// rate of that moment. Followed literally, that breaks the recovery: botocore's waiting
/// requests take each token as it refills, so its responses come back at the fill rate and
/// the rate can double at each update (`min(new_rate, 2 x measured)`); here the responses echo
/// the rate at which they were queued. After a cut to the minimum, sends queued at 0.5/s held
/// the measured rate near 0.5/s for as long as that queue lasted, the fill rate stayed near
/// 1/s, and a queue filled at a few requests a second never drained. So while reservations
/// are pending, the measured rate is taken as at least the fill rate, which is what botocore
/// would measure. What remains different: a request queued while the rate was low keeps its
/// late send time when the rate recovers (botocore would wake it early); only the requests
/// queued after the recovery benefit.
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
    /// Send times of the reservations not yet sent, in order.
    reserved: VecDeque<Duration>,
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
            reserved: VecDeque::new(),
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

    /// Forgets reservations already sent at `now`; true when some are still queued.
    fn has_queue(&mut self, now: Duration) -> bool {
        while self.reserved.front().is_some_and(|at| *at <= now) {
            self.reserved.pop_front();
        }
        !self.reserved.is_empty()
    }

    fn observe(&mut self, _request: &RequestState, outcome: &Outcome, now: Duration) {
        let queued = self.has_queue(now);
        let now_seconds = now.as_secs_f64();
        self.update_measured_rate(now_seconds);
        // See the type's documentation: with a queue, botocore measures the fill rate.
        let measured = if self.enabled && queued {
            self.measured_rate.max(self.fill_rate)
        } else {
            self.measured_rate
        };
        let calculated = if outcome.is_throttle() {
            let rate_to_use = if self.enabled {
                measured.min(self.fill_rate)
            } else {
                measured
            };
            self.last_max_rate = rate_to_use;
            self.time_window =
                (self.last_max_rate * (1.0 - Self::BETA) / Self::SCALE_CONSTANT).cbrt();
            self.last_throttle_time = now_seconds;
            self.enabled = true;
            rate_to_use * Self::BETA
        } else {
            let elapsed = now_seconds - self.last_throttle_time;
            Self::SCALE_CONSTANT * (elapsed - self.time_window).powi(3) + self.last_max_rate
        };
        self.update_rate(calculated.min(2.0 * measured), now_seconds);
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
        let admission = paced(self.inner.as_mut(), wait, request, now, rng);
        if self.enabled && matches!(admission, Admission::GiveUp { .. }) {
            // Nothing is sent: the token goes back.
            self.current_capacity += 1.0;
        }
        if let Admission::Send { after } = admission
            && !after.is_zero()
        {
            let at = now + after;
            // Reservations are made nearly in time order; search from the back.
            let index = self.reserved.len()
                - self
                    .reserved
                    .iter()
                    .rev()
                    .take_while(|reserved| **reserved > at)
                    .count();
            self.reserved.insert(index, at);
        }
        admission
    }

    observe_then_delegate!();
}
