//! Client-side rate limiting: header-aware pacing, the local token bucket and AWS adaptive
//! mode.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use quota::RateLimitWindow;
use retry::{
    Admission, AwsAdaptive, Backoff, BackoffStrategy, Decision, Headers, LocalTokenBucket, Outcome,
    RequestState, RetryClient, Retryable, Strategy,
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

/// Reports the outcome of an attempt sent at `sent_at` (charging `tokens`), arriving at `now`.
fn observe_sent(
    strategy: &mut dyn Strategy,
    sent_at: Duration,
    tokens: u64,
    now: Duration,
    outcome: Outcome,
) {
    let mut request = RequestState::new(sent_at, tokens);
    request.record_send(sent_at);
    strategy.after_outcome(&mut request, &outcome, now, &mut Script::new(&[]));
}

/// `x-ratelimit-*-requests` for a 60 RPM limit (one request a second) with `remaining` left.
fn sixty_rpm(remaining: u64) -> Headers {
    Headers::new().with_requests(RateLimitWindow {
        limit: 60,
        remaining,
        reset: secs(60 - remaining),
    })
}

#[test]
fn header_pacing_keeps_its_queue_when_later_headers_arrive() {
    let mut pacing = build("header-pacing:inner=none");
    // The first request goes at once; its answer, a second later, says the window is spent.
    assert_eq!(admit(pacing.as_mut(), Duration::ZERO, 0), Duration::ZERO);
    observe_sent(
        pacing.as_mut(),
        Duration::ZERO,
        0,
        secs(1),
        Outcome::response(200, sixty_rpm(0)),
    );
    // Anchored at the send: one request has refilled since, then one a second.
    let queued: Vec<Duration> = (0..10)
        .map(|_| admit(pacing.as_mut(), secs(1), 0))
        .collect();
    let expected: Vec<Duration> = (0..10).map(secs).collect();
    assert_eq!(queued, expected);
    // The first queued send (at 1 s) meets a 429 at 1.02 s: another client took the refill.
    // The headers say the window is still spent, and nine of this client's sends are queued
    // behind it, so the next request goes after them, not one refill after the 429.
    observe_sent(
        pacing.as_mut(),
        secs(1),
        0,
        ms(1020),
        Outcome::error(429, sixty_rpm(0), "rate_limit_exceeded"),
    );
    assert_eq!(admit(pacing.as_mut(), ms(1020), 0), ms(9980));
    // A slow answer to an older send (the one at 0 s, reporting 59 left) is stale next to
    // the 429 sent later, and changes nothing.
    observe_sent(
        pacing.as_mut(),
        Duration::ZERO,
        0,
        ms(1100),
        Outcome::response(200, sixty_rpm(59)),
    );
    assert_eq!(admit(pacing.as_mut(), ms(1100), 0), ms(10_900));
}

/// A one-client server for driving a strategy through many requests: a 60 RPM token bucket
/// (capacity 60, one request a second) that answers with OpenAI's request headers. Successes
/// take `1 s` to answer, rejections `20 ms`. Returns the send times and the number of 429s.
fn drive_against_sixty_rpm(
    strategy: Box<dyn Strategy>,
    arrivals: impl IntoIterator<Item = Duration>,
) -> (Vec<Duration>, usize) {
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Step {
        Ask,
        Send,
        Answer,
    }
    let mut client = RetryClient::new(strategy);
    let mut rng = Script::new(&[]);
    let mut requests = Vec::new();
    let mut events = BinaryHeap::new();
    for (index, at) in arrivals.into_iter().enumerate() {
        requests.push(RequestState::new(at, 0));
        events.push(Reverse((at, index, Step::Ask)));
    }
    let (mut level, mut level_at) = (60.0_f64, Duration::ZERO);
    let mut answers = vec![None; requests.len()];
    let (mut sends, mut rejections) = (Vec::new(), 0);
    while let Some(Reverse((now, index, step))) = events.pop() {
        let request = &mut requests[index];
        match step {
            Step::Ask => match client.before_attempt(request, now, &mut rng) {
                Admission::Send { after } => {
                    events.push(Reverse((now + after, index, Step::Send)));
                }
                Admission::GiveUp { .. } => {}
            },
            Step::Send => {
                sends.push(now);
                level = (level + (now - level_at).as_secs_f64()).min(60.0);
                level_at = now;
                let admitted = level >= 1.0;
                if admitted {
                    level -= 1.0;
                }
                let remaining = level.floor() as u64;
                let headers = Headers::new().with_requests(RateLimitWindow {
                    limit: 60,
                    remaining,
                    reset: Duration::from_millis(((60.0 - level) * 1000.0).ceil() as u64),
                });
                let (outcome, latency) = if admitted {
                    (Outcome::response(200, headers), secs(1))
                } else {
                    rejections += 1;
                    let outcome = Outcome::error(429, headers, "rate_limit_exceeded");
                    (outcome, ms(20))
                };
                answers[index] = Some(outcome);
                events.push(Reverse((now + latency, index, Step::Answer)));
            }
            Step::Answer => {
                let outcome = answers[index].take().expect("an answer was sent");
                if let Decision::Retry { after } =
                    client.after_outcome(request, &outcome, now, &mut rng)
                {
                    events.push(Reverse((now + after, index, Step::Ask)));
                }
            }
        }
    }
    (sends, rejections)
}

#[test]
fn header_pacing_alone_on_the_server_sends_only_what_the_headers_allow() {
    // Four requests a second for two minutes against one a second: 480 requests, of which the
    // bucket's 60 and the refill take 180 in the two minutes. Every send after the bucket
    // empties must wait for the refill the headers announce.
    let arrivals = (0..480).map(|index| ms(250 * index));
    let (sends, rejections) = drive_against_sixty_rpm(build("header-pacing:inner=none"), arrivals);
    assert_eq!(rejections, 0, "a lone client reading the headers met 429s");
    assert_eq!(sends.len(), 480, "every request is sent once");
    // And it does not hold back more than it must: the last send is due when the bucket
    // (60 at the start, one a second after) has admitted all 480.
    let last = *sends.iter().max().unwrap();
    assert!(last <= secs(421), "last send at {last:?}");
    // The same load without pacing meets the limit.
    let (_, unpaced) = drive_against_sixty_rpm(build("none"), (0..480).map(|i| ms(250 * i)));
    assert!(unpaced > 200, "{unpaced}");
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

/// Drives `adaptive` (its inner strategy never retries) through requests arriving at
/// `arrivals`: a send before `overload_ends` is answered 429 after 20 ms, a later one 200 after
/// 100 ms. Returns each request's (arrival, pacing wait).
fn drive_adaptive(
    adaptive: &mut AwsAdaptive,
    arrivals: &[Duration],
    overload_ends: Duration,
) -> Vec<(Duration, Duration)> {
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Step {
        Ask,
        Answer,
    }
    let mut events: BinaryHeap<_> = arrivals
        .iter()
        .enumerate()
        .map(|(index, at)| Reverse((*at, index, Step::Ask)))
        .collect();
    let mut requests: Vec<RequestState> = arrivals
        .iter()
        .map(|at| RequestState::new(*at, 0))
        .collect();
    let mut waits = Vec::new();
    let mut rng = Script::new(&[]);
    while let Some(Reverse((now, index, step))) = events.pop() {
        let request = &mut requests[index];
        match step {
            Step::Ask => {
                let Admission::Send { after } = adaptive.before_attempt(request, now, &mut rng)
                else {
                    panic!("adaptive mode never refuses a send");
                };
                request.record_send(now + after);
                waits.push((now, after));
                let latency = if now + after < overload_ends {
                    ms(20)
                } else {
                    ms(100)
                };
                events.push(Reverse((now + after + latency, index, Step::Answer)));
            }
            Step::Answer => {
                let sent_at = request.last_send.expect("sent");
                let outcome = if sent_at < overload_ends {
                    Outcome::error(429, Headers::new(), "rate_limit_exceeded")
                } else {
                    Outcome::ok()
                };
                adaptive.after_outcome(request, &outcome, now, &mut rng);
            }
        }
    }
    waits
}

#[test]
fn aws_adaptive_recovers_its_rate_once_the_overload_ends() {
    let mut adaptive = AwsAdaptive::new(never());
    // Twenty requests a second for 10 s, all throttled: the rate falls to the minimum and a
    // queue builds. Then two a second for 10 minutes, all answered: a tenth of what the
    // client sent before, which a recovered client sends as they come.
    let overload: Vec<Duration> = (0..200).map(|index| ms(50 * index)).collect();
    let calm: Vec<Duration> = (0..1200).map(|index| secs(10) + ms(500 * index)).collect();
    let arrivals: Vec<Duration> = overload.iter().chain(&calm).copied().collect();
    let waits = drive_adaptive(&mut adaptive, &arrivals, secs(10));
    let rate = adaptive.fill_rate().expect("enabled by the throttles");
    assert!(rate >= 2.0, "fill rate {rate}/s after 10 minutes at 2/s");
    // Requests that arrive once the rate has recovered are not held behind the old queue.
    // (The requests queued during the overload keep the late send times they were given at
    // 0.5/s, the deviation `AwsAdaptive` documents.)
    let worst_late_wait = waits
        .iter()
        .filter(|(arrived, _)| *arrived >= secs(40))
        .map(|(_, wait)| *wait)
        .max()
        .unwrap();
    assert!(
        worst_late_wait <= secs(1),
        "a request arriving after 30 s of calm waited {worst_late_wait:?}"
    );
}
