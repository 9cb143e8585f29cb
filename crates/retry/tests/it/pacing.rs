//! Client-side rate limiting: header-aware pacing, the local token bucket and AWS adaptive
//! mode.

use std::time::Duration;

use retry::{
    Admission, AwsAdaptive, Backoff, BackoffStrategy, Headers, LocalTokenBucket, Outcome,
    RequestState, Retryable, Strategy,
};

use crate::{Script, build, ms, secs};

fn never() -> Box<dyn Strategy> {
    Box::new(BackoffStrategy::new(Backoff::Never, Retryable::Transient))
}

fn admit(strategy: &mut dyn Strategy, now: Duration, tokens: u64) -> Duration {
    let mut request = RequestState::new(now, tokens);
    match strategy.before_attempt(&mut request, now, &mut Script::new(&[])) {
        Admission::Send { after } => after,
        other => panic!("expected a send, got {other:?}"),
    }
}

fn observe(strategy: &mut dyn Strategy, now: Duration, outcome: Outcome) {
    let mut request = RequestState::new(now, 0);
    request.record_send(now);
    strategy.after_outcome(&mut request, &outcome, now, &mut Script::new(&[]));
}

#[test]
fn header_pacing_sends_freely_until_headers_arrive_then_waits_for_the_refill() {
    let mut pacing = build("header-pacing:inner=none");
    assert_eq!(admit(pacing.as_mut(), Duration::ZERO, 100), Duration::ZERO);
    // RPM 60 with 0 left, full in 1 s: one request refills every second.
    let headers = Headers::from_pairs([
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "60s"),
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-tokens", "29000"),
        ("x-ratelimit-reset-tokens", "2s"),
    ]);
    observe(pacing.as_mut(), secs(10), Outcome::response(200, headers));
    assert_eq!(admit(pacing.as_mut(), secs(10), 100), secs(1));
    // The next one queues behind the first reservation.
    assert_eq!(admit(pacing.as_mut(), secs(10), 100), secs(2));
    // Tokens: 29000 left refilling at 1000 / 2 s = 500/s, 28800 after two requests: a
    // 30000-token request needs 2.4 s of refill, less than the request bucket's 3 s.
    assert_eq!(admit(pacing.as_mut(), secs(10), 30_000), secs(3));
}

#[test]
fn header_pacing_spaces_requests_by_the_token_refill() {
    let mut pacing = build("header-pacing:inner=none");
    let headers = Headers::from_pairs([
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "1m0s"),
    ]);
    observe(
        pacing.as_mut(),
        Duration::ZERO,
        Outcome::response(429, headers),
    );
    // 500 tokens per second: a 1000-token request waits 2 s, the next 4 s.
    assert_eq!(admit(pacing.as_mut(), Duration::ZERO, 1000), secs(2));
    assert_eq!(admit(pacing.as_mut(), Duration::ZERO, 1000), secs(4));
    // A 429 without headers changes nothing it knows.
    observe(
        pacing.as_mut(),
        Duration::ZERO,
        Outcome::response(429, Headers::new()),
    );
    assert_eq!(admit(pacing.as_mut(), Duration::ZERO, 1000), secs(6));
}

#[test]
fn local_token_bucket_allows_a_burst_then_paces_at_the_rate() {
    let mut bucket = LocalTokenBucket::new(never(), Some(60.0), None, Some(2.0), None);
    assert_eq!(admit(&mut bucket, Duration::ZERO, 0), Duration::ZERO);
    assert_eq!(admit(&mut bucket, Duration::ZERO, 0), Duration::ZERO);
    assert_eq!(admit(&mut bucket, Duration::ZERO, 0), secs(1));
    assert_eq!(admit(&mut bucket, Duration::ZERO, 0), secs(2));
    // Ten idle seconds refill only up to the burst.
    assert_eq!(admit(&mut bucket, secs(13), 0), Duration::ZERO);
    assert_eq!(admit(&mut bucket, secs(13), 0), Duration::ZERO);
    assert_eq!(admit(&mut bucket, secs(13), 0), secs(1));
}

#[test]
fn local_token_bucket_charges_tokens_per_request() {
    // 6000 TPM = 100 tokens/s, bucket of 6000.
    let mut bucket = build("token-bucket:tpm=6000,inner=none");
    assert_eq!(admit(bucket.as_mut(), Duration::ZERO, 6000), Duration::ZERO);
    assert_eq!(admit(bucket.as_mut(), Duration::ZERO, 250), ms(2500));
    // Larger than the whole bucket: charged as a full bucket, not forever.
    assert_eq!(
        admit(bucket.as_mut(), Duration::ZERO, 1_000_000),
        ms(62_500)
    );
}

#[test]
fn aws_adaptive_turns_on_at_the_first_throttle_and_cuts_the_rate_by_beta() {
    let mut adaptive = AwsAdaptive::new(never());
    assert_eq!(adaptive.fill_rate(), None);
    // Ten requests per second for 3 s, all fine: no limit yet.
    for tenth in 0..30 {
        let now = ms(100 * tenth);
        assert_eq!(admit(&mut adaptive, now, 0), Duration::ZERO);
        observe(&mut adaptive, now, Outcome::ok());
    }
    let measured = adaptive.measured_rate();
    assert!((8.0..=10.5).contains(&measured), "measured {measured}");
    observe(
        &mut adaptive,
        secs(3),
        Outcome::response(429, Headers::new()),
    );
    let rate = adaptive.fill_rate().expect("enabled by the throttle");
    // The throttle's own response is measured first (same 0.5 s bucket), then x0.7.
    let expected = adaptive.measured_rate() * 0.7;
    assert!(
        (rate - expected).abs() < 1e-9,
        "rate {rate}, expected {expected}"
    );
    // CUBIC: with the send rate kept at 10/s the limit recovers past the last max over time,
    // bounded by twice the measured rate.
    observe(&mut adaptive, ms(3100), Outcome::ok());
    let early = adaptive.fill_rate().unwrap();
    for tenth in 32..80 {
        observe(&mut adaptive, ms(100 * tenth), Outcome::ok());
    }
    let later = adaptive.fill_rate().unwrap();
    assert!(later > early, "{early} -> {later}");
    assert!(later <= 2.0 * adaptive.measured_rate() + 1e-9, "{later}");
    // Sends are now paced: once the bucket's burst is spent, a burst waits longer and longer.
    let waits: Vec<Duration> = (0..40).map(|_| admit(&mut adaptive, secs(8), 0)).collect();
    assert!(waits.windows(2).all(|pair| pair[0] <= pair[1]), "{waits:?}");
    assert_eq!(waits[0], Duration::ZERO, "{waits:?}");
    assert!(waits[39] > Duration::ZERO, "{waits:?}");
}
