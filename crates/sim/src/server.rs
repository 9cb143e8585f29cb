//! The simulated server: fault windows, then the `quota` limiter, then the latency model; it
//! answers with the status, headers and error code an OpenAI-style API would send.

use std::time::Duration;

use quota::{Charge, DirectLimiter, Instant, Limits};
use rand_chacha::ChaCha8Rng;
use retry::{Headers, Outcome};
use scenario::{AttemptOutcome, Fault, HeaderPolicy, LimitKind, RequestSpec};

/// What the server answers to one attempt, before the client's timeout is applied.
#[derive(Debug)]
pub(crate) struct Response {
    /// What the strategy sees.
    pub outcome: Outcome,
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
    /// Whether to build `x-ratelimit-*` headers: only for strategies that read them.
    rate_limit_headers: bool,
    reject_latency: Duration,
}

impl SimServer {
    pub(crate) fn new(
        limits: Limits,
        faults: Vec<Fault>,
        headers: HeaderPolicy,
        strategy_reads_rate_limit_headers: bool,
        reject_latency: Duration,
    ) -> Self {
        SimServer {
            // A scenario models one organization and one model pool: a single holder.
            limiter: DirectLimiter::new(&limits),
            faults,
            headers,
            rate_limit_headers: headers.rate_limit && strategy_reads_rate_limit_headers,
            reject_latency,
        }
    }

    /// Answers an attempt sent at `now` (since the scenario start).
    pub(crate) fn handle(
        &mut self,
        now: Duration,
        request: &RequestSpec,
        fault_rng: &mut ChaCha8Rng,
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
                return Response {
                    outcome: Outcome::error(fault.status, Headers::new(), fault.code),
                    record,
                    latency: self.reject_latency,
                };
            }
        }
        let instant = Instant::from_nanos(nanos(now));
        let tokens = quota::token_charge(
            u64::from(request.prompt_tokens),
            Some(u64::from(request.max_tokens)),
            1,
        );
        match self.limiter.try_acquire(instant, Charge::request(tokens)) {
            Ok(()) => {
                let headers = if self.rate_limit_headers {
                    let statuses = self.limiter.status(instant);
                    Headers::from_pairs(quota::rate_limit_headers(&statuses))
                } else {
                    Headers::new()
                };
                Response {
                    outcome: Outcome::response(200, headers),
                    record: AttemptOutcome::Success,
                    latency: request.service_time,
                }
            }
            Err(rejection) => {
                let mut pairs = Vec::new();
                if self.rate_limit_headers {
                    pairs = quota::rate_limit_headers(&self.limiter.status(instant));
                }
                if let Some(wait) = rejection.retry_after {
                    if self.headers.retry_after {
                        pairs.push(("retry-after", quota::retry_after_seconds(wait).to_string()));
                    }
                    if self.headers.retry_after_ms {
                        pairs.push((
                            "retry-after-ms",
                            quota::retry_after_millis(wait).to_string(),
                        ));
                    }
                }
                let limit = if rejection.is_request_too_large() {
                    LimitKind::TooLarge
                } else {
                    match rejection.kind {
                        quota::LimitKind::Rpm => LimitKind::Rpm,
                        quota::LimitKind::Rpd => LimitKind::Rpd,
                        quota::LimitKind::Tpm => LimitKind::Tpm,
                        quota::LimitKind::Tpd => LimitKind::Tpd,
                        _ => LimitKind::Other,
                    }
                };
                Response {
                    outcome: Outcome::error(429, Headers::from_pairs(pairs), "rate_limit_exceeded"),
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

/// Nanoseconds of a duration, saturating (584 years of virtual time is plenty).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Strategy families known not to read `x-ratelimit-*` headers (they read at most
/// `retry-after`, `retry-after-ms` and `x-should-retry`). Building those headers is most of an
/// attempt's cost, so runs of these strategies skip it; their decisions cannot differ. Any
/// other family, including ones added to the registry later, gets the headers.
const IGNORES_RATE_LIMIT_HEADERS: [&str; 19] = [
    "none",
    "fixed",
    "exponential",
    "full-jitter",
    "equal-jitter",
    "decorrelated-jitter",
    "polly-decorrelated-jitter-v2",
    "tenacity",
    "openai-python",
    "openai-node",
    "async-openai",
    "honour-retry-after",
    "aws-retry-quota",
    "grpc-retry-throttle",
    "finagle-budget",
    "sre-adaptive-throttle",
    "token-bucket",
    "aws-adaptive",
    "circuit-breaker",
];

/// Whether `spec`, or any strategy nested in it, may read `x-ratelimit-*` headers.
pub fn reads_rate_limit_headers(spec: &retry::StrategySpec) -> bool {
    let family = spec.kind.split('@').next().unwrap_or_default();
    let known_ignorer = family == "stacked" || IGNORES_RATE_LIMIT_HEADERS.contains(&family);
    !known_ignorer
        || spec.params.values().any(|value| match value {
            retry::ParamValue::Strategy(inner) => reads_rate_limit_headers(inner),
            _ => false,
        })
}
