//! What an attempt produced ([`Outcome`]) and the small view of response headers strategies
//! read ([`Headers`]).

use std::borrow::Cow;
use std::time::Duration;

use quota::header_names::*;
use quota::{RateLimitHeaders, RateLimitWindow, header_duration, parse_duration};

/// The response headers retry strategies read, as typed values: `retry-after`,
/// `retry-after-ms`, `x-should-retry` and OpenAI's `x-ratelimit-{limit,remaining,reset}-*` for
/// requests and tokens.
///
/// Built two ways that give equal views: [`Headers::from_pairs`] parses name/value pairs, as an
/// HTTP client sees them; the `with_*` constructors take the typed values directly (quota's
/// [`RateLimitHeaders`], the value the server formats), so the simulator hands strategies the
/// same signals without formatting text only to parse it back. Each accessor returns exactly
/// what parsing the header text would give. The names are [`quota::header_names`].
///
/// Names are matched case-insensitively and the first occurrence of a name counts; unrelated
/// headers are dropped. Retry-After as an HTTP date is not supported: executors run on a clock
/// since the run's epoch with no wall time to subtract from, and ratelab's mock server (like
/// OpenAI) sends integer seconds. A date reads as absent, which is also what the official
/// clients do when the date fails to parse.
///
/// ```
/// use std::time::Duration;
/// use quota::RateLimitWindow;
/// use retry::Headers;
/// let parsed = Headers::from_pairs([
///     ("Retry-After", "2"),
///     ("x-ratelimit-limit-requests", "500"),
///     ("x-ratelimit-remaining-requests", "0"),
///     ("x-ratelimit-reset-requests", "1.146s"),
///     ("content-type", "application/json"),
/// ]);
/// assert_eq!(parsed.retry_after(), Some(Duration::from_secs(2)));
/// assert_eq!(parsed.remaining_requests(), Some(0));
/// assert_eq!(parsed.reset_requests(), Some(Duration::from_millis(1146)));
///
/// let typed = Headers::new()
///     .with_retry_after_seconds(2)
///     .with_requests(RateLimitWindow {
///         limit: 500,
///         remaining: 0,
///         reset: Duration::from_millis(1146),
///     });
/// assert_eq!(typed, parsed);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Headers {
    /// Which number fields below are present, one [`field`] bit each. Numbers are kept
    /// outside `Option` and absent ones stay zero (so derived equality holds): an `Outcome`
    /// carries a `Headers` through the simulator's hot loop, and this halves its size.
    present: u8,
    should_retry: Option<bool>,
    /// `retry-after` read as a float, when it parses to a finite number.
    retry_after_seconds: f64,
    /// `retry-after` read as an unsigned integer, when it parses as one.
    retry_after_integer_seconds: u64,
    /// `retry-after-ms`, when it parses to a finite number.
    retry_after_ms: f64,
    limit_requests: u64,
    remaining_requests: u64,
    limit_tokens: u64,
    remaining_tokens: u64,
    reset_requests: Option<Duration>,
    reset_tokens: Option<Duration>,
}

/// Floats in [`Headers`] are finite by construction (parsing filters the rest, typed values
/// come from integers), so equality is reflexive.
impl Eq for Headers {}

/// The presence bits of [`Headers::present`].
mod field {
    pub const RETRY_AFTER_SECONDS: u8 = 1;
    pub const RETRY_AFTER_INTEGER_SECONDS: u8 = 1 << 1;
    pub const RETRY_AFTER_MS: u8 = 1 << 2;
    pub const LIMIT_REQUESTS: u8 = 1 << 3;
    pub const REMAINING_REQUESTS: u8 = 1 << 4;
    pub const LIMIT_TOKENS: u8 = 1 << 5;
    pub const REMAINING_TOKENS: u8 = 1 << 6;
}

/// Stores `value` in `slot` and marks `bit` present, or leaves both untouched when absent.
fn put<T>(present: &mut u8, bit: u8, slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
        *present |= bit;
    }
}

/// The headers [`Headers::from_pairs`] keeps, in one place so parsing matches by index.
const KEPT_NAMES: [&str; 9] = [
    RETRY_AFTER,
    RETRY_AFTER_MS,
    SHOULD_RETRY,
    LIMIT_REQUESTS,
    REMAINING_REQUESTS,
    RESET_REQUESTS,
    LIMIT_TOKENS,
    REMAINING_TOKENS,
    RESET_TOKENS,
];

fn finite_float(value: &str) -> Option<f64> {
    value.parse::<f64>().ok().filter(|value| value.is_finite())
}

impl Headers {
    /// An empty header view (e.g. a 429 without any rate-limit headers).
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Parses the headers strategies read (`retry-after`, `retry-after-ms`, `x-should-retry`,
    /// `x-ratelimit-*` for requests and tokens) from name/value pairs. Names are trimmed and
    /// matched case-insensitively, values trimmed; the first pair of a name counts, and a
    /// value that does not parse reads as absent.
    pub fn from_pairs<I, N, V>(pairs: I) -> Headers
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut headers = Headers::default();
        let mut seen = [false; KEPT_NAMES.len()];
        for (name, value) in pairs {
            let name = name.as_ref().trim();
            let Some(index) = KEPT_NAMES
                .iter()
                .position(|kept| kept.eq_ignore_ascii_case(name))
            else {
                continue;
            };
            if std::mem::replace(&mut seen[index], true) {
                continue;
            }
            let value = value.as_ref().trim();
            let number = || value.parse::<u64>().ok();
            let duration = || parse_duration(value).ok();
            let present = &mut headers.present;
            match index {
                0 => {
                    put(
                        present,
                        field::RETRY_AFTER_SECONDS,
                        &mut headers.retry_after_seconds,
                        finite_float(value),
                    );
                    put(
                        present,
                        field::RETRY_AFTER_INTEGER_SECONDS,
                        &mut headers.retry_after_integer_seconds,
                        number(),
                    );
                }
                1 => put(
                    present,
                    field::RETRY_AFTER_MS,
                    &mut headers.retry_after_ms,
                    finite_float(value),
                ),
                2 => {
                    headers.should_retry = match value {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    }
                }
                3 => put(
                    present,
                    field::LIMIT_REQUESTS,
                    &mut headers.limit_requests,
                    number(),
                ),
                4 => put(
                    present,
                    field::REMAINING_REQUESTS,
                    &mut headers.remaining_requests,
                    number(),
                ),
                5 => headers.reset_requests = duration(),
                6 => put(
                    present,
                    field::LIMIT_TOKENS,
                    &mut headers.limit_tokens,
                    number(),
                ),
                7 => put(
                    present,
                    field::REMAINING_TOKENS,
                    &mut headers.remaining_tokens,
                    number(),
                ),
                _ => headers.reset_tokens = duration(),
            }
        }
        headers
    }

    /// Adds `retry-after: <seconds>` (integer seconds, as OpenAI sends it).
    pub fn with_retry_after_seconds(mut self, seconds: u64) -> Headers {
        // `u64 as f64` rounds to nearest like parsing the decimal text does.
        self.retry_after_seconds = seconds as f64;
        self.retry_after_integer_seconds = seconds;
        self.present |= field::RETRY_AFTER_SECONDS | field::RETRY_AFTER_INTEGER_SECONDS;
        self
    }

    /// Adds `retry-after-ms: <millis>` (integer milliseconds, as OpenAI sends it).
    pub fn with_retry_after_ms(mut self, millis: u64) -> Headers {
        self.retry_after_ms = millis as f64;
        self.present |= field::RETRY_AFTER_MS;
        self
    }

    /// Adds `x-should-retry: true|false`.
    pub fn with_should_retry(mut self, should_retry: bool) -> Headers {
        self.should_retry = Some(should_retry);
        self
    }

    /// Adds the `x-ratelimit-*` trios strategies read (requests and tokens; no strategy reads
    /// the project's), as a client would read them once formatted.
    #[inline]
    pub fn with_rate_limits(self, rate_limits: &RateLimitHeaders) -> Headers {
        let mut headers = self;
        if let Some(window) = rate_limits.requests {
            headers = headers.with_requests(window);
        }
        if let Some(window) = rate_limits.tokens {
            headers = headers.with_tokens(window);
        }
        headers
    }

    /// Adds the `x-ratelimit-*-requests` trio. The reset reads as its header text would: rounded
    /// up to the millisecond ([`header_duration`]).
    pub fn with_requests(mut self, window: RateLimitWindow) -> Headers {
        self.limit_requests = window.limit;
        self.remaining_requests = window.remaining;
        self.reset_requests = Some(header_duration(window.reset));
        self.present |= field::LIMIT_REQUESTS | field::REMAINING_REQUESTS;
        self
    }

    /// Adds the `x-ratelimit-*-tokens` trio, the reset rounded up as for
    /// [`Headers::with_requests`].
    pub fn with_tokens(mut self, window: RateLimitWindow) -> Headers {
        self.limit_tokens = window.limit;
        self.remaining_tokens = window.remaining;
        self.reset_tokens = Some(header_duration(window.reset));
        self.present |= field::LIMIT_TOKENS | field::REMAINING_TOKENS;
        self
    }

    fn get<T>(&self, bit: u8, value: T) -> Option<T> {
        (self.present & bit != 0).then_some(value)
    }

    /// `retry-after-ms` as float milliseconds, when it parses.
    pub fn retry_after_ms(&self) -> Option<f64> {
        self.get(field::RETRY_AFTER_MS, self.retry_after_ms)
    }

    /// `retry-after` as float seconds, when it parses as a number (not an HTTP date).
    pub fn retry_after_seconds(&self) -> Option<f64> {
        self.get(field::RETRY_AFTER_SECONDS, self.retry_after_seconds)
    }

    /// `retry-after` as integer seconds only (async-openai 0.37+ reads it this way).
    pub fn retry_after_integer_seconds(&self) -> Option<u64> {
        self.get(
            field::RETRY_AFTER_INTEGER_SECONDS,
            self.retry_after_integer_seconds,
        )
    }

    /// The server's requested wait in seconds as the official clients read it:
    /// `retry-after-ms` first, else numeric `retry-after`. May be zero or negative.
    pub fn retry_after_secs_f64(&self) -> Option<f64> {
        self.retry_after_ms()
            .map(|millis| millis / 1000.0)
            .or_else(|| self.retry_after_seconds())
    }

    /// The server's requested wait, when present and not negative.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_secs_f64()
            .filter(|seconds| *seconds >= 0.0)
            .map(crate::seconds)
    }

    /// `x-should-retry`: `Some(true)`/`Some(false)` when the server says so explicitly.
    pub fn should_retry(&self) -> Option<bool> {
        self.should_retry
    }

    /// `x-ratelimit-limit-requests`.
    pub fn limit_requests(&self) -> Option<u64> {
        self.get(field::LIMIT_REQUESTS, self.limit_requests)
    }

    /// `x-ratelimit-limit-tokens`.
    pub fn limit_tokens(&self) -> Option<u64> {
        self.get(field::LIMIT_TOKENS, self.limit_tokens)
    }

    /// `x-ratelimit-remaining-requests`.
    pub fn remaining_requests(&self) -> Option<u64> {
        self.get(field::REMAINING_REQUESTS, self.remaining_requests)
    }

    /// `x-ratelimit-remaining-tokens`.
    pub fn remaining_tokens(&self) -> Option<u64> {
        self.get(field::REMAINING_TOKENS, self.remaining_tokens)
    }

    /// `x-ratelimit-reset-requests`, a Go duration.
    pub fn reset_requests(&self) -> Option<Duration> {
        self.reset_requests
    }

    /// `x-ratelimit-reset-tokens`, a Go duration.
    pub fn reset_tokens(&self) -> Option<Duration> {
        self.reset_tokens
    }
}

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response.
    Response {
        /// The HTTP status.
        status: u16,
        /// The headers strategies read.
        headers: Headers,
        /// The error body's `code`, or its `type` when `code` is null (e.g.
        /// `insufficient_quota`, `rate_limit_exceeded`). Borrowed when static, so a simulated
        /// 429 allocates nothing.
        error_code: Option<Cow<'static, str>>,
    },
    /// The connection failed before a response arrived.
    TransportError,
    /// The attempt hit its timeout.
    Timeout,
}

impl Outcome {
    /// A response with no error code.
    pub fn response(status: u16, headers: Headers) -> Outcome {
        Outcome::Response {
            status,
            headers,
            error_code: None,
        }
    }

    /// A response whose error body carries `code`.
    pub fn error(status: u16, headers: Headers, code: impl Into<Cow<'static, str>>) -> Outcome {
        Outcome::Response {
            status,
            headers,
            error_code: Some(code.into()),
        }
    }

    /// A 200 with no headers.
    pub fn ok() -> Outcome {
        Outcome::response(200, Headers::new())
    }

    /// True for a 2xx response.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Response { status, .. } if (200..300).contains(status))
    }

    /// The HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The headers, if a response arrived.
    pub fn headers(&self) -> Option<&Headers> {
        match self {
            Outcome::Response { headers, .. } => Some(headers),
            _ => None,
        }
    }

    /// The error code, if any.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Outcome::Response { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    /// True for the billing 429 that no retry can fix.
    pub fn is_insufficient_quota(&self) -> bool {
        self.error_code() == Some("insufficient_quota")
    }

    /// True when the server pushed back on load: 429 (except `insufficient_quota`) or 503.
    /// Adaptive limiters (AWS adaptive mode, SRE throttling) react to these.
    pub fn is_throttle(&self) -> bool {
        match self {
            Outcome::Response { status, .. } => {
                (*status == 429 && !self.is_insufficient_quota()) || *status == 503
            }
            Outcome::TransportError | Outcome::Timeout => false,
        }
    }

    /// True for failures breakers and gRPC throttling count: throttles, 5xx, transport errors
    /// and timeouts.
    pub fn is_failure_signal(&self) -> bool {
        match self {
            Outcome::Response { status, .. } => self.is_throttle() || *status >= 500,
            Outcome::TransportError | Outcome::Timeout => true,
        }
    }
}
