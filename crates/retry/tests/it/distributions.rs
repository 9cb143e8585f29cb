//! Distribution tests: bounds and means over many seeded draws, invariants under proptest,
//! and replaying a seed exactly.

use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use retry::{Backoff, Headers, Outcome, RequestState, RetryClient};

use crate::{build, ms, run_request, secs};

const DRAWS: usize = 20_000;

/// Seconds drawn by `backoff` for the retry after attempt `attempts`, `previous` the delay
/// before it.
fn draws(backoff: Backoff, attempts: u32, previous: Option<Duration>, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..DRAWS)
        .map(|_| {
            let mut request = RequestState::new(Duration::ZERO, 0);
            request.attempts = attempts;
            request.previous_delay = previous;
            let delay = backoff.next_delay(&mut request, &mut rng).unwrap();
            delay.as_secs_f64()
        })
        .collect()
}

#[track_caller]
fn check_distribution(samples: &[f64], low: f64, high: f64, mean: f64) {
    let (min, max) = samples.iter().fold((f64::MAX, f64::MIN), |(min, max), x| {
        (min.min(*x), max.max(*x))
    });
    assert!(min >= low - 1e-9, "min {min} below {low}");
    assert!(max <= high + 1e-9, "max {max} above {high}");
    let actual_mean = samples.iter().sum::<f64>() / samples.len() as f64;
    // 20,000 uniform draws: the standard error is under 0.3% of the range.
    let tolerance = 0.02 * (high - low);
    assert!(
        (actual_mean - mean).abs() <= tolerance,
        "mean {actual_mean}, expected {mean} +- {tolerance}"
    );
    // Both ends of the range are reached: the draws cover it.
    assert!(min <= low + 0.01 * (high - low) && max >= high - 0.01 * (high - low));
}

#[test]
fn full_jitter_is_uniform_over_zero_to_ceiling() {
    // Fourth attempt failed: n = 3, ceiling min(20 s, 100 ms x 8) = 800 ms.
    let backoff = Backoff::FullJitter {
        base: ms(100),
        cap: secs(20),
    };
    check_distribution(&draws(backoff, 4, None, 1), 0.0, 0.8, 0.4);
}

#[test]
fn equal_jitter_is_uniform_over_the_upper_half() {
    let backoff = Backoff::EqualJitter {
        base: ms(100),
        cap: secs(20),
    };
    check_distribution(&draws(backoff, 4, None, 2), 0.4, 0.8, 0.6);
}

#[test]
fn decorrelated_jitter_is_uniform_between_base_and_three_times_previous() {
    let backoff = Backoff::DecorrelatedJitter {
        base: ms(100),
        cap: secs(20),
    };
    check_distribution(&draws(backoff, 3, Some(secs(1)), 3), 0.1, 3.0, 1.55);
}

#[test]
fn tenacity_bounds_differ_by_version() {
    let tenacity = |lower_bound_is_min| Backoff::TenacityRandomExponential {
        min: secs(1),
        max: secs(60),
        multiplier: 1.0,
        lower_bound_is_min,
    };
    // attempt 4: high = min(2^3, 60) = 8.
    check_distribution(&draws(tenacity(true), 4, None, 4), 1.0, 8.0, 4.5);
    check_distribution(&draws(tenacity(false), 4, None, 5), 0.0, 8.0, 4.0);
}

#[test]
fn polly_v2_delays_telescope_to_its_curve() {
    // The sum of the first k delays is 2^t tanh(sqrt(4t)) / 1.4 x base with t in [k-1, k).
    let curve = |t: f64| 2f64.powf(t) * (4.0 * t).sqrt().tanh() / 1.4;
    let backoff = Backoff::PollyDecorrelatedV2 {
        base: secs(1),
        max_delay: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for _ in 0..2_000 {
        let mut request = RequestState::new(Duration::ZERO, 0);
        let mut total = 0.0;
        for k in 1..=5u32 {
            request.attempts = k;
            let delay = backoff.next_delay(&mut request, &mut rng).unwrap();
            total += delay.as_secs_f64();
            let (low, high) = (curve(f64::from(k - 1)), curve(f64::from(k)));
            assert!(
                total >= low - 1e-6 && total <= high + 1e-6,
                "k {k}: {total}"
            );
        }
    }
}

#[test]
fn openai_fallback_first_retry_is_between_375_and_500_ms() {
    let samples: Vec<f64> = (0..DRAWS as u64)
        .map(|seed| first_retry("openai-python@2.52", seed))
        .collect();
    check_distribution(&samples, 0.375, 0.5, 0.4375);
}

#[test]
fn async_openai_0_36_first_retry_is_500_ms_plus_minus_half() {
    let samples: Vec<f64> = (0..DRAWS as u64)
        .map(|seed| first_retry("async-openai@0.36", seed))
        .collect();
    check_distribution(&samples, 0.25, 0.75, 0.5);
}

#[test]
fn honour_retry_after_jitter_is_positive_and_proportional() {
    let samples: Vec<f64> = (0..DRAWS as u64)
        .map(|seed| {
            let strategy = "honour-retry-after:jitter=0.2,inner=(full-jitter)";
            let mut client = RetryClient::new(build(strategy));
            let outcome = Outcome::response(429, Headers::from_pairs([("retry-after", "10")]));
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut request = client.begin(Duration::ZERO, 0);
            client.before_attempt(&mut request, Duration::ZERO, &mut rng);
            match client.after_outcome(&mut request, &outcome, Duration::ZERO, &mut rng) {
                retry::Decision::Retry { after } => after.as_secs_f64(),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    check_distribution(&samples, 10.0, 12.0, 11.0);
}

fn first_retry(strategy: &str, seed: u64) -> f64 {
    let mut client = RetryClient::new(build(strategy));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (_, sends) = run_request(&mut client, Duration::ZERO, &mut rng, |_| {
        Outcome::response(503, Headers::new())
    });
    (sends[1] - sends[0]).as_secs_f64()
}

#[test]
fn the_same_seed_replays_exactly() {
    for strategy in [
        "full-jitter",
        "decorrelated-jitter",
        "polly-decorrelated-jitter-v2",
        "tenacity@9",
        "openai-python@2.52",
        "async-openai@0.36",
        "sre-adaptive-throttle:inner=(equal-jitter)",
        "stacked:outer=(tenacity@9),inner=(openai-python@2.52)",
    ] {
        let trace = |seed| {
            let mut client = RetryClient::new(build(strategy));
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|index| {
                    run_request(&mut client, secs(index), &mut rng, |attempt| {
                        if attempt % 3 == 2 {
                            Outcome::ok()
                        } else {
                            Outcome::response(429, Headers::new())
                        }
                    })
                })
                .collect::<Vec<_>>()
        };
        let seed = 42;
        assert_eq!(trace(seed), trace(seed), "{strategy} with seed {seed}");
        assert_ne!(
            trace(seed),
            trace(seed + 1),
            "{strategy}: the seed must matter"
        );
    }
}

proptest! {
    #[test]
    fn jittered_delays_stay_within_base_and_cap(
        seed in any::<u64>(),
        base_ms in 1u64..2_000,
        cap_ms in 1u64..60_000,
        attempts in 1u32..40,
    ) {
        let (base, cap) = (ms(base_ms), ms(cap_ms.max(base_ms)));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for backoff in [
            Backoff::FullJitter { base, cap },
            Backoff::EqualJitter { base, cap },
            Backoff::DecorrelatedJitter { base, cap },
            Backoff::Exponential { base, factor: 2.0, cap },
        ] {
            let mut request = RequestState::new(Duration::ZERO, 0);
            for attempt in 1..=attempts {
                request.attempts = attempt;
                let delay = backoff.next_delay(&mut request, &mut rng).unwrap();
                prop_assert!(delay <= cap, "{backoff:?}: {delay:?} over the cap");
                if let Backoff::DecorrelatedJitter { .. } = backoff {
                    prop_assert!(delay >= base, "{backoff:?}: {delay:?} under the base");
                }
                request.record_decision(retry::Decision::Retry { after: delay });
            }
        }
    }
}
