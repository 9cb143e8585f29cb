//! Fuzz-style tests of what strategies read from a server, on the stable toolchain: seeded
//! header sets drawn from hostile values (huge, negative, NaN, dates, garbage), fed through
//! every built-in strategy for a bounded number of attempts. Parsing never panics, a parsed
//! wait is a real, non-negative duration, and no strategy overflows time.

use std::time::Duration;

use proptest::prelude::*;
use quota::parse_duration;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use retry::{Admission, Decision, Headers, Outcome, Registry, RetryClient};

const NAMES: &[&str] = &[
    "retry-after",
    "Retry-After",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-unknown",
];

/// Values that once broke, or could break, a parser or the arithmetic behind it.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.5",
    "1e308",
    "-1e308",
    "inf",
    "-inf",
    "NaN",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "",
    " ",
    "true",
    "false",
    "1h0m0s",
    "2562047h47m16.854775807s",
    "9999999999h",
    "1.5.5s",
    "ms",
    "-5ms",
    "\u{0}",
    "٣",
];

const STRATEGIES: &[&str] = &[
    "none",
    "openai-python@2.52",
    "openai-python@1.0",
    "openai-node@4",
    "openai-node@7.5",
    "async-openai@0.36",
    "async-openai@0.37",
    "tenacity@9",
    "full-jitter",
    "decorrelated-jitter",
    "honour-retry-after:inner=(full-jitter),clamp-over-cap=true",
    "header-pacing:inner=(openai-python@2.52)",
    "aws-adaptive:inner=(full-jitter)",
    "token-bucket:inner=(full-jitter),rpm=60,tpm=1000",
    "stacked:outer=(tenacity@9),inner=(openai-python@2.52)",
];

fn headers() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    prop::collection::vec(
        (prop::sample::select(NAMES), prop::sample::select(VALUES)),
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn hostile_headers_parse_to_sane_values(pairs in headers()) {
        let parsed = Headers::from_pairs(pairs.iter().copied());
        if let Some(wait) = parsed.retry_after() {
            prop_assert!(wait <= Duration::MAX);
        }
        if let Some(seconds) = parsed.retry_after_secs_f64() {
            prop_assert!(!seconds.is_nan());
        }
    }

    #[test]
    fn every_strategy_survives_hostile_429s(
        strategy in prop::sample::select(STRATEGIES),
        answers in prop::collection::vec((prop::sample::select(&[429u16, 500, 503, 200][..]), headers()), 1..8),
        seed in any::<u64>(),
    ) {
        let registry = Registry::with_builtins();
        let mut client = RetryClient::new(registry.build_str(strategy).expect("a built-in spec"));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut now = Duration::from_secs(1);
        let mut request = client.begin(now, 100);
        for (status, pairs) in &answers {
            match client.before_attempt(&mut request, now, &mut rng) {
                Admission::Send { after } => now = now.saturating_add(after),
                Admission::GiveUp { .. } => break,
            }
            let outcome = Outcome::response(*status, Headers::from_pairs(pairs.iter().copied()));
            match client.after_outcome(&mut request, &outcome, now, &mut rng) {
                Decision::Retry { after } => now = now.saturating_add(after),
                Decision::Done | Decision::GiveUp { .. } => break,
            }
        }
    }

    #[test]
    fn go_durations_parse_or_refuse(text in "[0-9.hmsuµn -]{0,24}") {
        let _ = parse_duration(&text);
    }
}
