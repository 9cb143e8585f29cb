//! Every delay formula against its definition, with scripted draws of `u`.

use std::time::Duration;

use retry::{Backoff, BackoffStrategy, Decision, Headers, Outcome, RetryClient, Retryable};

use crate::{Script, build, ms, secs};

/// The delays a strategy picks after `draws.len()`-ish consecutive 503s (no headers).
fn delays_of(client: &mut RetryClient, retries: usize, draws: &[f64]) -> Vec<Duration> {
    let mut rng = Script::new(draws);
    let busy = Outcome::response(503, Headers::new());
    let mut now = Duration::ZERO;
    let mut request = client.begin(now, 0);
    let mut delays = Vec::new();
    for _ in 0..retries {
        client.before_attempt(&mut request, now, &mut rng);
        match client.after_outcome(&mut request, &busy, now, &mut rng) {
            Decision::Retry { after } => {
                delays.push(after);
                now += after;
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
    assert_eq!(rng.used(), draws.len(), "every scripted draw must be used");
    delays
}

fn backoff(backoff: Backoff, retries: usize, draws: &[f64]) -> Vec<Duration> {
    let strategy = BackoffStrategy::new(backoff, Retryable::Transient);
    delays_of(&mut RetryClient::new(Box::new(strategy)), retries, draws)
}

#[track_caller]
fn check_close(actual: &[Duration], expected_micros: &[u64]) {
    assert_eq!(actual.len(), expected_micros.len(), "{actual:?}");
    for (index, (actual, expected)) in actual.iter().zip(expected_micros).enumerate() {
        let actual_micros = actual.as_secs_f64() * 1e6;
        assert!(
            (actual_micros - *expected as f64).abs() <= 1.0,
            "delay {index}: {actual:?}, expected {expected} us (all: {actual:?})"
        );
    }
}

const BASE: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(1);

#[test]
fn fixed_delay_is_constant() {
    let delays = backoff(Backoff::Fixed { delay: ms(250) }, 4, &[]);
    assert_eq!(delays, [ms(250); 4]);
}

#[test]
fn exponential_grows_by_factor_up_to_the_cap() {
    let exponential = |factor| Backoff::Exponential {
        base: BASE,
        factor,
        cap: CAP,
    };
    check_close(
        &backoff(exponential(2.0), 5, &[]),
        &[100_000, 200_000, 400_000, 800_000, 1_000_000],
    );
    check_close(
        &backoff(exponential(3.0), 4, &[]),
        &[100_000, 300_000, 900_000, 1_000_000],
    );
}

#[test]
fn full_jitter_is_uniform_below_the_exponential_ceiling() {
    // ceilings 100, 200, 400, 800, 1000 ms
    let delays = backoff(
        Backoff::FullJitter {
            base: BASE,
            cap: CAP,
        },
        5,
        &[0.5, 0.25, 0.75, 0.5, 0.5],
    );
    check_close(&delays, &[50_000, 50_000, 300_000, 400_000, 500_000]);
}

#[test]
fn equal_jitter_keeps_half_the_ceiling() {
    let delays = backoff(
        Backoff::EqualJitter {
            base: BASE,
            cap: CAP,
        },
        5,
        &[0.5, 0.25, 0.75, 0.5, 0.5],
    );
    check_close(&delays, &[75_000, 125_000, 350_000, 600_000, 750_000]);
}

#[test]
fn decorrelated_jitter_feeds_on_the_previous_delay() {
    // U(base, 3 x previous): previous 100 -> 200, 200 -> 350, 350 -> 100, 100 -> 250.
    let delays = backoff(
        Backoff::DecorrelatedJitter {
            base: BASE,
            cap: CAP,
        },
        4,
        &[0.5, 0.5, 0.0, 0.75],
    );
    check_close(&delays, &[200_000, 350_000, 100_000, 250_000]);
    // The cap bounds a large draw: previous 800 -> U(100, 2400) at 0.5 = 1250 -> 1000.
    let capped = backoff(
        Backoff::DecorrelatedJitter {
            base: ms(800),
            cap: CAP,
        },
        1,
        &[0.5],
    );
    check_close(&capped, &[1_000_000]);
}

#[test]
fn polly_decorrelated_jitter_v2_matches_its_reference_values() {
    // Reference values computed from Polly's formula with t = n + u:
    // (2^t tanh(sqrt(4t)) - prev) / 1.4 x 1 s.
    let delays = backoff(
        Backoff::PollyDecorrelatedV2 {
            base: secs(1),
            max_delay: None,
        },
        4,
        &[0.5, 0.5, 0.25, 0.0],
    );
    check_close(&delays, &[897_405, 1_093_004, 1_390_523, 2_322_167]);
    let capped = backoff(
        Backoff::PollyDecorrelatedV2 {
            base: secs(1),
            max_delay: Some(secs(1)),
        },
        2,
        &[0.5, 0.5],
    );
    check_close(&capped, &[897_405, 1_000_000]);
}

#[test]
fn tenacity_9_draws_between_min_and_the_exponential() {
    let tenacity = |lower_bound_is_min| Backoff::TenacityRandomExponential {
        min: secs(1),
        max: secs(60),
        multiplier: 1.0,
        lower_bound_is_min,
    };
    // attempt 1: high = max(1, min(1, 60)) = 1; attempt 2: high 2; attempt 3: high 4.
    check_close(
        &backoff(tenacity(true), 3, &[0.5, 0.5, 0.25]),
        &[1_000_000, 1_500_000, 1_750_000],
    );
    // Before 9.0 the lower bound was 0.
    check_close(
        &backoff(tenacity(false), 3, &[0.5, 0.5, 0.25]),
        &[500_000, 1_000_000, 1_000_000],
    );
    // attempt 7: 2^6 = 64 is capped at max = 60.
    let late = backoff(tenacity(false), 7, &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]);
    check_close(&late[6..], &[30_000_000]);
}

#[test]
fn openai_fallback_is_half_a_second_doubling_to_eight_with_quarter_jitter() {
    // min(0.5 x 2^n, 8) x (1 - 0.25 u); max-retries raised to see the cap.
    let mut client = RetryClient::new(build("openai-python@2.52:max-retries=6"));
    let delays = delays_of(&mut client, 6, &[0.0, 0.5, 0.0, 0.0, 0.0, 0.5]);
    check_close(
        &delays,
        &[500_000, 875_000, 2_000_000, 4_000_000, 8_000_000, 7_000_000],
    );
}

#[test]
fn async_openai_0_36_is_the_backoff_crate_interval() {
    // interval 500 ms x 1.5^n (max 60 s), drawn in [interval/2, 3 interval/2 + 1 ns].
    let mut client = RetryClient::new(build("async-openai@0.36"));
    let delays = delays_of(&mut client, 3, &[0.5, 0.0, 0.5]);
    check_close(&delays, &[500_000, 375_000, 1_125_000]);
}

#[test]
fn async_openai_0_37_doubles_from_100ms_to_8s_without_jitter() {
    let mut client = RetryClient::new(build("async-openai@0.37:max-retries=8"));
    let delays = delays_of(&mut client, 8, &[]);
    let expected: Vec<Duration> = [100, 200, 400, 800, 1600, 3200, 6400, 8000]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(delays, expected);
}
