//! The per-request `deadline` of a client group: measured from a request's arrival, local
//! pacing, backoff and attempts included. A request still waiting to send gives up at the
//! deadline, an attempt in flight is cut there like a timeout, and nothing that would end later
//! counts as a success.

use results::{AttemptDecision, AttemptOutcome, AttemptRecord, RunReport};

const TWO_MINUTES_NS: u64 = 120_000_000_000;

/// One client sending `rpm` evenly for `duration` to a server that answers every attempt after
/// exactly `latency` (no jitter) and never rejects, with `extra` appended to the client group
/// (a deadline, say) and `strategy` as the only strategy.
fn scenario_text(duration: &str, rpm: u32, latency: &str, extra: &str, strategy: &str) -> String {
    format!(
        r#"name = "deadline"
duration = "{duration}"
drain = "10m"
[server]
model = "gpt-4o-mini"
tier = "tier-5"
[server.latency]
ttft = "{latency}"
per_output_token = "0s"
jitter = 0.0
[[clients]]
name = "app"
arrival = {{ kind = "constant", rpm = {rpm} }}
prompt_tokens = {{ kind = "fixed", value = 10 }}
completion_tokens = {{ kind = "fixed", value = 10 }}
{extra}
[[strategies]]
{strategy}
"#
    )
}

/// A local token bucket at 60 RPM (burst 1) in front of twice that traffic: request `i` arrives
/// at `i x 0.5s` and may leave only at `i x 1s`, so its queueing wait grows by half a second per
/// request, to 2.5 minutes after five minutes.
const PACER: &str =
    "kind = \"token-bucket\"\nrpm = 60\nrequest-burst = 1\ninner = { kind = \"none\" }";

fn run(text: &str) -> (RunReport, Vec<AttemptRecord>) {
    let (report, _, attempts) = crate::simulate(&crate::parse(text));
    (report, attempts)
}

#[track_caller]
fn assert_no_success_after_deadline(attempts: &[AttemptRecord], deadline_ns: u64) {
    for record in attempts {
        if record.decision == AttemptDecision::Done {
            assert!(
                record.ended_ns - record.arrived_ns <= deadline_ns,
                "request {} succeeded {} ns after arriving, past its deadline",
                record.request,
                record.ended_ns - record.arrived_ns
            );
        }
    }
}

#[test]
fn a_pacer_queueing_past_the_deadline_gives_those_requests_up_at_the_deadline() {
    // Without a deadline the pacer delivers everything, but keeps requests queued for up to
    // five minutes: "surviving" only because nobody waited for the answer.
    let (unbounded, unbounded_attempts) = run(&scenario_text("5m", 120, "200ms", "", PACER));
    let totals = &unbounded.runs[0].totals;
    assert_eq!((totals.requests, totals.succeeded), (600, 600));
    assert!(unbounded.runs[0].latency.max_us > 4 * 60 * 1_000_000);

    let (report, attempts) = run(&scenario_text(
        "5m",
        120,
        "200ms",
        "deadline = \"2m\"",
        PACER,
    ));
    let run = &report.runs[0];
    // Request i is sent at i seconds and answered 200 ms later, within its deadline at
    // i x 0.5s + 2m while i < 240: requests 0 to 239 succeed. Request 240 would leave exactly
    // at its deadline, and the bucket's queue only grows from there.
    assert_eq!(run.totals.requests, 600);
    assert_eq!(run.totals.succeeded, 240);
    assert_eq!(run.totals.gave_up, 360);
    assert_eq!(run.totals.unfinished, 0);
    assert_eq!(
        run.totals.attempts, 240,
        "requests past the deadline are never sent"
    );
    assert_eq!(
        run.give_up_reasons.get(&retry::GiveUpReason::Deadline),
        Some(&360)
    );
    assert!(run.latency.max_us <= 120_000_000);
    assert_no_success_after_deadline(&attempts, TWO_MINUTES_NS);
    for record in attempts.iter().filter(|record| record.is_final()) {
        if record.decision != AttemptDecision::Done {
            assert_eq!(record.outcome, AttemptOutcome::NotSent);
            assert_eq!(
                record.ended_ns,
                record.arrived_ns + TWO_MINUTES_NS,
                "request {} gave up at its deadline",
                record.request
            );
        }
    }
    // The successes are the same requests, sent and answered at the same times, as without a
    // deadline: a request succeeding within its deadline is unaffected.
    let successes = |attempts: &[AttemptRecord]| -> Vec<AttemptRecord> {
        attempts
            .iter()
            .filter(|record| record.decision == AttemptDecision::Done)
            .filter(|record| record.ended_ns - record.arrived_ns <= TWO_MINUTES_NS)
            .copied()
            .collect()
    };
    assert_eq!(successes(&attempts), successes(&unbounded_attempts));
}

#[test]
fn an_attempt_in_flight_at_the_deadline_is_cut_like_a_timeout_and_is_no_success() {
    // Every answer takes three minutes; without a deadline each request succeeds after 3m.
    let (unbounded, _) = run(&scenario_text("1m", 10, "3m", "", "kind = \"none\""));
    assert_eq!(unbounded.runs[0].totals.succeeded, 10);

    let (report, attempts) = run(&scenario_text(
        "1m",
        10,
        "3m",
        "deadline = \"2m\"",
        "kind = \"openai-python@2.52\"",
    ));
    let totals = &report.runs[0].totals;
    assert_eq!(totals.requests, 10);
    assert_eq!(
        totals.succeeded, 0,
        "an answer after the deadline is no success"
    );
    assert_eq!(totals.gave_up, 10);
    // One attempt each, abandoned at the deadline as a client timeout would be; the SDK would
    // retry a timeout, but the deadline ends the request.
    assert_eq!(totals.attempts, 10);
    assert_eq!(totals.timeouts, 10);
    assert_eq!(
        report.runs[0]
            .give_up_reasons
            .get(&retry::GiveUpReason::Deadline),
        Some(&10)
    );
    for record in &attempts {
        assert_eq!(record.outcome, AttemptOutcome::Timeout);
        assert_eq!(record.ended_ns, record.arrived_ns + TWO_MINUTES_NS);
    }
}

#[test]
fn a_backoff_wait_past_the_deadline_ends_at_the_deadline() {
    // Every attempt fails with a 503 after 20 ms; the strategy retries every 50 s. Attempts at
    // 0s, 50s and 100s fail; the retry due at 150s lies past the 2m deadline, so the request
    // gives up at 2m without a fourth attempt.
    let text = scenario_text(
        "1m",
        2,
        "200ms",
        "deadline = \"2m\"",
        "kind = \"fixed\"\ndelay = \"50s\"\nmax-attempts = 10",
    )
    .replace(
        "[[clients]]",
        "[[server.timeline]]\nat = \"0s\"\nfault = { kind = \"overloaded\" }\n[[clients]]",
    );
    let (report, attempts) = run(&text);
    let totals = &report.runs[0].totals;
    assert_eq!((totals.requests, totals.gave_up), (2, 2));
    assert_eq!(totals.attempts, 6);
    assert_eq!(totals.server_errors, 6);
    let finals: Vec<&AttemptRecord> = attempts.iter().filter(|record| record.is_final()).collect();
    assert_eq!(finals.len(), 2);
    for record in finals {
        assert_eq!(record.outcome, AttemptOutcome::NotSent);
        assert_eq!(record.attempt, 3);
        assert_eq!(record.ended_ns, record.arrived_ns + TWO_MINUTES_NS);
        assert_eq!(
            record.decision,
            AttemptDecision::GiveUp {
                reason: Some(retry::GiveUpReason::Deadline)
            }
        );
    }
}

#[test]
fn a_deadline_no_request_reaches_changes_nothing() {
    // Under the limit and answered in 200 ms, every request is done long before 2 minutes:
    // the runs and the traces are identical with and without the deadline.
    let strategy = "kind = \"openai-python@2.52\"";
    let without = scenario_text("3m", 300, "200ms", "", strategy);
    let with = scenario_text("3m", 300, "200ms", "deadline = \"2m\"", strategy);
    let (without_report, without_attempts) = run(&without);
    let (with_report, with_attempts) = run(&with);
    assert_eq!(without_report.runs, with_report.runs);
    assert_eq!(without_attempts, with_attempts);
    assert_eq!(
        with_report.scenario.groups[0].deadline_ms,
        Some(120_000),
        "the report names the deadline"
    );
}

#[test]
fn runs_with_deadlines_replay_exactly() {
    let text = scenario_text("5m", 120, "200ms", "deadline = \"2m\"", PACER);
    let scenario = crate::parse(&text);
    let (_, first_json, first_trace) = crate::simulate(&scenario);
    let (_, second_json, second_trace) = crate::simulate(&scenario);
    assert_eq!(first_json, second_json);
    assert_eq!(first_trace, second_trace);
}
