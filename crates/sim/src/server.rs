//! The simulated server: fault windows, then the `quota` limiter, then the latency model; it
//! answers with the status, headers and error code an OpenAI-style API would send.

use std::time::Duration;

use quota::header_names::{RETRY_AFTER, RETRY_AFTER_MS};
use quota::{Charge, DirectLimiter, Instant, LimitStatus, Limits, RateLimitHeaders};
use rand_chacha::ChaCha8Rng;
use results::{AttemptOutcome, LimitKind};
use retry::{Headers, Outcome};
use scenario::{Fault, HeaderPolicy, RequestSpec};

/// What the server answers to one attempt, before the client's timeout is applied, besides
/// the [`Outcome`] the strategy sees (written in place: it is large, and copying it through
/// the event loop showed in profiles).
#[derive(Debug)]
pub(crate) struct Response {
    /// What the trace records.
    pub record: AttemptOutcome,
    /// How long after sending the answer arrives.
    pub latency: Duration,
}

/// One organization's server: every client instance of a scenario shares its key.
#[derive(Debug)]
pub(crate) struct SimServer {
    limiter: DirectLimiter,
    faults: Vec<Fault>,
    headers: HeaderPolicy,
    /// Whether to send `x-ratelimit-*` headers: the scenario's policy sends them and the
    /// strategy reads them (asking the limiter for its statuses is a large part of an
    /// attempt's cost).
    rate_limit_headers: bool,
    /// Format the headers as text and parse them back, as a live client would see them,
    /// instead of building the typed view directly; tests use it to check both agree.
    headers_as_text: bool,
    reject_latency: Duration,
    /// How many tokens a request is charged.
    token_charge: quota::TokenChargeRule,
}

impl SimServer {
    pub(crate) fn new(
        limits: Limits,
        faults: Vec<Fault>,
        headers: HeaderPolicy,
        strategy_reads_rate_limit_headers: bool,
        headers_as_text: bool,
        reject_latency: Duration,
        token_charge: quota::TokenChargeRule,
    ) -> Self {
        SimServer {
            // A scenario models one organization and one model pool: a single holder.
            limiter: DirectLimiter::new(&limits),
            faults,
            headers,
            rate_limit_headers: headers.rate_limit && strategy_reads_rate_limit_headers,
            headers_as_text,
            reject_latency,
            token_charge,
        }
    }

    /// The headers of an answer at `now`: `x-ratelimit-*` if the policy sends them and, for a
    /// rejection that will fit after `retry_after`, the retry headers the policy sends. A
    /// rejection passes the statuses the request found (`found`), before its own charge.
    fn response_headers(
        &mut self,
        now: Instant,
        retry_after: Option<Duration>,
        found: Option<Vec<LimitStatus>>,
    ) -> Headers {
        if retry_after.is_none() && !self.rate_limit_headers {
            return Headers::new();
        }
        let seconds = retry_after
            .filter(|_| self.headers.retry_after)
            .map(quota::retry_after_seconds);
        let millis = retry_after
            .filter(|_| self.headers.retry_after_ms)
            .map(quota::retry_after_millis);
        let statuses = match found {
            Some(found) => found,
            None if self.rate_limit_headers => self.limiter.status(now),
            None => Vec::new(),
        };
        if self.headers_as_text {
            let mut pairs = quota::rate_limit_headers(&statuses);
            pairs.extend(seconds.map(|seconds| (RETRY_AFTER, seconds.to_string())));
            pairs.extend(millis.map(|millis| (RETRY_AFTER_MS, millis.to_string())));
            return Headers::from_pairs(pairs);
        }
        let mut headers = rate_limit_view(&statuses);
        if let Some(seconds) = seconds {
            headers = headers.with_retry_after_seconds(seconds);
        }
        if let Some(millis) = millis {
            headers = headers.with_retry_after_ms(millis);
        }
        headers
    }

    /// Tokens the limiter charges for `request`, by the scenario's charge rule.
    #[inline]
    pub(crate) fn charged_tokens(&self, request: &RequestSpec) -> u64 {
        self.token_charge.tokens(&request_size(request))
    }

    /// Answers an attempt sent at `now` (since the scenario start), writing what the strategy
    /// will see into `outcome`.
    pub(crate) fn handle(
        &mut self,
        now: Duration,
        request: &RequestSpec,
        fault_rng: &mut ChaCha8Rng,
        outcome: &mut Outcome,
    ) -> Response {
        if let Some(fault) = self.faults.iter().find(|fault| fault.covers(now)) {
            // Only attempts inside a window draw, so faults never shift other draws.
            if fault.probability >= 1.0 || retry::unit_interval(fault_rng) < fault.probability {
                let record = if fault.status == 429 {
                    // Quota exhausted or "slow down": a 429, but no limit of the limiter's.
                    AttemptOutcome::RateLimited {
                        limit: LimitKind::Other,
                        retry_after_ns: None,
                    }
                } else {
                    AttemptOutcome::ServerError {
                        status: fault.status,
                    }
                };
                *outcome = Outcome::error(fault.status, Headers::new(), fault.code);
                return Response {
                    record,
                    latency: self.reject_latency,
                };
            }
        }
        let instant = Instant::from_nanos(nanos(now));
        let tokens = self.charged_tokens(request);
        let mut found = Vec::new();
        let reporting = self.rate_limit_headers.then_some(&mut found);
        match self
            .limiter
            .try_acquire_reporting(instant, Charge::request(tokens), reporting)
        {
            Ok(()) => {
                // Most successes carry no headers a strategy reads: the empty set is written
                // in place, where a copy out of `response_headers` stalled store forwarding.
                let headers = if self.rate_limit_headers {
                    self.response_headers(instant, None, None)
                } else {
                    Headers::new()
                };
                *outcome = Outcome::response(200, headers);
                Response {
                    record: AttemptOutcome::Success,
                    latency: request.service_time,
                }
            }
            Err(rejection) => {
                let found = self.rate_limit_headers.then_some(found);
                let headers = self.response_headers(instant, rejection.retry_after, found);
                let limit = if rejection.is_request_too_large() {
                    LimitKind::TooLarge
                } else {
                    // Exhaustive: a new kind of limit must be named in the trace, not
                    // counted as some other 429.
                    match rejection.kind {
                        quota::LimitKind::Rpm => LimitKind::Rpm,
                        quota::LimitKind::Rpd => LimitKind::Rpd,
                        quota::LimitKind::Tpm => LimitKind::Tpm,
                        quota::LimitKind::Tpd => LimitKind::Tpd,
                        quota::LimitKind::Ipm => LimitKind::Ipm,
                    }
                };
                *outcome = Outcome::error(429, headers, "rate_limit_exceeded");
                Response {
                    record: AttemptOutcome::RateLimited {
                        limit,
                        retry_after_ns: rejection.retry_after.map(nanos),
                    },
                    latency: self.reject_latency,
                }
            }
        }
    }
}

/// What the charge rule knows of a simulated request: its token counts, not its text, so the
/// prompt estimate is the prompt's token count.
#[inline]
pub(crate) fn request_size(request: &RequestSpec) -> quota::RequestSize {
    quota::RequestSize {
        prompt_characters: None,
        prompt_tokens: Some(u64::from(request.prompt_tokens)),
        max_output_tokens: Some(u64::from(request.max_tokens)),
        choices: 1,
    }
}

/// Nanoseconds of a duration, saturating (584 years of virtual time is plenty).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The `x-ratelimit-*` headers a client reads, as typed values equal to what parsing
/// [`quota::rate_limit_headers`] would give: quota's [`RateLimitHeaders`] (the value the mock
/// server formats), read through [`Headers::with_rate_limits`], which rounds resets up to the
/// millisecond as their text does.
#[inline]
pub fn rate_limit_view(statuses: &[LimitStatus]) -> Headers {
    Headers::new().with_rate_limits(&RateLimitHeaders::from_statuses(statuses))
}
