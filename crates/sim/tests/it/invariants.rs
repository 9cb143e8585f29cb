//! Invariants of every run: requests are conserved, the trace and the totals agree, attempts
//! are numbered in order with times that move forward, and every strategy sees the same
//! open-loop workload.

use std::collections::BTreeMap;

use proptest::prelude::*;
use results::{AttemptDecision, AttemptOutcome, AttemptRecord, RunReport};
use scenario::ClientId;

const STRATEGIES: [&str; 6] = [
    "kind = \"none\"",
    "kind = \"openai-python@2.52\"",
    "kind = \"full-jitter\"\nbase = \"200ms\"\ncap = \"10s\"\nmax-attempts = 6",
    "kind = \"honour-retry-after\"\njitter = 0.5\ninner = { kind = \"exponential\", base = \"100ms\", cap = \"5s\" }",
    "kind = \"header-pacing\"\ninner = { kind = \"full-jitter\", base = \"1s\", cap = \"20s\" }",
    "kind = \"circuit-breaker\"\ninner = { kind = \"fixed\", delay = \"500ms\" }",
];

fn scenario_text(seed: u64, rpm: u32, instances: u32, closed_workers: u32, fault: bool) -> String {
    let mut text = format!(
        r#"name = "prop"
seed = {seed}
duration = "2m"
drain = "1m"
[server]
model = "gpt-4o-mini"
tier = "tier-1"
limits = {{ rpm = 120, tpm = 40000 }}
"#
    );
    if fault {
        text.push_str(
            "[[server.timeline]]\nat = \"30s\"\nuntil = \"50s\"\nfault = { kind = \"overloaded\" }\nprobability = 0.7\n",
        );
    }
    text.push_str(&format!(
        r#"[[clients]]
name = "open"
instances = {instances}
stagger = "1s"
arrival = {{ kind = "gamma", rpm = {rpm}, burstiness = 0.5 }}
prompt_tokens = {{ kind = "uniform", min = 50, max = 400 }}
completion_tokens = {{ kind = "uniform", min = 10, max = 100 }}
timeout = "5s"
deadline = "20s"
[[clients]]
name = "closed"
closed_loop = {{ concurrency = {closed_workers}, think_time = "200ms" }}
prompt_tokens = {{ kind = "fixed", value = 200 }}
completion_tokens = {{ kind = "fixed", value = 50 }}
"#
    ));
    for strategy in STRATEGIES {
        text.push_str(&format!("[[strategies]]\n{strategy}\n"));
    }
    text
}

#[track_caller]
fn check_invariants(report: &RunReport, attempts: &[AttemptRecord]) {
    for (index, run) in report.runs.iter().enumerate() {
        let totals = &run.totals;
        assert_eq!(
            totals.requests,
            totals.succeeded + totals.gave_up + totals.unfinished,
            "run {index}: requests are conserved"
        );
        let mine: Vec<&AttemptRecord> = attempts
            .iter()
            .filter(|record| record.run as usize == index)
            .collect();
        let sent = mine.iter().filter(|record| record.was_sent()).count() as u64;
        assert_eq!(
            sent, totals.attempts,
            "run {index}: trace and totals agree on attempts"
        );
        let rate_limited = mine
            .iter()
            .filter(|record| matches!(record.outcome, AttemptOutcome::RateLimited { .. }))
            .count() as u64;
        assert_eq!(rate_limited, totals.rate_limited);
        assert_eq!(
            totals.rate_limited,
            run.rejections.values().sum::<u64>(),
            "run {index}: rejections by limit add up"
        );
        assert_eq!(
            totals.attempts,
            run.bins.iter().map(|bin| bin.attempts).sum::<u64>()
        );
        assert_eq!(
            totals.requests,
            run.bins.iter().map(|bin| bin.arrivals).sum::<u64>()
        );
        assert_eq!(run.latency.count, totals.succeeded);
        assert_eq!(
            run.bins.len(),
            report.runs[0].bins.len(),
            "run {index}: every run shares one time axis"
        );
        assert!(
            run.give_up_reasons.values().sum::<u64>() <= totals.gave_up,
            "run {index}: every reason is a give-up"
        );

        let mut next_attempt: BTreeMap<(ClientId, u64), u32> = BTreeMap::new();
        for record in &mine {
            assert!(record.arrived_ns <= record.sent_ns && record.sent_ns <= record.ended_ns);
            let expected = next_attempt
                .entry((record.client, record.request))
                .or_insert(0);
            assert_eq!(record.attempt, *expected, "attempts are numbered in order");
            if record.was_sent() {
                *expected += 1;
            }
            if record.decision == AttemptDecision::Done {
                assert_eq!(record.outcome, AttemptOutcome::Success);
            }
            let deadline_ms = report.scenario.groups[record.client.group as usize].deadline_ms;
            if let Some(deadline_ms) = deadline_ms {
                assert!(
                    record.ended_ns - record.arrived_ns <= deadline_ms * 1_000_000,
                    "no request outlives its group's deadline"
                );
            }
        }
    }
}

/// The first attempt of every open-loop request: when it arrived and what it asked for.
fn open_loop_workload(
    attempts: &[AttemptRecord],
    run: u32,
) -> BTreeMap<(ClientId, u64), (u64, u32, u32)> {
    attempts
        .iter()
        .filter(|record| record.run == run && record.client.group == 0 && record.attempt == 0)
        .map(|record| {
            (
                (record.client, record.request),
                (record.arrived_ns, record.prompt_tokens, record.max_tokens),
            )
        })
        .collect()
}

#[test]
fn every_strategy_sees_the_same_open_loop_workload() {
    let scenario = crate::parse(&scenario_text(5, 90, 2, 2, true));
    let (report, _, attempts) = crate::simulate(&scenario);
    check_invariants(&report, &attempts);
    let first = open_loop_workload(&attempts, 0);
    assert!(!first.is_empty());
    for run in 1..report.runs.len() as u32 {
        let other = open_loop_workload(&attempts, run);
        // A request whose first attempt a strategy refused (circuit open) has no attempt 0 sent,
        // but still appears: NotSent records carry attempt 0. A request a pacing strategy
        // still holds at the horizon has no record at all; it must be counted as unfinished.
        let started: BTreeMap<_, _> = first
            .iter()
            .filter(|(key, _)| other.contains_key(key))
            .map(|(key, value)| (*key, *value))
            .collect();
        assert_eq!(started, other, "run {run} saw a different workload");
        let never_started = (first.len() - other.len()) as u64;
        assert!(
            never_started <= report.runs[run as usize].totals.unfinished,
            "run {run}: {never_started} requests never started, fewer unfinished"
        );
    }
}

#[test]
fn no_strategy_is_rejected_under_the_limit() {
    let text = scenario_text(1, 20, 1, 1, false);
    let scenario = crate::parse(&text);
    let (report, _, _) = crate::simulate(&scenario);
    for run in &report.runs {
        assert_eq!(run.totals.rate_limited, 0, "{}", run.strategy);
        assert_eq!(
            run.totals.succeeded, run.totals.requests,
            "{}",
            run.strategy
        );
    }
}

#[test]
fn adding_a_group_keeps_the_other_groups_workload() {
    let text = scenario_text(9, 60, 2, 1, false);
    let (_, _, before) = crate::simulate(&crate::parse(&text));
    let extra = text.replace(
        "[[clients]]\nname = \"open\"",
        "[[clients]]\nname = \"newcomer\"\narrival = { kind = \"poisson\", rpm = 5 }\nprompt_tokens = { kind = \"fixed\", value = 10 }\ncompletion_tokens = { kind = \"fixed\", value = 10 }\n[[clients]]\nname = \"open\"",
    );
    let (_, _, after) = crate::simulate(&crate::parse(&extra));
    // "open" is group 0 before and group 1 after; compare by its draws alone.
    let arrivals = |attempts: &[AttemptRecord], group: u32| -> Vec<(u32, u64, u64, u32)> {
        attempts
            .iter()
            .filter(|record| record.run == 0 && record.client.group == group && record.attempt == 0)
            .map(|record| {
                (
                    record.client.instance,
                    record.request,
                    record.arrived_ns,
                    record.prompt_tokens,
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(arrivals(&before, 0), arrivals(&after, 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn runs_keep_their_invariants(
        seed in any::<u64>(),
        rpm in 10u32..400,
        instances in 1u32..4,
        closed_workers in 1u32..6,
        fault in any::<bool>(),
    ) {
        let scenario = crate::parse(&scenario_text(seed, rpm, instances, closed_workers, fault));
        let (report, _, attempts) = crate::simulate(&scenario);
        check_invariants(&report, &attempts);
    }
}

#[test]
fn typed_headers_give_the_same_runs_as_headers_parsed_from_text() {
    let scenario = crate::parse(&scenario_text(3, 200, 2, 2, true));
    for (index, spec) in scenario.strategies.iter().enumerate() {
        let mut typed = Vec::new();
        let mut text = Vec::new();
        let typed_result = sim::simulate_run(&scenario, index, &mut |record| typed.push(*record));
        let options = sim::SimOptions {
            headers_as_text: true,
            ..sim::SimOptions::default()
        };
        let text_result = sim::simulate_run_with(
            &scenario,
            index,
            options,
            Some(&mut |record: &results::AttemptRecord| text.push(*record)),
        );
        assert_eq!(typed_result.ok(), text_result.ok(), "{}", spec.label);
        assert_eq!(typed, text, "{}", spec.label);
    }
}

#[test]
fn insufficient_quota_faults_reach_strategies_as_429s_with_their_code() {
    let text = r#"name = "quota-exhausted"
duration = "1m"
drain = "5m"
[server]
model = "gpt-4o-mini"
tier = "tier-1"
[[server.timeline]]
at = "0s"
fault = { kind = "insufficient_quota" }
[[clients]]
name = "app"
arrival = { kind = "constant", rpm = 60 }
prompt_tokens = { kind = "fixed", value = 10 }
completion_tokens = { kind = "fixed", value = 10 }
[[strategies]]
kind = "openai-python@2.52"
[[strategies]]
kind = "async-openai@0.36"
"#;
    let (report, _, attempts) = crate::simulate(&crate::parse(text));
    check_invariants(&report, &attempts);
    let python = &report.runs[0].totals;
    let rust = &report.runs[1].totals;
    assert_eq!((python.requests, rust.requests), (60, 60));
    // openai-python retries insufficient_quota twice; async-openai up to 0.36 never does.
    assert_eq!(python.attempts, 180);
    assert_eq!(rust.attempts, 60);
    assert_eq!(python.gave_up + rust.gave_up, 120);
    assert_eq!(report.runs[0].rejections.get("other"), Some(&180));
}

#[test]
fn closed_loop_workers_refused_locally_still_let_time_advance() {
    let text = r#"name = "breaker-spin"
duration = "2m"
drain = "1m"
[server]
model = "gpt-4o-mini"
tier = "tier-1"
[[server.timeline]]
at = "0s"
fault = { kind = "overloaded" }
[[clients]]
name = "workers"
closed_loop = { concurrency = 3 }
prompt_tokens = { kind = "fixed", value = 10 }
completion_tokens = { kind = "fixed", value = 10 }
[[strategies]]
kind = "circuit-breaker"
inner = { kind = "none" }
"#;
    let (report, _, attempts) = crate::simulate(&crate::parse(text));
    check_invariants(&report, &attempts);
    let totals = &report.runs[0].totals;
    assert!(totals.attempts > 0);
    assert!(
        totals.gave_up > totals.attempts,
        "the open breaker refused requests locally"
    );
    // At most one refused request per worker per millisecond of the two minutes.
    assert!(totals.requests <= 3 * 120_000 + totals.attempts);
}
