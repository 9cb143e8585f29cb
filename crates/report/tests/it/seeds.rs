//! Reports over several seeds: the `mean ± half-width` table in every format, answers that say
//! when strategies are within noise, and diffs that count only moves outside it.

use report::{Change, Colour, ReportDiff, RunReport, example_report};
use results::{RunResult, SeedStats, SeedValues};

/// `run` on five seeds: the first is `run` itself, the others move its successes by `spread`
/// requests either way (and its p99 by as many milliseconds).
fn with_seeds(run: &RunResult, spread: i64) -> RunResult {
    let values: Vec<SeedValues> = [0, spread, -spread, spread / 2, -spread / 2]
        .iter()
        .map(|delta| {
            let mut seed = run.clone();
            seed.totals.succeeded = seed.totals.succeeded.saturating_add_signed(*delta);
            seed.totals.gave_up = seed.totals.gave_up.saturating_add_signed(-delta);
            seed.latency.p99_us = seed.latency.p99_us.saturating_add_signed(delta * 1_000);
            SeedValues::of(&seed)
        })
        .collect();
    RunResult {
        seeds: Some(SeedStats::of(vec![7, 11, 13, 17, 19], &values)),
        ..run.clone()
    }
}

/// The example report on five seeds, successes spread by `spread` requests.
fn seeded(spread: i64) -> RunReport {
    let mut report = example_report();
    for run in &mut report.runs {
        *run = with_seeds(run, spread);
    }
    report
}

#[test]
fn report_json_round_trips_the_seeds_and_an_old_file_still_reads() {
    let report = seeded(5);
    let text = report::report_json(&report);
    assert!(text.contains("\"seeds\": {"), "{text}");
    assert!(text.contains("\"ci95\": ["), "{text}");
    assert_eq!(report::parse_report_json(&text).unwrap(), report);
    // A report without seeds, as every report before them, reads as before.
    let old = report::report_json(&example_report());
    assert!(!old.contains("\"seeds\""));
    assert!(
        report::parse_report_json(&old).unwrap().runs[0]
            .seeds
            .is_none()
    );
}

#[test]
fn every_format_shows_mean_and_half_width_over_the_seeds() {
    let report = seeded(5);
    let terminal = report::terminal_table(&report, Colour::Never);
    assert!(
        terminal.starts_with("example (seed 7 and 4 more)\n"),
        "{terminal}"
    );
    assert!(
        terminal.contains("Over 5 seeds (mean ± half-width"),
        "{terminal}"
    );
    let markdown = report::summary_markdown(&report);
    assert!(
        markdown.contains("| strategy | success | p50 | p99 |"),
        "{markdown}"
    );
    assert!(markdown.contains(" ± "), "{markdown}");
    let charts = report::charts(&report).unwrap();
    let html = report::html_page(&report, &charts);
    assert!(html.contains("<table class=\"seeds\">"), "{html}");
    // One seed: no seeds table anywhere.
    let plain = example_report();
    assert!(!report::terminal_table(&plain, Colour::Never).contains('±'));
    assert!(!report::summary_markdown(&plain).contains('±'));
}

#[test]
fn seed_tables_snapshot() {
    let report = seeded(5);
    insta::assert_snapshot!(report::terminal_table(&report, Colour::Never));
}

/// A report of two strategies on tier-1 whose successes are `a` and `b` (of 240) on every
/// seed, spread by `spread` requests, with equal latency and amplification.
fn two_strategies(a: u64, b: u64, spread: i64) -> RunReport {
    let mut report = example_report();
    let template = report.runs[1].clone();
    let make = |strategy: &str, succeeded: u64| {
        let mut run = template.clone();
        run.strategy = strategy.to_owned();
        run.totals.gave_up = run.totals.requests - succeeded;
        run.totals.succeeded = succeeded;
        with_seeds(&run, spread)
    };
    report.runs = vec![make("a", a), make("b", b)];
    report.scenario.strategies = vec!["a".to_owned(), "b".to_owned()];
    report
}

#[test]
fn strategies_within_noise_are_not_crowned() {
    // 200 and 198 of 240, give or take 10: the intervals overlap.
    let answers = report::answers(&two_strategies(200, 198, 10));
    assert!(
        answers[0].starts_with(
            "Best strategy on tier-1: a and b are within noise over 5 seeds (success: a 83.3% ± "
        ),
        "{answers:?}"
    );
    assert!(
        answers[0].contains("more seeds may tell them apart"),
        "{answers:?}"
    );
    // 200 and 150: far apart, a is the best.
    let answers = report::answers(&two_strategies(200, 150, 10));
    assert!(
        answers[0].starts_with("Best strategy on tier-1: a (83.3% ± "),
        "{answers:?}"
    );
    assert!(
        answers[0].ends_with("amplification; 5 seeds)."),
        "{answers:?}"
    );
}

#[test]
fn the_ranking_reads_the_means_over_the_seeds() {
    // b's first seed does better than a's, but its mean is lower, and the spread is nil.
    let mut report = two_strategies(200, 150, 0);
    report.runs[1].totals.succeeded = 230;
    report.runs[1].totals.gave_up = 10;
    let answers = report::answers(&report);
    assert!(
        answers[0].starts_with("Best strategy on tier-1: a ("),
        "{answers:?}"
    );
}

#[test]
fn a_seed_only_diff_moves_within_noise_and_a_real_move_is_worse() {
    let base = seeded(5);
    let mut noise = seeded(6);
    noise.scenario.seed = 8;
    let diff = ReportDiff::new(&base, &noise);
    assert!(diff.judged_by_seeds());
    assert!(diff.enough_seeds_to_gate());
    assert_eq!((diff.regressions(), diff.improvements()), (0, 0));
    assert!(diff.within_noise() > 0);
    let terminal = diff.terminal(Colour::Never);
    assert!(
        terminal.starts_with("example: no significant change (5 vs 5 seeds, 95% intervals;"),
        "{terminal}"
    );
    assert!(
        !terminal.contains("within noise ("),
        "moves within noise are only counted: {terminal}"
    );
    assert!(
        diff.markdown()
            .contains("No value moved outside the noise.")
    );
    assert!(diff.pairing_error().is_none());

    // The retrying strategy's p99 doubles on every seed.
    let mut worse = example_report();
    worse.runs[1].latency.p99_us *= 2;
    for run in &mut worse.runs {
        *run = with_seeds(run, 5);
    }
    let diff = ReportDiff::new(&base, &worse);
    let moves: Vec<(&str, Change)> = diff.runs[1]
        .deltas
        .iter()
        .map(|delta| (delta.metric, delta.change))
        .collect();
    assert_eq!(moves, [("p99", Change::Worse)]);
    assert_eq!(diff.verdict(), "regression");
    let json: serde_json::Value = serde_json::from_str(&diff.json()).unwrap();
    assert_eq!(json["regressions"], 1);
    assert_eq!(json["runs"][1]["changed"][0]["change"], "worse");
    assert!(json["runs"][1]["changed"][0]["base_interval"]["mean"].is_f64());
}

#[test]
fn a_move_smaller_than_the_minimum_change_is_noise() {
    let base = seeded(0);
    let mut head = example_report();
    // Constant over the seeds, so the intervals are points and never overlap: only the
    // minimum change can call the move noise.
    head.runs[1].latency.p99_us += head.runs[1].latency.p99_us / 200;
    for run in &mut head.runs {
        *run = with_seeds(run, 0);
    }
    let strict = ReportDiff::with_options(
        &base,
        &head,
        report::DiffOptions {
            min_change_percent: 0.1,
            ..Default::default()
        },
    );
    assert_eq!(strict.regressions(), 1);
    let default = ReportDiff::new(&base, &head);
    assert_eq!(default.regressions(), 0);
    assert_eq!(default.within_noise(), 1);
}

#[test]
fn runs_that_do_not_pair_are_named() {
    let base = example_report();
    let mut renamed = example_report();
    renamed.runs[1].strategy = "ours".to_owned();
    let error = ReportDiff::new(&base, &renamed).pairing_error().unwrap();
    assert_eq!(
        error.to_string(),
        "the runs do not pair: only in the base report: tier-1 / retry-after; only in the head report: tier-1 / ours (runs pair by server variant and strategy label; give both runs the same labels, e.g. `--strategy 'ours=full-jitter'` on both sides)"
    );
    let mut other = example_report();
    other.scenario.name = "other".to_owned();
    let error = ReportDiff::new(&base, &other).pairing_error().unwrap();
    assert!(
        error.to_string().starts_with(
            "the two runs are of different scenarios (base \"example\", head \"other\")"
        )
    );
}

#[test]
fn the_tier_needed_says_when_a_cheaper_tier_is_within_noise_of_enough() {
    let mut report = example_report();
    let mut tier_2 = report.scenario.servers[0].clone();
    tier_2.label = "tier-2".to_owned();
    tier_2.tier = Some("tier-2".to_owned());
    report.scenario.servers.push(tier_2);
    let template = report.runs[1].clone();
    let make = |server: &str, succeeded: u64, spread: i64| {
        let mut run = template.clone();
        run.server = server.to_owned();
        run.totals.requests = 1_000;
        run.totals.succeeded = succeeded;
        run.totals.gave_up = 1_000 - succeeded;
        with_seeds(&run, spread)
    };
    // Tier 1: 98.5% on its first seed and on average, give or take 1%: it may reach 99%.
    report.runs = vec![make("tier-1", 985, 10), make("tier-2", 1_000, 0)];
    let answers = report::answers(&report);
    let needed = answers.last().unwrap();
    assert!(
        needed.starts_with(
            "Tier needed: tier-2, the cheapest compared tier where a strategy (retry-after) "
        ),
        "{needed}"
    );
    assert!(
        needed.contains(
            "Over the seeds: tier-1 may be enough too: retry-after's success there, 98.5% ± "
        ),
        "{needed}"
    );
    // Far below the floor, tier 1 is not mentioned.
    report.runs[0] = make("tier-1", 900, 10);
    let answers = report::answers(&report);
    assert!(
        !answers.last().unwrap().contains("Over the seeds"),
        "{answers:?}"
    );
}
