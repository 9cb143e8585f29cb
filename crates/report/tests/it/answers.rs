//! The answer lines and the scoreboard's marks on hand-built reports: which strategy does best,
//! whether it survives, the tier needed in the catalog's order and under `[expect]`, and the
//! answers when a tier runs under both rejection rules.

use quota::RejectedRequests;
use report::{RunReport, Scoreboard, evaluate, example_report};
use results::{RunResult, ServerSummary};
use scenario::{Expectations, Location, SloMetric, Threshold};

/// A run of 1,000 requests on `server`: `succeeded` of them succeed with the given p99 and the
/// rest are given up; `attempts` HTTP attempts in all.
fn run(server: &str, strategy: &str, succeeded: u64, p99_s: f64, attempts: u64) -> RunResult {
    let mut run = example_report().runs[0].clone();
    run.server = server.to_owned();
    run.strategy = strategy.to_owned();
    run.totals.requests = 1_000;
    run.totals.succeeded = succeeded;
    run.totals.gave_up = 1_000 - succeeded;
    run.totals.attempts = attempts;
    run.totals.rate_limited = attempts - succeeded;
    run.latency.count = succeeded;
    run.latency.p50_us = (p99_s * 1e6 / 4.0) as u64;
    run.latency.p99_us = (p99_s * 1e6) as u64;
    run
}

/// A server variant of `tier` under `rule`, labelled `label`.
fn server(label: &str, tier: &str, rule: RejectedRequests) -> ServerSummary {
    let mut summary = example_report().scenario.servers[0].clone();
    summary.label = label.to_owned();
    summary.tier = Some(tier.to_owned());
    summary.limits.rejected_requests = rule;
    summary
}

fn report(servers: Vec<ServerSummary>, runs: Vec<RunResult>) -> RunReport {
    let mut report = example_report();
    report.scenario.servers = servers;
    report.runs = runs;
    report
}

fn threshold(metric: SloMetric, limit: f64) -> Threshold {
    Threshold {
        metric,
        limit,
        strategy: None,
        location: Location {
            file: "tiers.toml".to_owned(),
            line: 30,
            column: 19,
        },
    }
}

fn last(answers: &[String]) -> &str {
    answers.last().map_or("", String::as_str)
}

#[test]
fn the_tier_needed_is_the_cheapest_in_catalog_order_not_the_first_listed() {
    // Listed tier-5, tier-2, tier-4, tier-3; the runs are the same on each, and survive.
    let tiers = ["tier-5", "tier-2", "tier-4", "tier-3"];
    let report = report(
        tiers
            .iter()
            .map(|tier| server(tier, tier, RejectedRequests::CountPerMinute))
            .collect(),
        tiers
            .iter()
            .map(|tier| run(tier, "openai-python@2.52", 1_000, 2.0, 1_000))
            .collect(),
    );
    let answers = report::answers(&report);
    assert_eq!(
        last(&answers),
        "Tier needed: tier-2, the cheapest compared tier where a strategy (openai-python@2.52) succeeds for at least 99.0% of requests."
    );
}

#[test]
fn the_tier_needed_meets_the_expect_table_as_check_does() {
    // tier-2 succeeds for every request but its p99 is 45s; [expect] asks for 30s.
    let mut report = report(
        vec![
            server("tier-1", "tier-1", RejectedRequests::CountPerMinute),
            server("tier-2", "tier-2", RejectedRequests::CountPerMinute),
            server("tier-3", "tier-3", RejectedRequests::CountPerMinute),
        ],
        vec![
            run("tier-1", "openai-python@2.52", 400, 50.0, 3_000),
            run("tier-2", "openai-python@2.52", 1_000, 45.0, 1_400),
            run("tier-3", "openai-python@2.52", 1_000, 3.0, 1_000),
        ],
    );
    report.scenario.expect = Expectations {
        gate: None,
        thresholds: vec![threshold(SloMetric::P99Latency, 30.0)],
    };
    // `ratelab check` fails tier-2 on p99 ...
    let failing: Vec<(String, bool)> = evaluate(&report.scenario.expect, &report)
        .into_iter()
        .map(|verdict| (verdict.server, verdict.passed))
        .collect();
    assert_eq!(
        failing,
        [
            ("tier-1".to_owned(), false),
            ("tier-2".to_owned(), false),
            ("tier-3".to_owned(), true)
        ]
    );
    // ... so `ratelab run` does not call tier-2 enough either.
    let answers = report::answers(&report);
    assert_eq!(
        answers[3],
        "Survives: no. On tier-2, no strategy succeeds for at least 99.0% of requests and meets the scenario's [expect]; openai-python@2.52 comes closest (p99 latency 45.0s > 30.0s)."
    );
    assert_eq!(
        last(&answers),
        "Tier needed: tier-3, the cheapest compared tier where a strategy (openai-python@2.52) succeeds for at least 99.0% of requests and meets the scenario's [expect]."
    );
}

#[test]
fn the_best_strategy_meets_the_expect_table_before_it_succeeds_more() {
    // A strategy that succeeds for 100% with a p99 of 45s does not beat one that succeeds for
    // 99.5% within the 30s [expect] asks for.
    let mut report = report(
        vec![server("tier-1", "tier-1", RejectedRequests::Free)],
        vec![
            run("tier-1", "patient", 1_000, 45.0, 1_900),
            run("tier-1", "prompt", 995, 12.0, 1_300),
        ],
    );
    report.scenario.expect = Expectations {
        gate: None,
        thresholds: vec![
            threshold(SloMetric::SuccessRate, 0.99),
            threshold(SloMetric::P99Latency, 30.0),
        ],
    };
    assert_eq!(
        report::answers(&report),
        [
            "Best strategy on tier-1: prompt (99.5% success, p99 12.0s, 1.30x amplification).",
            "Survives: yes. On tier-1, prompt meets the scenario's [expect].",
        ]
    );
}

#[test]
fn no_retries_is_not_the_answer_when_a_retrying_strategy_succeeds_more() {
    // `none` has the lowest p99 and amplification, but succeeds less.
    let report = report(
        vec![server("tier-1", "tier-1", RejectedRequests::Free)],
        vec![
            run("tier-1", "none", 393, 0.8, 1_000),
            run("tier-1", "openai-python@2.52", 620, 9.0, 2_400),
        ],
    );
    let answers = report::answers(&report);
    assert_eq!(
        answers[0],
        "Best strategy on tier-1: openai-python@2.52 (62.0% success, p99 9.00s, 2.40x amplification)."
    );
    assert_eq!(
        answers[1],
        "Survives: no. On tier-1, no strategy succeeds for at least 99.0% of requests; openai-python@2.52 comes closest (success rate 62.0% < 99.0%)."
    );
}

/// The same tier under both rejection rules, labelled as `server.compare_rejections` labels them.
fn both_rules(free: [(&str, u64, f64, u64); 2], counted: [(&str, u64, f64, u64); 2]) -> RunReport {
    let free_label = "tier-1, rejections free";
    let count_label = "tier-1, rejections count";
    let mut runs = Vec::new();
    for (strategy, succeeded, p99, attempts) in free {
        runs.push(run(free_label, strategy, succeeded, p99, attempts));
    }
    for (strategy, succeeded, p99, attempts) in counted {
        runs.push(run(count_label, strategy, succeeded, p99, attempts));
    }
    report(
        vec![
            server(free_label, "tier-1", RejectedRequests::Free),
            server(count_label, "tier-1", RejectedRequests::CountPerMinute),
        ],
        runs,
    )
}

#[test]
fn under_both_rules_the_best_strategy_still_holds_when_rejections_count() {
    let report = both_rules(
        [
            ("none", 400, 1.0, 1_000),
            ("honour-retry-after", 995, 20.0, 1_800),
        ],
        [
            ("none", 380, 1.0, 1_000),
            ("honour-retry-after", 700, 40.0, 2_600),
        ],
    );
    assert_eq!(
        report::answers(&report),
        [
            "Best strategy on tier-1, rejections free: honour-retry-after (99.5% success, p99 20.0s, 1.80x amplification).",
            "Survives: yes. On tier-1, rejections free, honour-retry-after succeeds for at least 99.0% of requests.",
            "Under counted rejections: honour-retry-after still does best (70.0% success, p99 40.0s, 2.60x amplification); no strategy survives (success rate 70.0% < 99.0%).",
        ]
    );
}

#[test]
fn under_both_rules_the_strategy_that_does_better_when_rejections_count_is_named() {
    // Listed with the counted variant first: the answer still leads with the default rule.
    let mut report = both_rules(
        [
            ("none", 400, 1.0, 1_000),
            ("openai-python@2.52", 990, 8.0, 2_000),
        ],
        [
            ("none", 380, 1.0, 1_000),
            ("openai-python@2.52", 240, 30.0, 3_000),
        ],
    );
    report.scenario.servers.reverse();
    report.runs.rotate_left(2);
    assert_eq!(
        report::answers(&report),
        [
            "Best strategy on tier-1, rejections free: openai-python@2.52 (99.0% success, p99 8.00s, 2.00x amplification).",
            "Survives: yes. On tier-1, rejections free, openai-python@2.52 succeeds for at least 99.0% of requests.",
            "Under counted rejections: none does better (38.0% success, p99 1.00s, 1.00x amplification) than openai-python@2.52 (24.0% success, p99 30.0s, 3.00x amplification); no strategy survives (success rate 38.0% < 99.0%).",
        ]
    );
}

#[test]
fn tiers_under_both_rules_answer_the_tier_needed_under_each() {
    let mut runs = Vec::new();
    let mut servers = Vec::new();
    // tier-1 survives only when rejections are free; tier-2 under both rules.
    for (tier, free_success, count_success) in [("tier-1", 995, 600), ("tier-2", 1_000, 998)] {
        for (rule, label, succeeded) in [
            (
                RejectedRequests::Free,
                format!("{tier}, rejections free"),
                free_success,
            ),
            (
                RejectedRequests::CountPerMinute,
                format!("{tier}, rejections count"),
                count_success,
            ),
        ] {
            servers.push(server(&label, tier, rule));
            runs.push(run(&label, "openai-python@2.52", succeeded, 5.0, 1_500));
        }
    }
    let answers = report::answers(&report(servers, runs));
    assert_eq!(answers.len(), 7, "{answers:#?}");
    assert_eq!(
        answers[3],
        "Best strategy on tier-2, rejections free: openai-python@2.52 (100.0% success, p99 5.00s, 1.50x amplification)."
    );
    assert_eq!(
        last(&answers),
        "Tier needed: tier-1, the cheapest compared tier where a strategy (openai-python@2.52) succeeds for at least 99.0% of requests. Under counted rejections: tier-2 (openai-python@2.52)."
    );
}

#[test]
fn when_no_compared_tier_survives_the_answer_says_what_to_try() {
    let report = report(
        vec![
            server("tier-2", "tier-2", RejectedRequests::Free),
            server("tier-1", "tier-1", RejectedRequests::Free),
        ],
        vec![
            run("tier-2", "openai-python@2.52", 700, 5.0, 1_500),
            run("tier-1", "openai-python@2.52", 400, 5.0, 2_500),
        ],
    );
    assert_eq!(
        last(&report::answers(&report)),
        "Tier needed: none of tier-1, tier-2 is enough for this traffic; try a higher tier, or send less."
    );
}

/// The titles of the columns marked best in `row`.
fn marked(board: &Scoreboard, row: usize) -> Vec<&'static str> {
    board
        .columns
        .iter()
        .zip(&board.rows[row].cells)
        .filter(|(_, cell)| cell.best)
        .map(|(column, _)| column.title)
        .collect()
}

#[test]
fn a_run_below_the_success_floor_is_marked_only_for_success() {
    // `none` has the lowest 429s, amplification, latency, early retries and drain, because it
    // gives up; the retrying strategy reaches the 99% floor.
    let mut report = report(
        vec![server("tier-1", "tier-1", RejectedRequests::Free)],
        vec![
            run("tier-1", "none", 400, 1.0, 1_000),
            run("tier-1", "retry", 995, 20.0, 1_800),
        ],
    );
    report.runs[1].analysis.early_retries = 5;
    report.runs[1].analysis.backlog.drain_ms = Some(30_000);
    // Both built a real backlog, so both drain times count; `none` drains at once.
    for run in &mut report.runs {
        run.analysis.backlog.peak_open = 50;
    }
    report.runs[0].analysis.backlog.drain_ms = Some(0);
    report.runs[1].analysis.goodput.requests_per_minute = 99.5;
    report.runs[0].analysis.goodput.requests_per_minute = 40.0;
    let board = Scoreboard::of(&report);
    assert_eq!(marked(&board, 0), Vec::<&str>::new());
    assert_eq!(
        marked(&board, 1),
        [
            "success",
            "gave up",
            "429s",
            "amplif.",
            "p50",
            "p99",
            "goodput",
            "early retries",
            "drain"
        ]
    );
}

#[test]
fn the_floor_for_marks_is_the_expect_tables_min_success_rate() {
    let mut report = report(
        vec![server("tier-1", "tier-1", RejectedRequests::Free)],
        vec![
            run("tier-1", "none", 400, 1.0, 1_000),
            run("tier-1", "retry", 900, 20.0, 1_800),
        ],
    );
    // Below 99% both: only success is marked.
    let board = Scoreboard::of(&report);
    assert_eq!(marked(&board, 0), Vec::<&str>::new());
    assert_eq!(marked(&board, 1), ["success"]);
    // With a floor of 90%, the retrying strategy is compared on every column.
    report.scenario.expect = Expectations {
        gate: None,
        thresholds: vec![threshold(SloMetric::SuccessRate, 0.9)],
    };
    let board = Scoreboard::of(&report);
    assert_eq!(marked(&board, 0), Vec::<&str>::new());
    assert!(marked(&board, 1).contains(&"p99"));
    assert_eq!(
        board.marking_rule(),
        "only runs with at least 90.0% success are marked outside the success column"
    );
}

#[test]
fn strategies_that_rank_alike_are_reported_as_a_tie_not_by_file_order() {
    // No 429 reaches any strategy: "no retries" must not be crowned by being listed first.
    let report = report(
        vec![server("tier-2", "tier-2", RejectedRequests::Free)],
        vec![
            run("tier-2", "no retries", 1_000, 2.0, 1_000),
            run("tier-2", "sdk default", 1_000, 2.0, 1_000),
            run("tier-2", "slower", 1_000, 3.0, 1_000),
        ],
    );
    let answers = report::answers(&report);
    assert_eq!(
        answers[0],
        "Best strategy on tier-2: no retries and sdk default tie (100.0% success, p99 2.00s, 1.00x amplification)."
    );
    assert_eq!(
        answers[1],
        "Survives: yes. On tier-2, each of them succeeds for at least 99.0% of requests."
    );
}

#[test]
fn a_baseline_is_judged_by_expect_in_the_answers_though_it_does_not_gate() {
    // `none` succeeds for every request but misses the p99 bound; `ours` is the gated strategy
    // and meets it. The baseline must neither win the answers by skipping [expect] nor make
    // them say nothing survives.
    let mut report = report(
        vec![server("tier-1", "tier-1", RejectedRequests::Free)],
        vec![
            run("tier-1", "none", 1_000, 45.0, 1_000),
            run("tier-1", "ours", 995, 12.0, 1_300),
        ],
    );
    report.scenario.expect = Expectations {
        gate: Some(vec!["ours".to_owned()]),
        thresholds: vec![
            threshold(SloMetric::SuccessRate, 0.99),
            threshold(SloMetric::P99Latency, 30.0),
        ],
    };
    assert_eq!(
        report::answers(&report),
        [
            "Best strategy on tier-1: ours (99.5% success, p99 12.0s, 1.30x amplification).",
            "Survives: yes. On tier-1, ours meets the scenario's [expect].",
        ]
    );
    // `ratelab check` passes: the baseline's miss is reported, not failed.
    let checked = report::CheckedScenario::new(&report.scenario.expect, &report);
    assert!(checked.passed());
    let baseline: Vec<(bool, bool)> = checked
        .verdicts
        .iter()
        .filter(|verdict| verdict.strategy == "none")
        .map(|verdict| (verdict.gated, verdict.passed))
        .collect();
    assert_eq!(baseline, [(false, true), (false, false)]);
}

/// `run` on five seeds whose successes differ by `spread` requests either way.
fn on_five_seeds(run: &RunResult, spread: i64) -> RunResult {
    let values: Vec<results::SeedValues> = [0, spread, -spread, spread / 2, -spread / 2]
        .iter()
        .map(|delta| {
            let mut seed = run.clone();
            seed.totals.succeeded = seed.totals.succeeded.saturating_add_signed(*delta);
            seed.totals.gave_up = seed.totals.gave_up.saturating_add_signed(-delta);
            results::SeedValues::of(&seed)
        })
        .collect();
    RunResult {
        seeds: Some(results::SeedStats::of(vec![1, 2, 3, 4, 5], &values)),
        ..run.clone()
    }
}

#[test]
fn under_counted_rejections_a_difference_within_the_noise_is_not_called_better() {
    let counted = |spread| {
        let mut report = both_rules(
            [
                ("none", 400, 1.0, 1_000),
                ("honour-retry-after", 995, 20.0, 1_800),
            ],
            [
                ("none", 381, 1.0, 1_000),
                ("honour-retry-after", 380, 40.0, 2_600),
            ],
        );
        for run in &mut report.runs {
            *run = on_five_seeds(run, spread);
        }
        report::answers(&report)[2].clone()
    };
    // A tenth of a point apart while the seeds spread two points (a 95% half-width of
    // 2.776 x 1.58% / sqrt(5) = 2.0%): within the noise.
    assert_eq!(
        counted(20),
        "Under counted rejections: none and honour-retry-after are within noise over 5 seeds (success: none 38.1% ± 2.0%, honour-retry-after 38.0% ± 2.0%); no strategy survives (success rate 38.1% < 99.0% on seed 7)."
    );
    // The same means with no spread between seeds: none does better.
    assert!(
        counted(0).starts_with("Under counted rejections: none does better"),
        "{}",
        counted(0)
    );
}

/// A tested client's report: the client's run, then one simulated model beside it, with
/// `[expect] min_success_rate = 0.99`.
fn tested(client_succeeded: u64, model_succeeded: u64) -> RunReport {
    let mut report = report(
        vec![server("tier-1", "tier-1", RejectedRequests::Free)],
        vec![
            run("tier-1", "client", client_succeeded, 2.0, 1_100),
            run("tier-1", "sdk (simulated)", model_succeeded, 1.5, 1_050),
        ],
    );
    report.scenario.expect = Expectations {
        thresholds: vec![threshold(SloMetric::SuccessRate, 0.99)],
        gate: Some(vec!["client".to_owned()]),
    };
    report.tested = Some(results::TestedClient {
        run: "client".to_owned(),
        command: "python3 app.py".to_owned(),
        instances: 1,
        models: vec!["sdk (simulated)".to_owned()],
        seen: Vec::new(),
    });
    report
}

#[test]
fn a_tested_client_is_answered_for_itself_then_beside_its_simulated_model() {
    let answers = report::answers(&tested(1_000, 1_000));
    assert_eq!(
        answers,
        [
            "Survives: yes. Your client (`python3 app.py`) meets the scenario's [expect] on tier-1 (100.0% success, p99 2.00s, 1.10x amplification, 0 early retries).",
            "Beside it, sdk (simulated) (100.0% success, p99 1.50s, 1.05x amplification, 0 early retries): it survives too.",
        ]
    );
    // No "best strategy" is crowned between a program and its own model.
    assert!(!answers.iter().any(|line| line.starts_with("Best strategy")));

    let answers = report::answers(&tested(900, 1_000));
    assert_eq!(
        answers[0],
        "Survives: no. Your client (`python3 app.py`) misses on tier-1: success rate 90.0% < 99.0% (90.0% success, p99 2.00s, 1.10x amplification, 0 early retries)."
    );
    assert!(
        answers[1].ends_with(
            "it survives, so the declared strategy copes with this traffic and the client falls short of it (look for retries it does not declare, such as an outer wrapper, or a different version)."
        ),
        "{answers:?}"
    );

    let answers = report::answers(&tested(1_000, 900));
    assert!(answers[0].starts_with("Survives: yes."), "{answers:?}");
    assert!(
        answers[1].ends_with(
            "it does not (success rate 90.0% < 99.0%), so the client does better than its declared strategy's model."
        ),
        "{answers:?}"
    );

    let answers = report::answers(&tested(900, 800));
    assert!(answers[0].starts_with("Survives: no."), "{answers:?}");
    assert!(
        answers[1].contains("it does not either (success rate 80.0% < 99.0%)"),
        "{answers:?}"
    );
}

#[test]
fn a_tested_clients_markdown_and_page_show_what_the_server_saw() {
    let mut report = tested(1_000, 1_000);
    let tested = report.tested.as_mut().unwrap();
    tested.seen = vec![results::ServerSaw {
        key: "total".to_owned(),
        requests: 1_100,
        logical_requests: 1_000,
        retries: 100,
        early_retries: 3,
        clustered_retries: 7,
        storm_share: Some(0.25),
        gave_up: 0,
        retried_no_retry: 1,
        tokens_charged: 52_000,
        tokens_wasted: 2_000,
    }];
    let markdown = report::summary_markdown(&report);
    assert!(
        markdown.contains("| total | 1100 | 1000 | 100 | 3 | 7 | 25.0% | 0 | 1 | 52000 | 2000 |"),
        "{markdown}"
    );
    let page = report::html_page(&report, &[]);
    assert!(page.contains("<h2>What the server saw of the client</h2>"));
    assert!(page.contains("<td>25.0%</td>"), "{page}");
    // A simulated report has no such section.
    assert!(!report::summary_markdown(&example_report()).contains("What the server saw"));
}
