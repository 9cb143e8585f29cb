//! State machines of the retry budgets and the circuit breaker.

use std::time::Duration;

use retry::{
    Admission, AwsRetryQuota, Backoff, BackoffStrategy, BreakerState, CircuitBreaker, Decision,
    FinagleBudget, GiveUpReason, GrpcThrottle, Headers, Outcome, RequestState, Retryable,
    SreAdaptiveThrottle, Strategy,
};

use crate::{Script, ms, secs};

fn fixed(delay: Duration) -> Box<dyn Strategy> {
    Box::new(BackoffStrategy::new(
        Backoff::Fixed { delay },
        Retryable::Transient,
    ))
}

fn busy() -> Outcome {
    Outcome::response(503, Headers::new())
}

/// Sends one attempt of `request` at `now` and reports `outcome`, as `RetryClient` does.
fn attempt(
    strategy: &mut dyn Strategy,
    request: &mut RequestState,
    now: Duration,
    outcome: &Outcome,
    rng: &mut dyn rand::RngCore,
) -> Decision {
    match strategy.before_attempt(request, now, rng) {
        Admission::Send { after } => request.record_send(now + after),
        Admission::GiveUp { reason } => return Decision::GiveUp { reason },
    }
    let decision = strategy.after_outcome(request, outcome, now, rng);
    request.record_decision(decision);
    decision
}

const EXHAUSTED: Decision = Decision::GiveUp {
    reason: GiveUpReason::BudgetExhausted,
};

#[test]
fn aws_retry_quota_drains_by_cost_and_refunds_on_success() {
    let mut quota = AwsRetryQuota::new(fixed(ms(1)), 500, 5, 10);
    let mut rng = Script::new(&[]);
    let mut request = RequestState::new(Duration::ZERO, 0);
    for _ in 0..100 {
        let decision = attempt(&mut quota, &mut request, Duration::ZERO, &busy(), &mut rng);
        assert_eq!(decision, Decision::Retry { after: ms(1) });
    }
    assert_eq!(quota.available(), 0);
    assert_eq!(
        attempt(&mut quota, &mut request, Duration::ZERO, &busy(), &mut rng),
        EXHAUSTED
    );
    // The request that retried succeeds: it refunds its last retry's cost.
    let done = attempt(
        &mut quota,
        &mut request,
        Duration::ZERO,
        &Outcome::ok(),
        &mut rng,
    );
    assert_eq!(done, Decision::Done);
    assert_eq!(quota.available(), 5);
    // A timeout costs 10: not affordable with 5 left.
    let mut fresh = RequestState::new(Duration::ZERO, 0);
    assert_eq!(
        attempt(
            &mut quota,
            &mut fresh,
            Duration::ZERO,
            &Outcome::Timeout,
            &mut rng
        ),
        EXHAUSTED
    );
    // A success without retries adds 1.
    let mut clean = RequestState::new(Duration::ZERO, 0);
    attempt(
        &mut quota,
        &mut clean,
        Duration::ZERO,
        &Outcome::ok(),
        &mut rng,
    );
    assert_eq!(quota.available(), 6);
}

#[test]
fn aws_retry_quota_never_exceeds_capacity() {
    let mut quota = AwsRetryQuota::new(fixed(ms(1)), 500, 5, 10);
    let mut rng = Script::new(&[]);
    for _ in 0..10 {
        let mut request = RequestState::new(Duration::ZERO, 0);
        attempt(
            &mut quota,
            &mut request,
            Duration::ZERO,
            &Outcome::ok(),
            &mut rng,
        );
    }
    assert_eq!(quota.available(), 500);
}

#[test]
fn grpc_throttle_blocks_retries_at_half_the_tokens() {
    let mut throttle = GrpcThrottle::new(fixed(ms(1)), 10.0, 0.1);
    let mut rng = Script::new(&[]);
    let mut request = RequestState::new(Duration::ZERO, 0);
    for expected_tokens in [9.0, 8.0, 7.0, 6.0] {
        let decision = attempt(
            &mut throttle,
            &mut request,
            Duration::ZERO,
            &busy(),
            &mut rng,
        );
        assert_eq!(decision, Decision::Retry { after: ms(1) });
        assert_eq!(throttle.tokens(), expected_tokens);
    }
    // 6 - 1 = 5 is at the threshold max/2: no retry.
    assert_eq!(
        attempt(
            &mut throttle,
            &mut request,
            Duration::ZERO,
            &busy(),
            &mut rng
        ),
        EXHAUSTED
    );
    for _ in 0..15 {
        let mut ok = RequestState::new(Duration::ZERO, 0);
        attempt(
            &mut throttle,
            &mut ok,
            Duration::ZERO,
            &Outcome::ok(),
            &mut rng,
        );
    }
    assert!(
        (throttle.tokens() - 6.5).abs() < 1e-9,
        "{}",
        throttle.tokens()
    );
    let mut next = RequestState::new(Duration::ZERO, 0);
    assert_eq!(
        attempt(&mut throttle, &mut next, Duration::ZERO, &busy(), &mut rng),
        Decision::Retry { after: ms(1) }
    );
}

#[test]
fn finagle_budget_allows_a_percent_of_recent_requests() {
    let mut budget = FinagleBudget::new(fixed(ms(1)), secs(10), 0.0, 0.5);
    let mut rng = Script::new(&[]);
    let mut requests: Vec<RequestState> = (0..4)
        .map(|_| RequestState::new(Duration::ZERO, 0))
        .collect();
    // Four requests send their first attempts, then all fail.
    for request in &mut requests {
        assert_eq!(
            budget.before_attempt(request, Duration::ZERO, &mut rng),
            Admission::NOW
        );
        request.record_send(Duration::ZERO);
    }
    let decisions: Vec<Decision> = requests
        .iter_mut()
        .map(|request| budget.after_outcome(request, &busy(), Duration::ZERO, &mut rng))
        .collect();
    let retries = decisions
        .iter()
        .filter(|decision| matches!(decision, Decision::Retry { .. }))
        .count();
    // 4 x 0.5 = 2 retries; the third and fourth are refused.
    assert_eq!(retries, 2, "{decisions:?}");
    assert_eq!(decisions[2..], [EXHAUSTED, EXHAUSTED]);
    // After the ttl the deposits and withdrawals have expired: only the reserve (0) is left.
    assert_eq!(budget.balance(secs(11)), 0.0);
    let mut reserve = FinagleBudget::new(fixed(ms(1)), secs(10), 10.0, 0.2);
    assert_eq!(reserve.balance(Duration::ZERO), 100.0);
}

#[test]
fn sre_throttle_rejects_with_probability_from_requests_and_accepts() {
    let mut throttle = SreAdaptiveThrottle::new(fixed(ms(1)), 2.0, secs(120));
    // Nine throttled attempts, each admitted with a draw of 0.99.
    let mut rng = Script::new(&[0.99; 9]);
    for _ in 0..9 {
        let mut request = RequestState::new(Duration::ZERO, 0);
        attempt(
            &mut throttle,
            &mut request,
            Duration::ZERO,
            &busy(),
            &mut rng,
        );
    }
    // requests 9, accepts 0: p = 9 / 10.
    assert!((throttle.rejection_probability(Duration::ZERO) - 0.9).abs() < 1e-12);
    let mut request = RequestState::new(Duration::ZERO, 0);
    let mut low_draw = Script::new(&[0.875]);
    assert_eq!(
        throttle.before_attempt(&mut request, Duration::ZERO, &mut low_draw),
        Admission::GiveUp {
            reason: GiveUpReason::ClientThrottled
        }
    );
    // The local rejection counted as a request: p = 10 / 11.
    assert!((throttle.rejection_probability(Duration::ZERO) - 10.0 / 11.0).abs() < 1e-12);
    // Accepts pull it to zero: 10 requests need 5 accepts with K = 2.
    let mut admitted = Script::new(&[0.999; 6]);
    for _ in 0..6 {
        let mut request = RequestState::new(Duration::ZERO, 0);
        attempt(
            &mut throttle,
            &mut request,
            Duration::ZERO,
            &Outcome::ok(),
            &mut admitted,
        );
    }
    // requests 16, accepts 6: (16 - 12) / 17.
    assert!((throttle.rejection_probability(Duration::ZERO) - 4.0 / 17.0).abs() < 1e-12);
    // History older than the window is forgotten.
    assert_eq!(throttle.rejection_probability(secs(121)), 0.0);
}

#[test]
fn circuit_breaker_opens_fails_fast_and_probes_half_open() {
    let mut breaker = CircuitBreaker::new(fixed(ms(100)), 3, secs(5));
    let mut rng = Script::new(&[]);
    let closed = |failures| BreakerState::Closed {
        consecutive_failures: failures,
    };
    // A success resets the count.
    let mut request = RequestState::new(Duration::ZERO, 0);
    attempt(
        &mut breaker,
        &mut request,
        Duration::ZERO,
        &busy(),
        &mut rng,
    );
    assert_eq!(breaker.state(), closed(1));
    let mut ok = RequestState::new(Duration::ZERO, 0);
    attempt(
        &mut breaker,
        &mut ok,
        Duration::ZERO,
        &Outcome::ok(),
        &mut rng,
    );
    assert_eq!(breaker.state(), closed(0));
    // A 400 is not a failure signal.
    let mut bad = RequestState::new(Duration::ZERO, 0);
    attempt(
        &mut breaker,
        &mut bad,
        Duration::ZERO,
        &Outcome::response(400, Headers::new()),
        &mut rng,
    );
    assert_eq!(breaker.state(), closed(0));

    let mut request = RequestState::new(Duration::ZERO, 0);
    for now in [secs(0), secs(0)] {
        let decision = attempt(&mut breaker, &mut request, now, &busy(), &mut rng);
        assert_eq!(decision, Decision::Retry { after: ms(100) });
    }
    // The third failure opens it; the retry would land inside the open window.
    let decision = attempt(&mut breaker, &mut request, secs(1), &busy(), &mut rng);
    assert_eq!(
        decision,
        Decision::GiveUp {
            reason: GiveUpReason::CircuitOpen
        }
    );
    assert_eq!(breaker.state(), BreakerState::Open { until: secs(6) });
    let open = Admission::GiveUp {
        reason: GiveUpReason::CircuitOpen,
    };
    let mut other = RequestState::new(secs(2), 0);
    assert_eq!(breaker.before_attempt(&mut other, secs(2), &mut rng), open);

    // After the break one probe goes; a second concurrent request fails fast.
    let mut probe = RequestState::new(secs(6), 0);
    assert_eq!(
        breaker.before_attempt(&mut probe, secs(6), &mut rng),
        Admission::NOW
    );
    assert_eq!(
        breaker.state(),
        BreakerState::HalfOpen {
            probe_in_flight: true
        }
    );
    let mut concurrent = RequestState::new(secs(6), 0);
    assert_eq!(
        breaker.before_attempt(&mut concurrent, secs(6), &mut rng),
        open
    );
    // The probe fails: open again for another 5 s.
    breaker.after_outcome(&mut probe, &busy(), secs(7), &mut rng);
    assert_eq!(breaker.state(), BreakerState::Open { until: secs(12) });
    // The next probe succeeds: closed.
    let mut probe = RequestState::new(secs(12), 0);
    assert_eq!(
        attempt(&mut breaker, &mut probe, secs(12), &Outcome::ok(), &mut rng),
        Decision::Done
    );
    assert_eq!(breaker.state(), closed(0));
}
