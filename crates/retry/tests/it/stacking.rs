//! Wrappers end to end: caps, Honour-Retry-After, and an outer policy over an SDK's own.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use retry::{GiveUpReason, Headers, Outcome, RetryClient};

use crate::{Script, build, ms, run_request, secs};

fn always(outcome: Outcome) -> impl FnMut(usize) -> Outcome {
    move |_| outcome.clone()
}

#[test]
fn tenacity_around_openai_python_makes_eighteen_calls() {
    let mut client = RetryClient::new(build(
        "stacked:outer=(tenacity@9:min=1s,max=60s,max-attempts=6),inner=(openai-python@2.52)",
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (result, sends) = run_request(
        &mut client,
        Duration::ZERO,
        &mut rng,
        always(Outcome::response(429, Headers::new())),
    );
    assert_eq!(result, Err(GiveUpReason::MaxAttempts));
    assert_eq!(sends.len(), 18);
    // Within each inner sequence the SDK's own waits are under a second and a half; between
    // sequences tenacity waits at least min = 1 s.
    for (index, pair) in sends.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        if index % 3 == 2 {
            assert!(
                gap >= secs(1) && gap <= secs(60),
                "outer gap {index}: {gap:?}"
            );
        } else {
            assert!(gap <= ms(1000), "inner gap {index}: {gap:?}");
        }
    }
}

#[test]
fn stacked_succeeds_mid_sequence_and_caps_still_count_http_calls() {
    let mut client = RetryClient::new(build(
        "stacked:outer=(tenacity@9),inner=(openai-python@2.52),max-attempts=5",
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (result, sends) = run_request(&mut client, Duration::ZERO, &mut rng, |attempt| {
        if attempt == 4 {
            Outcome::ok()
        } else {
            Outcome::response(503, Headers::new())
        }
    });
    assert_eq!((result, sends.len()), (Ok(()), 5));
    let mut capped = RetryClient::new(build(
        "stacked:outer=(tenacity@9),inner=(openai-python@2.52),max-attempts=5",
    ));
    let (result, sends) = run_request(
        &mut capped,
        Duration::ZERO,
        &mut rng,
        always(Outcome::response(503, Headers::new())),
    );
    assert_eq!((result, sends.len()), (Err(GiveUpReason::MaxAttempts), 5));
}

#[test]
fn deadline_stops_before_scheduling_past_it() {
    let mut client = RetryClient::new(build("fixed:delay=4s,max-attempts=100,deadline=10s"));
    let (result, sends) = run_request(
        &mut client,
        secs(100),
        &mut Script::new(&[]),
        always(Outcome::response(503, Headers::new())),
    );
    assert_eq!(result, Err(GiveUpReason::Deadline));
    assert_eq!(sends, [secs(100), secs(104), secs(108)]);
}

#[test]
fn honour_retry_after_replaces_the_delay_and_enforces_its_cap() {
    let limited =
        |value: &str| Outcome::response(429, Headers::from_pairs([("retry-after", value)]));
    let mut client = RetryClient::new(build(
        "honour-retry-after:cap=30s,inner=(full-jitter:max-attempts=3)",
    ));
    // The inner full jitter still draws (and its delay is replaced): script its draws.
    let (result, sends) = run_request(
        &mut client,
        Duration::ZERO,
        &mut Script::new(&[0.5; 3]),
        always(limited("7")),
    );
    assert_eq!(result, Err(GiveUpReason::MaxAttempts));
    assert_eq!(sends, [secs(0), secs(7), secs(14)]);

    let (result, sends) = run_request(
        &mut client,
        Duration::ZERO,
        &mut Script::new(&[0.5]),
        always(limited("31")),
    );
    assert_eq!(
        (result, sends.len()),
        (Err(GiveUpReason::RetryAfterTooLong), 1)
    );

    let mut clamped = RetryClient::new(build(
        "honour-retry-after:cap=30s,clamp-over-cap=true,inner=(full-jitter:max-attempts=2)",
    ));
    let (_, sends) = run_request(
        &mut clamped,
        Duration::ZERO,
        &mut Script::new(&[0.5; 2]),
        always(limited("31")),
    );
    assert_eq!(sends, [secs(0), secs(30)]);

    // Without a Retry-After the inner strategy's delay stands (full jitter at u = 0.5).
    let (_, sends) = run_request(
        &mut clamped,
        Duration::ZERO,
        &mut Script::new(&[0.5; 2]),
        always(Outcome::response(429, Headers::new())),
    );
    assert_eq!(sends, [secs(0), ms(50)]);
}

#[test]
fn tenacity_retries_what_the_sdk_would_not() {
    // A bare @retry retries every exception, insufficient_quota and 400 included.
    for outcome in [
        Outcome::error(429, Headers::new(), "insufficient_quota"),
        Outcome::response(400, Headers::new()),
    ] {
        let mut client = RetryClient::new(build("tenacity@9"));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (_, sends) = run_request(&mut client, Duration::ZERO, &mut rng, always(outcome));
        assert_eq!(sends.len(), 6);
    }
    let mut client = RetryClient::new(build("full-jitter"));
    let (result, sends) = run_request(
        &mut client,
        Duration::ZERO,
        &mut Script::new(&[]),
        always(Outcome::error(429, Headers::new(), "insufficient_quota")),
    );
    assert_eq!((result, sends.len()), (Err(GiveUpReason::NotRetryable), 1));
}

/// A state restarted in place (the simulator's request slots) is the state `begin` gives, nested
/// layers and all, and a request run on it decides as one run on a fresh state.
#[test]
fn a_restarted_state_is_a_fresh_one() {
    let spec = "stacked:outer=(tenacity@9),inner=(openai-python@2.52)";
    let mut client = RetryClient::new(build(spec));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut request = client.begin(Duration::ZERO, 7);
    for attempt in 0..4 {
        let now = secs(attempt);
        client.before_attempt(&mut request, now, &mut rng);
        let outcome = Outcome::response(503, Headers::new());
        client.after_outcome(&mut request, &outcome, now, &mut rng);
    }
    assert!(!request.layers.is_empty() && request.attempts > 0);
    client.begin_in(&mut request, secs(30), 11);
    assert_eq!(request, RetryClient::new(build(spec)).begin(secs(30), 11));
}
