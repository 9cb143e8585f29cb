//! The response headers OpenAI sends, as pure functions the server only copies.

use std::time::Duration;

use crate::go_duration::{push_decimal, push_go_duration};
use crate::limiter::{LimitStatus, Rejection};
use crate::limits::{LimitKind, Scope, Unit};

/// A header name and its value.
pub type Header = (&'static str, String);

/// The `x-ratelimit-*` headers for the statuses of a decision.
///
/// `requests` reports the organization's RPM (RPD when no RPM is set), `tokens` its TPM (TPD
/// when no TPM is set), and the `project-tokens` trio appears only when a project token limit
/// applies. Limits that are not set produce no headers.
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
/// same order: a server can copy them straight into its response without an intermediate list.
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
pub fn write_rate_limit_headers(
    statuses: &[LimitStatus],
    mut write: impl FnMut(&'static str, &str),
) {
    let pick = |scope: Scope, unit: Unit| {
        let (per_minute, per_day) = match unit {
            Unit::Requests => (LimitKind::Rpm, LimitKind::Rpd),
            Unit::Tokens => (LimitKind::Tpm, LimitKind::Tpd),
            Unit::Images => (LimitKind::Ipm, LimitKind::Ipm),
        };
        let find = |kind| {
            statuses
                .iter()
                .find(|status| status.scope == scope && status.kind == kind)
        };
        find(per_minute).or_else(|| find(per_day))
    };
    // Every value is formatted into one scratch buffer without `fmt`'s machinery, as this runs
    // for every admitted request.
    let mut scratch = String::with_capacity(24);
    let groups = [
        (Scope::Organization, Unit::Requests, HEADERS_REQUESTS),
        (Scope::Organization, Unit::Tokens, HEADERS_TOKENS),
        (Scope::Project, Unit::Tokens, HEADERS_PROJECT_TOKENS),
    ];
    for (scope, unit, [limit, remaining, reset]) in groups {
        if let Some(status) = pick(scope, unit) {
            scratch.clear();
            push_decimal(&mut scratch, status.limit);
            write(limit, &scratch);
            scratch.clear();
            push_decimal(&mut scratch, status.remaining);
            write(remaining, &scratch);
            scratch.clear();
            push_go_duration(&mut scratch, status.reset);
            write(reset, &scratch);
        }
    }
}

const HEADERS_REQUESTS: [&str; 3] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
];
const HEADERS_TOKENS: [&str; 3] = [
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];
const HEADERS_PROJECT_TOKENS: [&str; 3] = [
    "x-ratelimit-limit-project-tokens",
    "x-ratelimit-remaining-project-tokens",
    "x-ratelimit-reset-project-tokens",
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
            ("retry-after", retry_after_seconds(wait).to_string()),
            ("retry-after-ms", retry_after_millis(wait).to_string()),
        ],
        None => Vec::new(),
    }
}
