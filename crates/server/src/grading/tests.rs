//! Grading on scripted attempts with known answers: logical requests, early and clustered
//! retries, the storm share, answers not to retry, tokens charged and wasted, and the records.

use results::{AttemptOutcome, LimitKind};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn limited(retry_after_ms: u64) -> Answer {
    Answer::RateLimited {
        retry_after: Some(MS * retry_after_ms as u32),
        insufficient_quota: false,
        limit: LimitKind::Rpm,
    }
}

/// Sends one attempt at `at_ms` answered `answer` 10 ms later.
fn attempt(grader: &Grader, at_ms: u32, key: &str, body: u64, answer: Answer) {
    let ticket = grader.begin_with(MS * at_ms, Some(key), LogicalId::Body(body), false);
    grader.finish(ticket, MS * (at_ms + 10), Ending::answered(answer));
}

#[test]
fn a_retry_after_the_stated_wait_is_on_time_and_one_before_it_is_early() {
    let grader = Grader::new();
    attempt(&grader, 0, "sk-a", 1, limited(1000));
    // Answered at 10 ms with 1 s to wait: 1010 ms is on time.
    attempt(&grader, 1010, "sk-a", 1, limited(1000));
    // Answered at 1020 ms: 2019 ms is 1 ms early.
    attempt(&grader, 2019, "sk-a", 1, Answer::Success);
    let grade = grader.grade().total;
    assert_eq!(
        (grade.requests, grade.logical_requests, grade.retries),
        (3, 1, 2)
    );
    assert_eq!(grade.early_retries, 1);
    assert_eq!(
        (grade.succeeded, grade.gave_up, grade.max_attempts),
        (1, 0, 3)
    );
}

#[test]
fn the_same_body_after_a_success_or_past_the_window_is_a_new_logical_request() {
    let grader = Grader::new();
    attempt(&grader, 0, "sk-a", 1, Answer::Success);
    attempt(&grader, 100, "sk-a", 1, limited(0));
    let past_window = 110 + LOGICAL_WINDOW.as_millis() as u32 + 1;
    attempt(&grader, past_window, "sk-a", 1, Answer::Success);
    let grade = grader.grade().total;
    assert_eq!((grade.logical_requests, grade.retries), (3, 0));
    assert_eq!((grade.succeeded, grade.gave_up), (2, 1));
}

#[test]
fn keys_and_bodies_separate_logical_requests_and_keys_are_graded_apart() {
    let grader = Grader::new();
    attempt(&grader, 0, "sk-aaaaaaaa1111", 1, limited(500));
    attempt(&grader, 0, "sk-bbbbbbbb2222", 1, limited(500));
    attempt(&grader, 100, "sk-aaaaaaaa1111", 1, Answer::Success);
    attempt(&grader, 600, "sk-bbbbbbbb2222", 2, Answer::Success);
    let grading = grader.grade();
    assert_eq!(grading.total.logical_requests, 3);
    assert_eq!(grading.total.early_retries, 1);
    assert_eq!(grading.keys.len(), 2);
    let early: Vec<u64> = grading.keys.values().map(|key| key.early_retries).collect();
    assert_eq!(early, [1, 0]);
    // The key that gave its first request up.
    let gave_up: Vec<u64> = grading.keys.values().map(|key| key.gave_up).collect();
    assert_eq!(gave_up, [0, 1]);
    assert!(
        grading
            .keys
            .keys()
            .all(|name| !name.contains("aaaaaaaa1111"))
    );
}

#[test]
fn explicit_ids_join_across_bodies_and_a_concurrent_twin_is_not_a_retry() {
    let grader = Grader::new();
    let first = grader.begin_with(Duration::ZERO, Some("k"), LogicalId::Explicit(7), false);
    // The same body while the first is still being served: a second logical request.
    let twin = grader.begin_with(MS, Some("k"), LogicalId::Body(1), false);
    let other = grader.begin_with(MS, Some("k"), LogicalId::Body(1), false);
    grader.finish(first, MS * 5, Ending::answered(limited(0)));
    grader.finish(twin, MS * 5, Ending::answered(Answer::Success));
    grader.finish(other, MS * 5, Ending::answered(Answer::Success));
    attempt(&grader, 20, "k", 0, Answer::Success);
    let retry = grader.begin_with(MS * 40, Some("k"), LogicalId::Explicit(7), false);
    grader.finish(retry, MS * 50, Ending::answered(Answer::Success));
    let grade = grader.grade().total;
    assert_eq!(
        (grade.requests, grade.logical_requests, grade.retries),
        (5, 4, 1)
    );
}

#[test]
fn retries_of_answers_that_said_not_to_retry_are_counted() {
    let grader = Grader::new();
    let quota = Answer::RateLimited {
        retry_after: None,
        insufficient_quota: true,
        limit: LimitKind::Other,
    };
    attempt(&grader, 0, "k", 1, quota);
    attempt(&grader, 20, "k", 1, quota);
    let ticket = grader.begin_with(MS * 100, Some("k"), LogicalId::Body(2), false);
    grader.finish(
        ticket,
        MS * 110,
        Ending {
            should_not_retry: true,
            ..Ending::answered(Answer::Failed { status: 500 })
        },
    );
    attempt(&grader, 120, "k", 2, Answer::Success);
    let grade = grader.grade().total;
    assert_eq!(grade.retried_insufficient_quota, 1);
    assert_eq!(grade.retried_should_not_retry, 1);
    // A 429 without a stated wait makes no retry early.
    assert_eq!(grade.early_retries, 0);
}

#[test]
fn a_burst_of_immediate_retries_is_a_storm_and_clustered() {
    let grader = Grader::new();
    // Two logical requests, each retried four times 20 ms apart: 10 attempts in 200 ms,
    // 8 of them retries, the storm share of the reports' definition.
    for round in 0..5u32 {
        for body in 0..2u64 {
            attempt(&grader, round * 20 + body as u32, "k", body, limited(1000));
        }
    }
    let grade = grader.grade().total;
    assert_eq!(grade.retries, 8);
    assert_eq!(grade.storm_share, Some(0.8));
    let expected =
        results::storm_share((0..5u64).flat_map(|round| {
            (0..2u64).map(move |body| ((round * 20 + body) * 1_000_000, round > 0))
        }));
    assert_eq!(grade.storm_window, expected);
    // Every retry but the first is within 100 ms of the retry before it.
    assert_eq!(grade.clustered_retries, 7);
    assert_eq!(grade.early_retries, 8);
    assert_eq!(grade.gave_up, 2);
}

#[test]
fn live_counts_are_the_totals_the_grade_reports() {
    let grader = Grader::new();
    assert_eq!(grader.live_counts(), LiveCounts::default());
    attempt(&grader, 0, "sk-a", 1, limited(100));
    attempt(&grader, 0, "sk-b", 2, Answer::Success);
    attempt(&grader, 200, "sk-a", 1, limited(100));
    // Still being served: a request, not yet a 429.
    let pending = grader.begin_with(MS * 400, Some("sk-a"), LogicalId::Body(1), false);
    let expect = LiveCounts {
        requests: 4,
        rate_limited: 2,
        retries: 2,
    };
    assert_eq!(grader.live_counts(), expect);
    grader.finish(pending, MS * 410, Ending::answered(limited(100)));
    let counts = grader.live_counts();
    assert_eq!(counts.rate_limited, 3);
    let total = grader.grade().total;
    assert_eq!(
        (counts.requests, counts.rate_limited, counts.retries),
        (total.requests, total.rate_limited, total.retries)
    );
}

#[test]
fn a_snapshot_is_the_grade_and_the_records_of_one_moment() {
    let grader = Grader::new();
    attempt(&grader, 0, "sk-a", 1, limited(100));
    attempt(&grader, 200, "sk-a", 1, Answer::Success);
    attempt(&grader, 300, "sk-b", 2, Answer::Success);
    let (grading, records) = grader.snapshot();
    assert_eq!(grading, grader.grade());
    assert_eq!(records, grader.attempt_records());
    assert_eq!(records.len() as u64, grading.total.requests);
}

/// An attempt's tokens: a 3-token prompt reserving 5, with 4 completion tokens.
fn tokens(charged: u32) -> AttemptTokens {
    AttemptTokens {
        prompt: 3,
        reserved_output: 5,
        completion: 4,
        charged,
    }
}

/// Sends one attempt at `at_ms`, ended `answer` 10 ms later, the limiter having charged
/// `charged` tokens.
fn charged_attempt(
    grader: &Grader,
    at_ms: u32,
    key: &str,
    body: u64,
    answer: Answer,
    charged: u32,
) {
    let ticket = grader.begin_with(MS * at_ms, Some(key), LogicalId::Body(body), false);
    let ending = Ending {
        tokens: tokens(charged),
        ..Ending::answered(answer)
    };
    grader.finish(ticket, MS * (at_ms + 10), ending);
}

#[test]
fn tokens_charged_count_admitted_attempts_and_wasted_those_without_a_success() {
    let grader = Grader::new();
    let (a, b) = ("sk-aaaaaaaa1111", "sk-bbbbbbbb2222");
    // Key a, one logical request: admitted and reset (wasted), a 429 (charged nothing),
    // admitted and served.
    charged_attempt(&grader, 0, a, 1, Answer::Broken { reset: true }, 7);
    charged_attempt(&grader, 100, a, 1, limited(50), 0);
    charged_attempt(&grader, 200, a, 1, Answer::Success, 7);
    // Key b: an injected 500 before the limiter (charged nothing), an admitted stream
    // broken by an in-band error (wasted), then one the client left while it was served
    // (wasted, with what the note held).
    charged_attempt(&grader, 0, b, 2, Answer::Failed { status: 500 }, 0);
    charged_attempt(&grader, 100, b, 2, Answer::Broken { reset: false }, 9);
    let left = grader.begin_with(MS * 300, Some(b), LogicalId::Body(2), false);
    let note = GradingNote::default();
    note.asked(3, 5);
    note.admitted(9, None);
    grader.finish(left, MS * 400, Ending::abandoned(&note));
    let grading = grader.grade();
    let key_a = &grading.keys["sk-********1111"];
    let key_b = &grading.keys["sk-********2222"];
    assert_eq!((key_a.tokens_charged, key_a.tokens_wasted), (14, 7));
    assert_eq!((key_b.tokens_charged, key_b.tokens_wasted), (18, 18));
    assert_eq!(
        (grading.total.tokens_charged, grading.total.tokens_wasted),
        (32, 25)
    );
    // A reset, an in-band error and a left attempt are no success: their retries belong
    // to the same logical request.
    assert_eq!((key_a.logical_requests, key_a.retries), (1, 2));
    assert_eq!((key_b.logical_requests, key_b.retries), (1, 2));
    assert_eq!((grading.total.succeeded, grading.total.gave_up), (1, 1));
    // The live counts say what the grade says.
    let live: BTreeMap<String, LiveKeyCounts> = grader.live_key_counts().into_iter().collect();
    for (name, grade) in &grading.keys {
        let counts = live[name];
        assert_eq!(
            (
                counts.logical_requests,
                counts.retries,
                counts.early_retries,
                counts.logical_requests - counts.succeeded,
                counts.tokens_charged,
                counts.tokens_wasted,
            ),
            (
                grade.logical_requests,
                grade.retries,
                grade.early_retries,
                grade.gave_up,
                grade.tokens_charged,
                grade.tokens_wasted,
            ),
            "{name}"
        );
    }
}

#[test]
fn records_carry_tokens_and_breaks_as_the_simulator_records_them() {
    let grader = Grader::new();
    charged_attempt(&grader, 0, "k", 1, Answer::Broken { reset: true }, 7);
    charged_attempt(&grader, 100, "k", 1, Answer::Broken { reset: false }, 7);
    charged_attempt(&grader, 200, "k", 1, Answer::Success, 7);
    let pending = grader.begin_with(MS * 300, Some("k"), LogicalId::Body(2), false);
    grader.finish(
        pending,
        MS * 310,
        Ending::abandoned(&GradingNote::default()),
    );
    let records = grader.attempt_records();
    let outcomes: Vec<AttemptOutcome> = records.iter().map(|record| record.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Timeout,
            AttemptOutcome::ServerError { status: 500 },
            AttemptOutcome::Success,
            AttemptOutcome::Timeout,
        ]
    );
    let tokens: Vec<(u32, u32, u32)> = records
        .iter()
        .map(|record| {
            (
                record.prompt_tokens,
                record.max_tokens,
                record.completion_tokens,
            )
        })
        .collect();
    // Completion tokens count on the success only; the left attempt noted nothing.
    assert_eq!(tokens, [(3, 5, 0), (3, 5, 0), (3, 5, 4), (0, 0, 0)]);
    let mut metrics = results::RunMetrics::new(vec!["client".into()], 1_000_000_000);
    for record in &records {
        if record.attempt == 0 {
            metrics.record_arrival(record.client, record.arrived_ns);
        }
        metrics.record_send(record.sent_ns, record.attempt);
        metrics.record_attempt(record);
    }
    let result = metrics.finish("tier-1".into(), "client".into());
    assert_eq!(
        (result.totals.prompt_tokens, result.totals.completion_tokens),
        (3, 4)
    );
    // Prompt plus max_tokens of the three attempts that ended with an answer or a reset.
    let admitted: u64 = result.bins.iter().map(|bin| bin.admitted_tokens).sum();
    assert_eq!(admitted, 24);
}

#[test]
fn records_feed_run_metrics_like_a_simulated_trace() {
    let grader = Grader::new();
    attempt(&grader, 0, "k", 1, limited(1000));
    attempt(&grader, 500, "k", 1, limited(1000));
    attempt(&grader, 2000, "k", 1, Answer::Success);
    let records = grader.attempt_records();
    assert_eq!(records.len(), 3);
    let mut metrics = results::RunMetrics::new(vec!["client".into()], 1_000_000_000);
    metrics.record_arrival(records[0].client, records[0].arrived_ns);
    for record in &records {
        metrics.record_send(record.sent_ns, record.attempt);
        metrics.record_attempt(record);
    }
    let result = metrics.finish("tier-1".into(), "client".into());
    assert_eq!(result.totals.requests, 1);
    assert_eq!(result.totals.attempts, 3);
    assert_eq!(result.totals.succeeded, 1);
    // The same early retry the grade counts.
    assert_eq!(
        result.analysis.early_retries,
        grader.grade().total.early_retries
    );
    assert_eq!(result.analysis.early_retries, 1);
}
