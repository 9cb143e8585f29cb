//! `Strategy::observes_success`: a strategy that says it ignores successes keeps the promise
//! the simulator relies on (a success answers `Done`, draws nothing, and changes nothing the
//! next requests could see), and every built-in says what it does on purpose.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use retry::{Headers, Outcome, ParamKind, Registry, RetryClient};

use crate::{Script, run_request};

/// Every built-in strategy, with its required nested strategies given as `inner` (and a
/// rate for the local limiter).
fn every_builtin(inner: &str) -> Vec<String> {
    Registry::with_builtins()
        .infos()
        .map(|info| {
            let nested: Vec<String> = info
                .params
                .iter()
                .filter(|param| param.required)
                .map(|param| {
                    assert_eq!(param.kind, ParamKind::Strategy, "{}", info.name);
                    format!("{}=({inner})", param.name)
                })
                .collect();
            let mut params = nested;
            // The local limiter needs a rate to pace at.
            if info.name == "token-bucket" {
                params.push("rpm=60".to_owned());
            }
            if params.is_empty() {
                info.name.clone()
            } else {
                format!("{}:{}", info.name, params.join(","))
            }
        })
        .collect()
}

fn success_with(headers: &[(&'static str, &'static str)]) -> Outcome {
    Outcome::response(200, Headers::from_pairs(headers.iter().copied()))
}

/// The built-ins that ignore successes: the backoff formulas, the SDKs' policies and the
/// wrappers of them (here around full jitter). Budgets, breakers and limiters learn from
/// successes.
const IGNORING: &[&str] = &[
    "none",
    "fixed",
    "exponential",
    "full-jitter",
    "equal-jitter",
    "decorrelated-jitter",
    "polly-decorrelated-jitter-v2",
    "openai-python",
    "openai-node",
    "async-openai",
    "tenacity",
    "honour-retry-after",
    "stacked",
];

#[test]
fn each_builtin_says_whether_it_observes_successes_on_purpose() {
    let registry = Registry::with_builtins();
    for spec in every_builtin("full-jitter") {
        let family = spec.split([':', '@']).next().unwrap_or_default();
        let strategy = registry.build_str(&spec).expect("a built-in spec");
        assert_eq!(
            !strategy.observes_success(),
            IGNORING.contains(&family),
            "{spec}"
        );
    }
    // A wrapper ignores successes only when what it wraps does.
    let wrapper = "honour-retry-after:inner=(aws-retry-quota:inner=(full-jitter))";
    assert!(registry.build_str(wrapper).unwrap().observes_success());
    let stacked = "stacked:outer=(circuit-breaker:inner=(none)),inner=(openai-python@2.52)";
    assert!(registry.build_str(stacked).unwrap().observes_success());
}

/// A strategy that ignores successes answers `Done` without a draw (the script has none to
/// give), whatever the headers, and a client that heard many successes then retries a
/// failing request exactly as a fresh one does.
#[test]
fn a_strategy_that_ignores_successes_keeps_its_promise() {
    let registry = Registry::with_builtins();
    let headers: [&[(&'static str, &'static str)]; 3] = [
        &[],
        &[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "20s"),
        ],
        &[("retry-after", "5"), ("x-should-retry", "true")],
    ];
    let mut ignoring = 0;
    for spec in every_builtin("full-jitter") {
        let mut heard = RetryClient::new(registry.build_str(&spec).unwrap());
        if heard.observes_success() {
            continue;
        }
        ignoring += 1;
        let mut no_draws = Script::new(&[]);
        for (index, headers) in headers.iter().cycle().take(30).enumerate() {
            let now = Duration::from_millis(index as u64 * 7);
            let mut request = heard.begin(now, 100);
            let _ = heard.before_attempt(&mut request, now, &mut no_draws);
            let decision =
                heard.after_outcome(&mut request, &success_with(headers), now, &mut no_draws);
            assert_eq!(decision, retry::Decision::Done, "{spec}");
        }
        let mut fresh = RetryClient::new(registry.build_str(&spec).unwrap());
        let failing = |attempt: usize| {
            if attempt < 3 {
                Outcome::response(429, Headers::new().with_retry_after_seconds(1))
            } else {
                success_with(&[])
            }
        };
        let start = Duration::from_secs(60);
        let after_successes = run_request(
            &mut heard,
            start,
            &mut ChaCha8Rng::seed_from_u64(7),
            failing,
        );
        let from_fresh = run_request(
            &mut fresh,
            start,
            &mut ChaCha8Rng::seed_from_u64(7),
            failing,
        );
        assert_eq!(after_successes, from_fresh, "{spec}");
    }
    assert!(
        ignoring >= IGNORING.len(),
        "only {ignoring} strategies ignore successes"
    );
}
