//! The `x-ratelimit-*` and retry headers of the server model's decisions, copied into axum
//! header maps: values formatted by `quota` (the statuses' trios, the retry waits rounded up),
//! names from `quota::header_names`, those a served response carries every time as constants,
//! the `x-ratelimit-*` values sharing one buffer.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::BytesMut;
use quota::LimitStatus;

/// Adds `retry-after` (whole seconds) and `retry-after-ms`, each when the decision carries it
/// (`model::RateLimited`: already rounded up by `quota` and filtered by the header policy).
pub fn insert_retry_headers(headers: &mut HeaderMap, seconds: Option<u64>, millis: Option<u64>) {
    use quota::header_names::{RETRY_AFTER, RETRY_AFTER_MS};
    if let Some(seconds) = seconds {
        headers.insert(header_name(RETRY_AFTER), HeaderValue::from(seconds));
    }
    if let Some(millis) = millis {
        headers.insert(header_name(RETRY_AFTER_MS), HeaderValue::from(millis));
    }
}

/// The name of a header `quota` produces. The names sent on every admitted request are
/// constants, which skips parsing and validating them per request.
fn header_name(name: &'static str) -> HeaderName {
    use quota::header_names as names;
    const LIMIT_REQUESTS: HeaderName = HeaderName::from_static(names::LIMIT_REQUESTS);
    const REMAINING_REQUESTS: HeaderName = HeaderName::from_static(names::REMAINING_REQUESTS);
    const RESET_REQUESTS: HeaderName = HeaderName::from_static(names::RESET_REQUESTS);
    const LIMIT_TOKENS: HeaderName = HeaderName::from_static(names::LIMIT_TOKENS);
    const REMAINING_TOKENS: HeaderName = HeaderName::from_static(names::REMAINING_TOKENS);
    const RESET_TOKENS: HeaderName = HeaderName::from_static(names::RESET_TOKENS);
    match name {
        names::LIMIT_REQUESTS => LIMIT_REQUESTS,
        names::REMAINING_REQUESTS => REMAINING_REQUESTS,
        names::RESET_REQUESTS => RESET_REQUESTS,
        names::LIMIT_TOKENS => LIMIT_TOKENS,
        names::REMAINING_TOKENS => REMAINING_TOKENS,
        names::RESET_TOKENS => RESET_TOKENS,
        other => HeaderName::from_static(other),
    }
}

/// Copies the `x-ratelimit-*` headers of a decision's `statuses` into `headers`.
pub fn insert_rate_limit_headers(headers: &mut HeaderMap, statuses: &[LimitStatus]) {
    // All values go into one buffer that every header value then shares, so a response pays
    // one allocation for them rather than one per header.
    let mut text = BytesMut::with_capacity(128);
    let mut written: [(&'static str, usize, usize); MAX_RATE_LIMIT_HEADERS] =
        [("", 0, 0); MAX_RATE_LIMIT_HEADERS];
    let mut count = 0;
    quota::write_rate_limit_headers(statuses, |name, value| {
        if let Some(slot) = written.get_mut(count) {
            *slot = (name, text.len(), text.len() + value.len());
            text.extend_from_slice(value.as_bytes());
            count += 1;
        }
    });
    let text = text.freeze();
    for &(name, start, end) in &written[..count] {
        if let Ok(value) = HeaderValue::from_maybe_shared(text.slice(start..end)) {
            headers.insert(header_name(name), value);
        }
    }
}

/// At most three headers for each of requests, tokens and project tokens.
const MAX_RATE_LIMIT_HEADERS: usize = 9;
