//! What an attempt produced ([`Outcome`]) and the small view of response headers strategies
//! read ([`Headers`]).

use std::time::Duration;

use crate::duration::parse_go_duration;

/// The response headers retry strategies read, kept from any list of name/value pairs.
///
/// Names are matched case-insensitively; unrelated headers are dropped. Retry-After as an HTTP
/// date is not supported: executors run on a clock since the run's epoch with no wall time to
/// subtract from, and ratelab's mock server (like OpenAI) sends integer seconds. A date reads
/// as absent, which is also what the official clients do when the date fails to parse.
///
/// ```
/// use std::time::Duration;
/// use retry::Headers;
/// let headers = Headers::from_pairs([
///     ("Retry-After", "2"),
///     ("x-ratelimit-remaining-requests", "0"),
///     ("x-ratelimit-reset-requests", "1.146s"),
///     ("content-type", "application/json"),
/// ]);
/// assert_eq!(headers.retry_after(), Some(Duration::from_secs(2)));
/// assert_eq!(headers.remaining_requests(), Some(0));
/// assert_eq!(headers.reset_requests(), Some(Duration::from_millis(1146)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(String, String)>,
}

impl Headers {
    /// An empty header view (e.g. a 429 without any rate-limit headers).
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Keeps the headers strategies read (`retry-after`, `retry-after-ms`, `x-should-retry`,
    /// `x-ratelimit-*`) from name/value pairs.
    pub fn from_pairs<I, N, V>(pairs: I) -> Headers
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let pairs = pairs
            .into_iter()
            .map(|(name, value)| {
                (
                    name.as_ref().trim().to_ascii_lowercase(),
                    value.as_ref().trim().to_owned(),
                )
            })
            .filter(|(name, _)| {
                matches!(
                    name.as_str(),
                    "retry-after" | "retry-after-ms" | "x-should-retry"
                ) || name.starts_with("x-ratelimit-")
            })
            .collect();
        Headers { pairs }
    }

    /// The raw value of a kept header, by lowercase name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `retry-after-ms` as float milliseconds, when it parses.
    pub fn retry_after_ms(&self) -> Option<f64> {
        self.get("retry-after-ms")?
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
    }

    /// `retry-after` as float seconds, when it parses as a number (not an HTTP date).
    pub fn retry_after_seconds(&self) -> Option<f64> {
        self.get("retry-after")?
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
    }

    /// `retry-after` as integer seconds only (async-openai 0.37+ reads it this way).
    pub fn retry_after_integer_seconds(&self) -> Option<u64> {
        self.get("retry-after")?.parse::<u64>().ok()
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
        match self.get("x-should-retry")? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    fn duration(&self, name: &str) -> Option<Duration> {
        parse_go_duration(self.get(name)?).ok()
    }

    /// `x-ratelimit-limit-requests`.
    pub fn limit_requests(&self) -> Option<u64> {
        self.number("x-ratelimit-limit-requests")
    }

    /// `x-ratelimit-limit-tokens`.
    pub fn limit_tokens(&self) -> Option<u64> {
        self.number("x-ratelimit-limit-tokens")
    }

    /// `x-ratelimit-remaining-requests`.
    pub fn remaining_requests(&self) -> Option<u64> {
        self.number("x-ratelimit-remaining-requests")
    }

    /// `x-ratelimit-remaining-tokens`.
    pub fn remaining_tokens(&self) -> Option<u64> {
        self.number("x-ratelimit-remaining-tokens")
    }

    /// `x-ratelimit-reset-requests`, a Go duration.
    pub fn reset_requests(&self) -> Option<Duration> {
        self.duration("x-ratelimit-reset-requests")
    }

    /// `x-ratelimit-reset-tokens`, a Go duration.
    pub fn reset_tokens(&self) -> Option<Duration> {
        self.duration("x-ratelimit-reset-tokens")
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
        /// `insufficient_quota`, `rate_limit_exceeded`).
        error_code: Option<String>,
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
    pub fn error(status: u16, headers: Headers, code: &str) -> Outcome {
        Outcome::Response {
            status,
            headers,
            error_code: Some(code.to_owned()),
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
