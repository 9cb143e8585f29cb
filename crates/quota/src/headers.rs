//! The response headers OpenAI sends, as pure functions the server only copies.

use std::time::Duration;

use crate::go_duration::{push_decimal, push_go_duration};
use crate::limiter::{LimitStatus, Rejection};
use crate::limits::{LimitKind, Scope};

/// A header name and its value.
pub type Header = (&'static str, String);

/// The names of the headers OpenAI sends about rate limits and retries, defined once: the
/// server writes them, the simulator's typed view stands for them, and retry's `Headers` parses
/// them. All lowercase, as HTTP/2 sends them (matching is case-insensitive).
pub mod header_names {
    /// Whole seconds to wait (`1` for a 644 ms wait).
    pub const RETRY_AFTER: &str = "retry-after";
    /// Whole milliseconds to wait, rounded up.
    pub const RETRY_AFTER_MS: &str = "retry-after-ms";
    /// `true` or `false`: the server's explicit word on retrying.
    pub const SHOULD_RETRY: &str = "x-should-retry";
    /// The organization's request limit (RPM, else RPD).
    pub const LIMIT_REQUESTS: &str = "x-ratelimit-limit-requests";
    /// Requests that fit now.
    pub const REMAINING_REQUESTS: &str = "x-ratelimit-remaining-requests";
    /// Time until the request limit is whole again, in Go duration text.
    pub const RESET_REQUESTS: &str = "x-ratelimit-reset-requests";
    /// The organization's token limit (TPM, else TPD).
    pub const LIMIT_TOKENS: &str = "x-ratelimit-limit-tokens";
    /// Tokens that fit now.
    pub const REMAINING_TOKENS: &str = "x-ratelimit-remaining-tokens";
    /// Time until the token limit is whole again, in Go duration text.
    pub const RESET_TOKENS: &str = "x-ratelimit-reset-tokens";
    /// The project's token limit.
    pub const LIMIT_PROJECT_TOKENS: &str = "x-ratelimit-limit-project-tokens";
    /// Project tokens that fit now.
    pub const REMAINING_PROJECT_TOKENS: &str = "x-ratelimit-remaining-project-tokens";
    /// Time until the project token limit is whole again, in Go duration text.
    pub const RESET_PROJECT_TOKENS: &str = "x-ratelimit-reset-project-tokens";
}

use header_names::*;

/// The values of one `x-ratelimit-{limit,remaining,reset}-*` trio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitWindow {
    /// `x-ratelimit-limit-*`: the nominal limit.
    pub limit: u64,
    /// `x-ratelimit-remaining-*`: units that fit now.
    pub remaining: u64,
    /// `x-ratelimit-reset-*`: the exact time until the limit is whole again. The header text
    /// rounds it up to the millisecond ([`header_duration`](crate::header_duration)).
    pub reset: Duration,
}

impl RateLimitWindow {
    fn of(status: &LimitStatus) -> RateLimitWindow {
        RateLimitWindow {
            limit: status.limit,
            remaining: status.remaining,
            reset: status.reset,
        }
    }
}

/// The `x-ratelimit-*` headers of a decision as one typed value: the server formats it
/// ([`RateLimitHeaders::write`]), the simulator hands it to strategies without text.
///
/// `requests` reports the organization's RPM (RPD when no RPM is set), `tokens` its TPM (TPD
/// when no TPM is set), and `project_tokens` appears only when a project token limit applies.
/// Limits that are not set produce no headers.
///
/// ```
/// use std::time::Duration;
/// use quota::{LimitKind, LimitStatus, RateLimitHeaders, RateLimitWindow, Scope};
///
/// let statuses = [LimitStatus {
///     scope: Scope::Organization,
///     kind: LimitKind::Rpd,
///     limit: 10_000,
///     remaining: 9_999,
///     reset: Duration::from_millis(8_640),
/// }];
/// let headers = RateLimitHeaders::from_statuses(&statuses);
/// assert_eq!(headers.requests, Some(RateLimitWindow {
///     limit: 10_000,
///     remaining: 9_999,
///     reset: Duration::from_millis(8_640),
/// }));
/// assert_eq!(headers.tokens, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// The `x-ratelimit-*-requests` trio.
    pub requests: Option<RateLimitWindow>,
    /// The `x-ratelimit-*-tokens` trio.
    pub tokens: Option<RateLimitWindow>,
    /// The `x-ratelimit-*-project-tokens` trio.
    pub project_tokens: Option<RateLimitWindow>,
}

impl RateLimitHeaders {
    /// The headers for the statuses of a decision.
    pub fn from_statuses(statuses: &[LimitStatus]) -> RateLimitHeaders {
        // One pass over the statuses (the simulator calls this for every answer it sends
        // headers with): for each trio the first per-minute status, else the first per-day one.
        let mut headers = RateLimitHeaders::default();
        let mut per_minute = [false; 3];
        for status in statuses {
            let (slot, index) = match (status.scope, status.kind) {
                (Scope::Organization, LimitKind::Rpm | LimitKind::Rpd) => {
                    (&mut headers.requests, 0)
                }
                (Scope::Organization, LimitKind::Tpm | LimitKind::Tpd) => (&mut headers.tokens, 1),
                (Scope::Project, LimitKind::Tpm | LimitKind::Tpd) => {
                    (&mut headers.project_tokens, 2)
                }
                // Images, and project request limits, have no headers.
                (_, LimitKind::Ipm) | (Scope::Project, LimitKind::Rpm | LimitKind::Rpd) => {
                    continue;
                }
            };
            let is_per_minute = status.kind.is_per_minute();
            if slot.is_none() || (is_per_minute && !per_minute[index]) {
                *slot = Some(RateLimitWindow::of(status));
                per_minute[index] = is_per_minute;
            }
        }
        headers
    }

    /// Hands each header to `write` as it is formatted, requests then tokens then project
    /// tokens, each as limit, remaining, reset: a server can copy them straight into its
    /// response without an intermediate list.
    pub fn write(&self, mut write: impl FnMut(&'static str, &str)) {
        // Every value is formatted into one scratch buffer without `fmt`'s machinery, as this
        // runs for every admitted request.
        let mut scratch = String::with_capacity(24);
        let groups = [
            (self.requests, HEADERS_REQUESTS),
            (self.tokens, HEADERS_TOKENS),
            (self.project_tokens, HEADERS_PROJECT_TOKENS),
        ];
        for (window, [limit, remaining, reset]) in groups {
            if let Some(window) = window {
                scratch.clear();
                push_decimal(&mut scratch, window.limit);
                write(limit, &scratch);
                scratch.clear();
                push_decimal(&mut scratch, window.remaining);
                write(remaining, &scratch);
                scratch.clear();
                push_go_duration(&mut scratch, window.reset);
                write(reset, &scratch);
            }
        }
    }
}

/// The `x-ratelimit-*` headers for the statuses of a decision, as name/value pairs
/// ([`RateLimitHeaders`] formatted).
///
/// ```
/// use std::time::Duration;
/// use quota::{rate_limit_headers, LimitKind, LimitStatus, Scope};
///
/// let statuses = [LimitStatus {
///     scope: Scope::Organization,
///     kind: LimitKind::Rpm,
///     limit: 500,
///     remaining: 499,
///     reset: Duration::from_millis(120),
/// }];
/// assert_eq!(rate_limit_headers(&statuses), vec![
///     ("x-ratelimit-limit-requests", "500".to_owned()),
///     ("x-ratelimit-remaining-requests", "499".to_owned()),
///     ("x-ratelimit-reset-requests", "120ms".to_owned()),
/// ]);
/// ```
pub fn rate_limit_headers(statuses: &[LimitStatus]) -> Vec<Header> {
    let mut headers = Vec::with_capacity(9);
    write_rate_limit_headers(statuses, |name, value| {
        headers.push((name, value.to_owned()));
    });
    headers
}

/// The headers of [`rate_limit_headers`], each handed to `write` as it is formatted, in the
/// same order ([`RateLimitHeaders::write`]).
///
/// ```
/// use std::time::Duration;
/// use quota::{write_rate_limit_headers, LimitKind, LimitStatus, Scope};
///
/// let statuses = [LimitStatus {
///     scope: Scope::Organization,
///     kind: LimitKind::Tpm,
///     limit: 30_000,
///     remaining: 29_000,
///     reset: Duration::from_secs(2),
/// }];
/// let mut lines = Vec::new();
/// write_rate_limit_headers(&statuses, |name, value| lines.push(format!("{name}: {value}")));
/// assert_eq!(lines, [
///     "x-ratelimit-limit-tokens: 30000",
///     "x-ratelimit-remaining-tokens: 29000",
///     "x-ratelimit-reset-tokens: 2s",
/// ]);
/// ```
pub fn write_rate_limit_headers(statuses: &[LimitStatus], write: impl FnMut(&'static str, &str)) {
    RateLimitHeaders::from_statuses(statuses).write(write);
}

const HEADERS_REQUESTS: [&str; 3] = [LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS];
const HEADERS_TOKENS: [&str; 3] = [LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS];
const HEADERS_PROJECT_TOKENS: [&str; 3] = [
    LIMIT_PROJECT_TOKENS,
    REMAINING_PROJECT_TOKENS,
    RESET_PROJECT_TOKENS,
];

/// `Retry-After` for a wait: whole seconds, rounded up (a 644 ms wait says `1`).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    u64::try_from(wait.as_nanos().div_ceil(1_000_000_000)).unwrap_or(u64::MAX)
}

/// `retry-after-ms` for a wait: whole milliseconds, rounded up.
pub fn retry_after_millis(wait: Duration) -> u64 {
    u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// The retry headers of a rejection: `retry-after` (seconds) and `retry-after-ms`, or none
/// when the request is too large to ever fit. The server decides which of them to send.
///
/// ```
/// use std::time::Duration;
/// use quota::{retry_headers, LimitKind, Rejection, Scope};
///
/// let rejection = Rejection {
///     scope: Scope::Organization,
///     kind: LimitKind::Tpm,
///     limit: 30_000,
///     used: 29_937,
///     requested: 385,
///     retry_after: Some(Duration::from_millis(644)),
/// };
/// assert_eq!(retry_headers(&rejection), vec![
///     ("retry-after", "1".to_owned()),
///     ("retry-after-ms", "644".to_owned()),
/// ]);
/// ```
pub fn retry_headers(rejection: &Rejection) -> Vec<Header> {
    match rejection.retry_after {
        Some(wait) => vec![
            (RETRY_AFTER, retry_after_seconds(wait).to_string()),
            (RETRY_AFTER_MS, retry_after_millis(wait).to_string()),
        ],
        None => Vec::new(),
    }
}
