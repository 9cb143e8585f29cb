//! The typed header view the simulator hands strategies equals what a client parses from the
//! headers ratelab's server formats, for any limiter statuses and retry waits.

use std::time::Duration;

use proptest::prelude::*;
use quota::{LimitKind, LimitStatus, RateLimitHeaders, RateLimitWindow, Scope};
use retry::Headers;

fn any_status() -> impl Strategy<Value = LimitStatus> {
    let scope = prop_oneof![Just(Scope::Organization), Just(Scope::Project)];
    let kind = proptest::sample::select(LimitKind::ALL.to_vec());
    // Resets around millisecond boundaries, realistic ones up to a day, and extreme ones.
    let reset_nanos = prop_oneof![
        0u64..3_000_000,
        0u64..86_400_000_000_000,
        (0u64..100_000).prop_map(|millis| millis * 1_000_000),
        any::<u64>(),
    ];
    let count = prop_oneof![0u64..1_000, any::<u64>()];
    (scope, kind, count.clone(), count, reset_nanos).prop_map(
        |(scope, kind, limit, remaining, reset_nanos)| LimitStatus {
            scope,
            kind,
            limit,
            remaining,
            reset: Duration::from_nanos(reset_nanos),
        },
    )
}

fn any_wait() -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of(prop_oneof![
        (0u64..5_000_000_000).prop_map(Duration::from_nanos),
        any::<u64>().prop_map(Duration::from_nanos),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_typed_view_equals_the_parsed_headers(
        statuses in proptest::collection::vec(any_status(), 0..6),
        wait in any_wait(),
    ) {
        let mut pairs = quota::rate_limit_headers(&statuses);
        let mut typed = sim::rate_limit_view(&statuses);
        if let Some(wait) = wait {
            let seconds = quota::retry_after_seconds(wait);
            let millis = quota::retry_after_millis(wait);
            pairs.push((quota::header_names::RETRY_AFTER, seconds.to_string()));
            pairs.push((quota::header_names::RETRY_AFTER_MS, millis.to_string()));
            typed = typed.with_retry_after_seconds(seconds).with_retry_after_ms(millis);
        }
        let parsed = Headers::from_pairs(pairs.iter().map(|(name, value)| (*name, value.as_str())));
        prop_assert_eq!(typed, parsed, "pairs: {:?}", pairs);
        // Every accessor a strategy calls, not only the fields behind them.
        prop_assert_eq!(typed.retry_after(), parsed.retry_after());
        prop_assert_eq!(typed.retry_after_secs_f64(), parsed.retry_after_secs_f64());
        prop_assert_eq!(typed.reset_requests(), parsed.reset_requests());
        prop_assert_eq!(typed.reset_tokens(), parsed.reset_tokens());
    }

    /// quota's one-pass pick equals the plain reading of OpenAI's rule: per scope and unit,
    /// the first per-minute status, else the first per-day one.
    #[test]
    fn the_typed_value_picks_per_minute_then_per_day(
        statuses in proptest::collection::vec(any_status(), 0..8),
    ) {
        let pick = |scope: Scope, per_minute: LimitKind, per_day: LimitKind| {
            let find = |kind| {
                statuses.iter().find(|status| status.scope == scope && status.kind == kind)
            };
            find(per_minute).or_else(|| find(per_day)).map(|status| RateLimitWindow {
                limit: status.limit,
                remaining: status.remaining,
                reset: status.reset,
            })
        };
        let expected = RateLimitHeaders {
            requests: pick(Scope::Organization, LimitKind::Rpm, LimitKind::Rpd),
            tokens: pick(Scope::Organization, LimitKind::Tpm, LimitKind::Tpd),
            project_tokens: pick(Scope::Project, LimitKind::Tpm, LimitKind::Tpd),
        };
        prop_assert_eq!(RateLimitHeaders::from_statuses(&statuses), expected);
    }
}

#[test]
fn resets_read_as_formatted_rounded_up_to_the_millisecond() {
    let status = |kind, reset| LimitStatus {
        scope: Scope::Organization,
        kind,
        limit: 500,
        remaining: 499,
        reset,
    };
    let statuses = [
        status(LimitKind::Rpm, Duration::from_nanos(1_146_000_001)),
        status(LimitKind::Tpd, Duration::from_nanos(1)),
    ];
    let view = sim::rate_limit_view(&statuses);
    assert_eq!(view.reset_requests(), Some(Duration::from_millis(1_147)));
    assert_eq!(view.reset_tokens(), Some(Duration::from_millis(1)));
    assert_eq!(
        view,
        Headers::from_pairs(quota::rate_limit_headers(&statuses))
    );
}
