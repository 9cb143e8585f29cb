//! OpenAI's real samples reproduced to the millisecond; docs/limits.md, "The samples", lists
//! each with its public source.

use std::time::Duration;

use quota::{
    Charge, Instant, LimitKind, LimitSet, Limiter, RejectedRequests, format_go_duration,
    rate_limit_headers,
};

use crate::{compile, org};

#[test]
fn rpm_500_with_499_remaining_resets_in_120ms() {
    let limits = compile(LimitSet {
        rpm: Some(500),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &limits)];
    let admitted = limiter
        .decide(Instant::from_nanos(5), Charge::request(0), &scopes)
        .unwrap();
    let headers = rate_limit_headers(&admitted.statuses);
    assert_eq!(
        headers,
        vec![
            ("x-ratelimit-limit-requests", "500".to_owned()),
            ("x-ratelimit-remaining-requests", "499".to_owned()),
            ("x-ratelimit-reset-requests", "120ms".to_owned()),
        ]
    );
}

#[test]
fn tpm_30000_used_29937_requested_385_waits_644ms() {
    let limits = compile(LimitSet {
        tpm: Some(30_000),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &limits)];
    let now = Instant::from_nanos(1_000_000_000);
    limiter
        .try_acquire(now, Charge::request(29_937), &scopes)
        .unwrap();
    let rejection = limiter
        .try_acquire(now, Charge::request(385), &scopes)
        .unwrap_err();
    assert_eq!(rejection.kind, LimitKind::Tpm);
    assert_eq!(
        (rejection.limit, rejection.used, rejection.requested),
        (30_000, 29_937, 385)
    );
    assert_eq!(rejection.retry_after, Some(Duration::from_millis(644)));
    assert_eq!(format_go_duration(rejection.retry_after.unwrap()), "644ms");
}

#[test]
fn tpm_30000_with_29996_remaining_resets_in_8ms() {
    let limits = compile(LimitSet {
        tpm: Some(30_000),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let admitted = limiter
        .decide(Instant::ZERO, Charge::request(4), &[org(&1, &limits)])
        .unwrap();
    let headers = rate_limit_headers(&admitted.statuses);
    assert!(headers.contains(&("x-ratelimit-remaining-tokens", "29996".to_owned())));
    assert!(headers.contains(&("x-ratelimit-reset-tokens", "8ms".to_owned())));
}

#[test]
fn rpm_5000_tpm_160000_after_one_request_of_24_tokens_resets_in_12ms_and_9ms() {
    // Headers quoted on OpenAI's community forum (docs/limits.md, "The samples").
    let limits = compile(LimitSet {
        rpm: Some(5_000),
        tpm: Some(160_000),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let admitted = limiter
        .decide(Instant::ZERO, Charge::request(24), &[org(&1, &limits)])
        .unwrap();
    let headers = rate_limit_headers(&admitted.statuses);
    assert_eq!(
        headers,
        vec![
            ("x-ratelimit-limit-requests", "5000".to_owned()),
            ("x-ratelimit-remaining-requests", "4999".to_owned()),
            ("x-ratelimit-reset-requests", "12ms".to_owned()),
            ("x-ratelimit-limit-tokens", "160000".to_owned()),
            ("x-ratelimit-remaining-tokens", "159976".to_owned()),
            ("x-ratelimit-reset-tokens", "9ms".to_owned()),
        ]
    );
}

#[test]
fn rpd_200_used_200_requested_1_waits_7m12s() {
    // The per-day limit is not charged for rejections by default, so the wait is OpenAI's.
    let limits = compile(LimitSet {
        rpd: Some(200),
        rejected_requests: RejectedRequests::CountPerMinute,
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &limits)];
    let now = Instant::from_nanos(7);
    for _ in 0..200 {
        limiter
            .try_acquire(now, Charge::request(1), &scopes)
            .unwrap();
    }
    let rejection = limiter
        .try_acquire(now, Charge::request(1), &scopes)
        .unwrap_err();
    assert_eq!(rejection.kind, LimitKind::Rpd);
    assert_eq!((rejection.used, rejection.requested), (200, 1));
    assert_eq!(format_go_duration(rejection.retry_after.unwrap()), "7m12s");
}

#[test]
fn a_project_token_limit_adds_the_project_tokens_headers() {
    let org_limits = compile(LimitSet {
        rpm: Some(500),
        tpm: Some(30_000),
        ..LimitSet::default()
    });
    let project_limits = compile(LimitSet {
        tpm: Some(60_000),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [
        org(&1, &org_limits),
        quota::ScopedKey {
            scope: quota::Scope::Project,
            key: &2,
            limits: &project_limits,
        },
    ];
    let admitted = limiter
        .decide(Instant::ZERO, Charge::request(4), &scopes)
        .unwrap();
    let headers = rate_limit_headers(&admitted.statuses);
    let names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
            "x-ratelimit-limit-project-tokens",
            "x-ratelimit-remaining-project-tokens",
            "x-ratelimit-reset-project-tokens",
        ]
    );
    assert_eq!(headers[7].1, "59996");
    assert_eq!(headers[8].1, "4ms");
}

#[test]
fn free_tier_rpm_3_sample_is_exact_under_every_rejection_rule() {
    // OpenAI's public sample, free tier gpt-3.5-turbo (3 RPM): "... on requests per min (RPM):
    // Limit 3, Used 3, Requested 1. Please try again in 20s. ..." with `Retry-After: 20`.
    let catalog = quota::Catalog::builtin();
    for rule in [
        RejectedRequests::Free,
        RejectedRequests::CountPerMinute,
        RejectedRequests::CountAllRequestLimits,
    ] {
        let set = LimitSet {
            rejected_requests: rule,
            ..catalog.limits("free", "gpt-3.5-turbo").unwrap().limit_set()
        };
        let limits = compile(set);
        let mut limiter = Limiter::new();
        let scopes = [org(&1, &limits)];
        let start = Instant::from_nanos(1_000);
        for _ in 0..3 {
            limiter.decide(start, Charge::request(12), &scopes).unwrap();
        }
        let rejected = limiter
            .decide(start, Charge::request(12), &scopes)
            .unwrap_err();
        let body =
            quota::ErrorBody::rate_limit(&rejected.rejection, "gpt-3.5-turbo", "org-sample", None);
        assert_eq!(
            body.error.message,
            "Rate limit reached for gpt-3.5-turbo in organization org-sample on requests per min \
             (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit \
             https://platform.openai.com/account/rate-limits to learn more.",
            "{rule:?}"
        );
        // The server sends `retry-after-ms` only when switched on (Azure's header).
        assert_eq!(
            quota::retry_headers(&rejected.rejection)[0],
            ("retry-after", "20".to_owned()),
            "{rule:?}"
        );
        let headers = rate_limit_headers(&rejected.statuses);
        assert!(
            headers.contains(&("x-ratelimit-remaining-requests", "0".to_owned())),
            "{rule:?}: {headers:?}"
        );
        assert!(
            headers.contains(&("x-ratelimit-reset-requests", "1m0s".to_owned())),
            "{rule:?}: the bucket refills within its own window: {headers:?}"
        );
        if rule == RejectedRequests::Free {
            let retry = start + rejected.rejection.retry_after.unwrap();
            assert!(limiter.decide(retry, Charge::request(12), &scopes).is_ok());
        }
    }
}
