//! Behaviour of each algorithm and option: quantization, rejection debt, request-too-large,
//! atomic multi-scope checks, limit changes and bounded memory.

use std::time::Duration;

use quota::{
    Algorithm, Charge, Instant, LimitKind, LimitSet, Limiter, RejectedRequests, Scope, ScopedKey,
};

use crate::{ALGORITHMS, compile, org};

const SECOND: u64 = 1_000_000_000;

#[test]
fn every_algorithm_admits_the_limit_then_rejects_until_the_wait() {
    for algorithm in ALGORITHMS {
        let limits = compile(LimitSet {
            rpm: Some(60),
            algorithm,
            rejected_requests: RejectedRequests::Free,
            ..LimitSet::default()
        });
        let mut limiter = Limiter::new();
        let scopes = [org(&1, &limits)];
        let start = Instant::from_nanos(0);
        for _ in 0..60 {
            limiter
                .try_acquire(start, Charge::request(0), &scopes)
                .unwrap();
        }
        let Err(rejection) = limiter.try_acquire(start, Charge::request(0), &scopes) else {
            panic!("{algorithm:?} admitted a 61st request");
        };
        assert_eq!(rejection.kind, LimitKind::Rpm, "{algorithm:?}");
        let wait = rejection.retry_after.expect("one request fits eventually");
        assert!(wait > Duration::ZERO, "{algorithm:?}");
        let retry = start + wait;
        assert!(
            limiter
                .try_acquire(retry, Charge::request(0), &scopes)
                .is_ok(),
            "{algorithm:?} waited {wait:?}"
        );
    }
}

#[test]
fn fixed_window_resets_at_the_window_boundary() {
    let limits = compile(LimitSet {
        rpm: Some(2),
        algorithm: Algorithm::FixedWindow,
        rejected_requests: RejectedRequests::CountPerMinute,
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &limits)];
    let late = Instant::from_nanos(59 * SECOND);
    limiter
        .try_acquire(late, Charge::request(0), &scopes)
        .unwrap();
    limiter
        .try_acquire(late, Charge::request(0), &scopes)
        .unwrap();
    let rejection = limiter
        .try_acquire(late, Charge::request(0), &scopes)
        .unwrap_err();
    // A counted rejection never carries past the window.
    assert_eq!(rejection.retry_after, Some(Duration::from_secs(1)));
    let next_window = Instant::from_nanos(60 * SECOND);
    limiter
        .try_acquire(next_window, Charge::request(0), &scopes)
        .unwrap();
}

#[test]
fn quantization_enforces_a_quantums_share() {
    let quantized = compile(LimitSet {
        rpm: Some(60_000),
        quantum_ms: Some(1_000),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &quantized)];
    for _ in 0..1_000 {
        limiter
            .try_acquire(Instant::ZERO, Charge::request(0), &scopes)
            .unwrap();
    }
    let rejection = limiter
        .try_acquire(Instant::ZERO, Charge::request(0), &scopes)
        .unwrap_err();
    assert_eq!(rejection.limit, 60_000);
    assert_eq!(rejection.used, 1_000, "a quantum's share is in use");
    // One request refills every millisecond.
    assert_eq!(rejection.retry_after, Some(Duration::from_millis(1)));

    let whole_minute = compile(LimitSet {
        rpm: Some(60_000),
        ..LimitSet::default()
    });
    let scopes = [org(&2, &whole_minute)];
    for _ in 0..60_000 {
        limiter
            .try_acquire(Instant::ZERO, Charge::request(0), &scopes)
            .unwrap();
    }
}

#[test]
fn a_client_resending_without_backoff_stays_locked_out_when_rejections_count() {
    let limits = compile(LimitSet {
        rpm: Some(60),
        rejected_requests: RejectedRequests::CountPerMinute,
        ..LimitSet::default()
    });
    let mut hammer = Limiter::new();
    let scopes = [org(&1, &limits)];
    let mut now = Instant::ZERO;
    for _ in 0..60 {
        hammer
            .try_acquire(now, Charge::request(0), &scopes)
            .unwrap();
    }
    // Resending twice per second, faster than the refill of one per second: never admitted.
    for _ in 0..600 {
        now += Duration::from_millis(500);
        let rejection = hammer
            .try_acquire(now, Charge::request(0), &scopes)
            .unwrap_err();
        assert_eq!(
            rejection.used, 60,
            "a rejection never puts the limit in debt"
        );
    }
    // Honouring the returned wait gets through every time.
    let mut patient = Limiter::new();
    let mut now = Instant::ZERO;
    for _ in 0..60 {
        patient
            .try_acquire(now, Charge::request(0), &scopes)
            .unwrap();
    }
    for _ in 0..100 {
        let rejection = patient
            .try_acquire(now, Charge::request(0), &scopes)
            .unwrap_err();
        now += rejection.retry_after.unwrap();
        patient
            .try_acquire(now, Charge::request(0), &scopes)
            .unwrap();
    }
}

#[test]
fn a_request_above_the_limit_never_fits() {
    let limits = compile(LimitSet {
        rpm: Some(500),
        tpm: Some(30_000),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let rejection = limiter
        .try_acquire(Instant::ZERO, Charge::request(30_001), &[org(&1, &limits)])
        .unwrap_err();
    assert_eq!(rejection.kind, LimitKind::Tpm);
    assert!(rejection.is_request_too_large());
    assert_eq!(rejection.requested, 30_001);
}

#[test]
fn an_absurd_charge_is_too_large_under_every_algorithm_never_a_panic() {
    for algorithm in ALGORITHMS {
        let limits = compile(LimitSet {
            rpm: Some(500),
            tpm: Some(30_000),
            algorithm,
            ..LimitSet::default()
        });
        let mut limiter = Limiter::new();
        let scopes = [org(&1, &limits)];
        limiter
            .try_acquire(Instant::ZERO, Charge::request(100), &scopes)
            .unwrap();
        let rejection = limiter
            .try_acquire(Instant::ZERO, Charge::request(u64::MAX), &scopes)
            .unwrap_err();
        assert_eq!(rejection.kind, LimitKind::Tpm, "{algorithm:?}");
        assert!(rejection.is_request_too_large(), "{algorithm:?}");
        assert_eq!(rejection.requested, u64::MAX, "{algorithm:?}");
    }
}

#[test]
fn a_project_rejection_charges_neither_scope() {
    let org_limits = compile(LimitSet {
        tpm: Some(10_000),
        ..LimitSet::default()
    });
    let project_limits = compile(LimitSet {
        tpm: Some(1_000),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [
        org(&1, &org_limits),
        ScopedKey {
            scope: Scope::Project,
            key: &2,
            limits: &project_limits,
        },
    ];
    limiter
        .try_acquire(Instant::ZERO, Charge::request(900), &scopes)
        .unwrap();
    let rejection = limiter
        .try_acquire(Instant::ZERO, Charge::request(500), &scopes)
        .unwrap_err();
    assert_eq!((rejection.scope, rejection.used), (Scope::Project, 900));
    let statuses = limiter.status(Instant::ZERO, &scopes);
    assert_eq!(
        statuses[0].remaining, 9_100,
        "the organization kept its tokens"
    );
    assert_eq!(statuses[1].remaining, 100);
}

#[test]
fn changed_limits_start_the_key_afresh() {
    let tier_1 = compile(LimitSet {
        rpm: Some(1),
        ..LimitSet::default()
    });
    let tier_2 = compile(LimitSet {
        rpm: Some(2),
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    limiter
        .try_acquire(Instant::ZERO, Charge::request(0), &[org(&1, &tier_1)])
        .unwrap();
    assert!(
        limiter
            .try_acquire(Instant::ZERO, Charge::request(0), &[org(&1, &tier_1)])
            .is_err()
    );
    limiter
        .try_acquire(Instant::ZERO, Charge::request(0), &[org(&1, &tier_2)])
        .unwrap();
    // The same content compiled again is the same limits: the state is kept.
    let tier_2_again = compile(LimitSet {
        rpm: Some(2),
        ..LimitSet::default()
    });
    limiter
        .try_acquire(Instant::ZERO, Charge::request(0), &[org(&1, &tier_2_again)])
        .unwrap();
    assert!(
        limiter
            .try_acquire(Instant::ZERO, Charge::request(0), &[org(&1, &tier_2)])
            .is_err()
    );
}

#[test]
fn a_key_moving_between_token_bucket_and_other_algorithms_starts_afresh_each_time() {
    // Token buckets and the other algorithms keep per-key state in different layouts; a key
    // whose limits move between them is one key that starts afresh, as for any limit change.
    let bucket = compile(LimitSet {
        rpm: Some(1),
        ..LimitSet::default()
    });
    let log = compile(LimitSet {
        rpm: Some(1),
        algorithm: Algorithm::SlidingWindowLog,
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    for limits in [&bucket, &log, &bucket] {
        let scopes = [org(&1, limits)];
        limiter
            .try_acquire(Instant::ZERO, Charge::request(0), &scopes)
            .unwrap();
        assert!(
            limiter
                .try_acquire(Instant::ZERO, Charge::request(0), &scopes)
                .is_err()
        );
        assert_eq!(limiter.len(), 1);
    }
}

#[test]
fn token_buckets_wait_exactly_whether_their_levels_fit_64_bits_or_not() {
    // 1,000,000 TPD keeps its scaled level in 64 bits; 1,000,003 (a prime) needs 128 bits.
    // Both must refill at exactly limit / window: one token takes 86,400 s / limit.
    for (tpd, wait_nanos) in [(1_000_000, 86_400_000), (1_000_003, 86_399_741)] {
        let limits = compile(LimitSet {
            rpm: Some(500),
            tpd: Some(tpd),
            ..LimitSet::default()
        });
        let mut limiter = Limiter::new();
        let scopes = [org(&1, &limits)];
        limiter
            .try_acquire(Instant::ZERO, Charge::request(tpd), &scopes)
            .unwrap();
        let rejection = limiter
            .try_acquire(Instant::ZERO, Charge::request(1), &scopes)
            .unwrap_err();
        assert_eq!(rejection.kind, LimitKind::Tpd, "{tpd}");
        assert_eq!((rejection.used, rejection.requested), (tpd, 1), "{tpd}");
        let wait = rejection.retry_after.expect("one token fits eventually");
        assert_eq!(wait, Duration::from_nanos(wait_nanos), "{tpd}");
        let just_before = Instant::from_nanos(wait_nanos - 1);
        assert!(
            limiter
                .try_acquire(just_before, Charge::request(1), &scopes)
                .is_err(),
            "{tpd}"
        );
        assert!(
            limiter
                .try_acquire(Instant::ZERO + wait, Charge::request(1), &scopes)
                .is_ok(),
            "{tpd}"
        );
    }
}

#[test]
fn idle_full_keys_are_dropped_so_memory_stays_bounded() {
    for algorithm in ALGORITHMS {
        let limits = compile(LimitSet {
            rpm: Some(10),
            tpm: Some(1_000),
            algorithm,
            ..LimitSet::default()
        });
        let mut limiter = Limiter::new();
        // One new key every 10 ms. A bucket is full again 6 s after use (one request of 10
        // RPM), a fixed window or log after at most 60 s, a sliding counter after 120 s: that
        // many keys are live at once, and the store holds at most twice the live keys (it
        // sweeps when it doubles) or the minimum before sweeping.
        let live_nanos = match algorithm {
            Algorithm::FixedWindow | Algorithm::SlidingWindowLog => 60 * SECOND,
            Algorithm::SlidingWindowCounter => 120 * SECOND,
            _ => 6 * SECOND,
        };
        let bound = (2 * live_nanos / 10_000_000) as usize + 1_024;
        for index in 0..200_000u64 {
            let now = Instant::from_nanos(index * 10_000_000);
            limiter
                .try_acquire(now, Charge::request(10), &[org(&index, &limits)])
                .unwrap();
            assert!(
                limiter.len() <= bound,
                "{algorithm:?}: {} keys",
                limiter.len()
            );
        }
        let end = Instant::from_nanos(200_000 * 10_000_000 + 120 * SECOND);
        limiter.evict_idle(end);
        assert!(limiter.is_empty(), "{algorithm:?}");
    }
}

#[test]
fn under_free_rejections_a_resending_client_gets_through_as_the_bucket_refills() {
    let limits = compile(LimitSet {
        rpm: Some(60),
        rejected_requests: RejectedRequests::Free,
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &limits)];
    let mut now = Instant::ZERO;
    for _ in 0..60 {
        limiter
            .try_acquire(now, Charge::request(0), &scopes)
            .unwrap();
    }
    // Resending twice per second: every other attempt finds a refilled request.
    let mut admitted = 0;
    for _ in 0..600 {
        now += Duration::from_millis(500);
        admitted += u32::from(
            limiter
                .try_acquire(now, Charge::request(0), &scopes)
                .is_ok(),
        );
    }
    assert_eq!(admitted, 300);
}

#[test]
fn a_counted_rejection_takes_what_has_refilled_and_reports_the_state_it_found() {
    // RPM 3: one request refills every 20 s. Half a request has refilled at 10 s.
    let limits = compile(LimitSet {
        rpm: Some(3),
        rejected_requests: RejectedRequests::CountPerMinute,
        ..LimitSet::default()
    });
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &limits)];
    for _ in 0..3 {
        limiter
            .try_acquire(Instant::ZERO, Charge::request(0), &scopes)
            .unwrap();
    }
    let at = Instant::from_nanos(10 * SECOND);
    let rejection = limiter
        .try_acquire(at, Charge::request(0), &scopes)
        .unwrap_err();
    // Reported as found: 2.5 in use rounds up to 3, and a request fits 10 s later.
    assert_eq!((rejection.used, rejection.limit), (3, 3));
    assert_eq!(rejection.retry_after, Some(Duration::from_secs(10)));
    // The rejection took the half request that had refilled: the bucket is full again, so the
    // next request fits only 20 s after the rejection.
    let statuses = limiter.status(at, &scopes);
    assert_eq!(statuses[0].remaining, 0);
    assert_eq!(statuses[0].reset, Duration::from_secs(60));
    assert!(
        limiter
            .clone()
            .try_acquire(at + Duration::from_secs(10), Charge::request(0), &scopes)
            .is_err()
    );
    assert!(
        limiter
            .try_acquire(at + Duration::from_secs(20), Charge::request(0), &scopes)
            .is_ok()
    );
}

#[test]
fn quantization_leaves_daily_limits_whole() {
    // A 10 s quantum on a tier with an RPD used to cut the RPD to max(1, RPD x 10 s / 1 day).
    let limits = compile(LimitSet {
        rpm: Some(500),
        rpd: Some(10_000),
        quantum_ms: Some(10_000),
        ..LimitSet::default()
    });
    let capacities: Vec<(LimitKind, u64)> = limits
        .rules()
        .map(|rule| (rule.kind, rule.capacity))
        .collect();
    assert_eq!(capacities, [(LimitKind::Rpm, 83), (LimitKind::Rpd, 10_000)]);
    // Paced at the RPM's rate, 500 requests in the first minute are all admitted; the RPD would
    // have stopped the second one.
    let mut limiter = Limiter::new();
    let scopes = [org(&1, &limits)];
    for request in 0..500u64 {
        let now = Instant::from_nanos(request * 120_000_000);
        assert!(
            limiter
                .try_acquire(now, Charge::request(0), &scopes)
                .is_ok(),
            "request {request} rejected"
        );
    }
}
