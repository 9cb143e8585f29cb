//! Reports over several seeds: each headline metric as `mean ± half-width` of its 95%
//! interval, in a table every renderer shows after the scoreboard, and the words for it.
//!
//! The scoreboard keeps the first seed's numbers (the detailed fields of `report.json`), so its
//! marks and the detail tables stay those of one real run; this table says how far those
//! numbers move from seed to seed.

use results::{HeadlineMetric, RunReport, RunResult, SeedMetric};

use crate::units;

/// How many seeds the report's runs used, when more than one.
pub(crate) fn seed_count(report: &RunReport) -> Option<usize> {
    report
        .runs
        .iter()
        .filter_map(|run| run.seeds.as_ref())
        .map(results::SeedStats::count)
        .max()
        .filter(|count| *count > 1)
}

/// The short title of a metric, as the scoreboard names its column.
pub(crate) fn title(metric: HeadlineMetric) -> &'static str {
    match metric {
        HeadlineMetric::SuccessRate => "success",
        HeadlineMetric::P50 => "p50",
        HeadlineMetric::P99 => "p99",
        HeadlineMetric::Amplification => "amplif.",
        HeadlineMetric::RateLimitedShare => "429 share",
        HeadlineMetric::Goodput => "goodput",
        HeadlineMetric::EarlyRetries => "early retries",
        HeadlineMetric::GaveUp => "gave up",
        HeadlineMetric::Makespan => "makespan",
    }
}

/// A value of `metric` in its unit: `99.2%`, `1.20s`, `1.05x`, `480/min`, `12`.
pub(crate) fn format_value(metric: HeadlineMetric, value: f64) -> String {
    match metric {
        HeadlineMetric::SuccessRate | HeadlineMetric::RateLimitedShare => units::percent(value),
        HeadlineMetric::P50 | HeadlineMetric::P99 => units::latency(value.max(0.0).round() as u64),
        HeadlineMetric::Amplification => units::factor(value),
        HeadlineMetric::Goodput => units::per_minute(value.max(0.0)),
        // A mean of counts keeps a decimal while it is small enough for one to matter.
        HeadlineMetric::EarlyRetries | HeadlineMetric::GaveUp if value.abs() >= 100.0 => {
            format!("{value:.0}")
        }
        HeadlineMetric::EarlyRetries | HeadlineMetric::GaveUp => format!("{value:.1}"),
        HeadlineMetric::Makespan => units::duration_ms(value.max(0.0).round() as u64),
    }
}

/// `99.2% ± 0.4%`; `n/a` when a seed has no value (e.g. no success, so no p99).
pub(crate) fn format_interval(metric: HeadlineMetric, seeds: &SeedMetric) -> String {
    match seeds.interval() {
        Some(interval) => format!(
            "{} ± {}",
            format_value(metric, interval.mean),
            format_value(metric, interval.half_width)
        ),
        None => "n/a".to_owned(),
    }
}

/// The metrics the report has numbers for: every headline metric, the makespan only with a
/// batch.
fn metrics(report: &RunReport) -> Vec<HeadlineMetric> {
    let has_makespan = report
        .runs
        .iter()
        .filter_map(|run| run.seeds.as_ref())
        .any(|seeds| seeds.makespan_ms.is_some());
    HeadlineMetric::ALL
        .into_iter()
        .filter(|metric| *metric != HeadlineMetric::Makespan || has_makespan)
        .collect()
}

/// The seeds table: titles, then one row per run with its server, strategy and one
/// `mean ± half-width` per metric.
pub(crate) struct SeedsTable {
    /// How many seeds.
    pub seeds: usize,
    /// The first seed, whose numbers the scoreboard shows.
    pub first_seed: u64,
    /// Whether to show the server column.
    pub several_servers: bool,
    /// Metric titles.
    pub titles: Vec<&'static str>,
    /// (server, strategy, cells).
    pub rows: Vec<(String, String, Vec<String>)>,
}

impl SeedsTable {
    /// `Over 5 seeds (mean ± half-width of the 95% interval; the table above is seed 7):`.
    pub fn caption(&self) -> String {
        format!(
            "Over {} seeds (mean ± half-width of the 95% confidence interval, Student's t; the scoreboard shows seed {}):",
            self.seeds, self.first_seed
        )
    }
}

/// The seeds table of a report whose runs used more than one seed.
pub(crate) fn seeds_table(report: &RunReport) -> Option<SeedsTable> {
    let seeds = seed_count(report)?;
    let metrics = metrics(report);
    let rows = report
        .runs
        .iter()
        .map(|run| {
            let cells = metrics
                .iter()
                .map(|metric| {
                    run.seeds
                        .as_ref()
                        .and_then(|stats| stats.metric(*metric))
                        .map_or_else(|| "-".to_owned(), |stats| format_interval(*metric, stats))
                })
                .collect();
            (run.server.clone(), run.strategy.clone(), cells)
        })
        .collect();
    Some(SeedsTable {
        seeds,
        first_seed: report.scenario.seed,
        several_servers: report
            .runs
            .iter()
            .any(|run| run.server != report.runs[0].server),
        titles: metrics.into_iter().map(title).collect(),
        rows,
    })
}

/// A metric of a run for ranking: the mean over its seeds when it has them, else its value.
pub(crate) fn ranking_value(run: &RunResult, metric: HeadlineMetric) -> Option<f64> {
    match run.seeds.as_ref().and_then(|stats| stats.metric(metric)) {
        Some(stats) => stats.interval().map(|interval| interval.mean),
        None => metric.value(run),
    }
}

/// `99.2% ± 0.4%` for a run's metric over its seeds, or its single value.
pub(crate) fn describe(run: &RunResult, metric: HeadlineMetric) -> String {
    match run.seeds.as_ref().and_then(|stats| stats.metric(metric)) {
        Some(stats) => format_interval(metric, stats),
        None => metric
            .value(run)
            .map_or_else(|| "n/a".to_owned(), |value| format_value(metric, value)),
    }
}

/// Whether two runs' ranking is within the noise of their seeds: on the first of success, p99
/// and amplification where they differ, their 95% intervals overlap. Returns that metric.
///
/// Metrics that are the same constant on every seed of both (say 100% success) do not decide,
/// and the next one is looked at, as the ranking does. A metric one run has and the other has
/// not (a p99 without any success) decides. Runs without seed statistics are never within noise:
/// one seed has no interval to compare.
pub(crate) fn within_noise(a: &RunResult, b: &RunResult) -> Option<HeadlineMetric> {
    let (a_stats, b_stats) = (a.seeds.as_ref()?, b.seeds.as_ref()?);
    for metric in [
        HeadlineMetric::SuccessRate,
        HeadlineMetric::P99,
        HeadlineMetric::Amplification,
    ] {
        let a_interval = a_stats.metric(metric).and_then(SeedMetric::interval);
        let b_interval = b_stats.metric(metric).and_then(SeedMetric::interval);
        match (a_interval, b_interval) {
            (None, None) => continue,
            (Some(a), Some(b)) => {
                let constant_and_equal =
                    a.half_width == 0.0 && b.half_width == 0.0 && a.mean == b.mean;
                if constant_and_equal {
                    continue;
                }
                return a.overlaps(&b).then_some(metric);
            }
            _ => return None,
        }
    }
    None
}
