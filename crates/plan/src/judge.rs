//! Whether a cell of the plan meets the criterion: the scenario's `[expect]` thresholds (or
//! 99% success when it sets none), judged over the seeds.
//!
//! With three or more seeds a strategy meets a threshold when the pessimistic end of the 95%
//! Student's t interval of its values does (the lower end of a minimum, the upper end of a
//! maximum), so noise cannot carry a tier over the line. With one or two seeds, too few for an
//! interval worth the name, every seed must meet it. A cell meets the criterion when its best
//! strategy does.

use results::{Confidence, Interval};
use scenario::{Expectations, SloMetric};
use serde::Serialize;

use crate::probe::{RunSummary, Utilisation, round};

/// The fewest seeds judged by their interval rather than seed by seed.
pub const MIN_INTERVAL_SEEDS: usize = 3;

/// One threshold as the plan applies it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    /// The metric's `[expect]` key, e.g. `min_success_rate`.
    pub metric: SloMetric,
    /// The bound in the metric's unit.
    pub limit: f64,
    /// Where it comes from: `scenario.toml:12:20`, or `default` for the 99% success rule.
    pub from: String,
}

/// The thresholds that apply to strategy `label`: its `[expect]` ones, plus 99% success
/// ([`report::SURVIVAL_SUCCESS_RATE`]) when none bounds success.
pub fn criteria(expect: &Expectations, label: &str) -> Vec<Criterion> {
    let mut criteria: Vec<Criterion> = SloMetric::ALL
        .into_iter()
        .filter_map(|metric| {
            let threshold = expect.applying_to(metric, label)?;
            Some(Criterion {
                metric,
                limit: threshold.limit,
                from: threshold.location.to_string(),
            })
        })
        .collect();
    if !criteria
        .iter()
        .any(|criterion| criterion.metric == SloMetric::SuccessRate)
    {
        criteria.insert(
            0,
            Criterion {
                metric: SloMetric::SuccessRate,
                limit: report::SURVIVAL_SUCCESS_RATE,
                from: "default".to_owned(),
            },
        );
    }
    criteria
}

/// A value over the seeds: the mean and the 95% interval (both ends the value itself on one
/// seed; on two, the range of the two).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

impl Spread {
    /// The spread of `values` (at least one).
    pub fn of(values: &[f64]) -> Spread {
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        let (low, high) = if values.len() >= MIN_INTERVAL_SEEDS {
            Interval::student_t(values, Confidence::P95)
                .map_or((mean, mean), |interval| (interval.low(), interval.high()))
        } else {
            let low = values.iter().copied().fold(f64::INFINITY, f64::min);
            let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (low, high)
        };
        Spread {
            mean: round(mean),
            low: round(low),
            high: round(high),
        }
    }

    /// The end a threshold of `metric` is judged by: the lower for a minimum, the upper for a
    /// maximum.
    pub fn pessimistic(&self, metric: SloMetric) -> f64 {
        if metric.is_minimum() {
            self.low
        } else {
            self.high
        }
    }
}

/// One strategy in one cell, over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyCell {
    /// The strategy's label.
    pub strategy: String,
    /// Whether it meets every criterion.
    pub meets: bool,
    /// The criteria it misses, as `success rate 97.1% < 99.0%` (the judged end of the
    /// interval); empty when it meets them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<String>,
    /// Share of requests that succeeded.
    pub success: Spread,
    /// p99 end-to-end latency in seconds; absent when a seed had no success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_s: Option<Spread>,
    /// Attempts per request.
    pub amplification: Spread,
}

/// Judges one strategy over its seeds' runs (at least one).
pub fn judge_strategy(label: &str, criteria: &[Criterion], runs: &[&RunSummary]) -> StrategyCell {
    let values = |metric: SloMetric| -> Option<Vec<f64>> {
        runs.iter().map(|run| run.value(metric)).collect()
    };
    let mut misses = Vec::new();
    for criterion in criteria {
        let Some(values) = values(criterion.metric) else {
            misses.push(format!(
                "{} n/a on a seed (no value to judge)",
                criterion.metric
            ));
            continue;
        };
        let judged = if values.len() >= MIN_INTERVAL_SEEDS {
            Spread::of(&values).pessimistic(criterion.metric)
        } else if criterion.metric.is_minimum() {
            values.iter().copied().fold(f64::INFINITY, f64::min)
        } else {
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        };
        if !criterion.metric.passes(judged, criterion.limit) {
            let comparison = if criterion.metric.is_minimum() {
                "<"
            } else {
                ">"
            };
            misses.push(format!(
                "{} {} {comparison} {}",
                criterion.metric,
                report::format_value(criterion.metric, judged),
                report::format_value(criterion.metric, criterion.limit)
            ));
        }
    }
    let spread = |metric: SloMetric| values(metric).map(|values| Spread::of(&values));
    StrategyCell {
        strategy: label.to_owned(),
        meets: misses.is_empty(),
        misses,
        success: spread(SloMetric::SuccessRate).unwrap_or(Spread {
            mean: 0.0,
            low: 0.0,
            high: 0.0,
        }),
        p99_s: spread(SloMetric::P99Latency),
        amplification: spread(SloMetric::Amplification).unwrap_or(Spread {
            mean: 0.0,
            low: 0.0,
            high: 0.0,
        }),
    }
}

/// The index of the best strategy: one that meets the criteria first, then the highest mean
/// success, the lowest mean p99 (none last), the lowest mean amplification, the first listed.
pub fn best_strategy(cells: &[StrategyCell]) -> usize {
    let mut best = 0;
    for (index, cell) in cells.iter().enumerate().skip(1) {
        if better(cell, &cells[best]) {
            best = index;
        }
    }
    best
}

fn better(candidate: &StrategyCell, incumbent: &StrategyCell) -> bool {
    use std::cmp::Ordering;
    let by_meeting = candidate.meets.cmp(&incumbent.meets);
    let by_success = candidate
        .success
        .mean
        .partial_cmp(&incumbent.success.mean)
        .unwrap_or(Ordering::Equal);
    let p99 = |cell: &StrategyCell| cell.p99_s.map_or(f64::INFINITY, |spread| spread.mean);
    let by_p99 = p99(incumbent)
        .partial_cmp(&p99(candidate))
        .unwrap_or(Ordering::Equal);
    let by_amplification = incumbent
        .amplification
        .mean
        .partial_cmp(&candidate.amplification.mean)
        .unwrap_or(Ordering::Equal);
    by_meeting
        .then(by_success)
        .then(by_p99)
        .then(by_amplification)
        == Ordering::Greater
}

/// The peak utilisation over several runs, limit by limit.
pub fn peak_utilisation(runs: &[&RunSummary]) -> Utilisation {
    runs.iter().fold(Utilisation::default(), |peak, run| {
        peak.max(run.utilisation)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(success: f64, p99: Option<f64>) -> RunSummary {
        let mut values = [None; 8];
        values[0] = Some(success);
        values[1] = p99;
        values[2] = Some(1.0);
        RunSummary {
            values,
            requests: 100,
            rejections: Default::default(),
            utilisation: Utilisation::default(),
            prompt_tokens: 0,
            completion_tokens: 0,
            per_minute: Vec::new(),
        }
    }

    fn default_criteria() -> Vec<Criterion> {
        criteria(&Expectations::default(), "any")
    }

    #[test]
    fn without_expect_the_criterion_is_99_percent_success() {
        let criteria = default_criteria();
        assert_eq!(criteria.len(), 1);
        assert_eq!(criteria[0].limit, 0.99);
        assert_eq!(criteria[0].from, "default");
    }

    #[test]
    fn with_fewer_than_three_seeds_every_seed_must_meet() {
        let criteria = default_criteria();
        let (good, bad) = (run(0.999, Some(1.0)), run(0.98, Some(1.0)));
        assert!(judge_strategy("a", &criteria, &[&good, &good]).meets);
        let cell = judge_strategy("a", &criteria, &[&good, &bad]);
        assert!(!cell.meets);
        assert_eq!(cell.misses, ["success rate 98.0% < 99.0%"]);
    }

    #[test]
    fn with_three_seeds_the_lower_end_of_the_interval_must_meet() {
        let criteria = default_criteria();
        // Mean 99.5%, but spread so wide the interval reaches below 99%.
        let noisy = [
            run(1.0, Some(1.0)),
            run(0.995, Some(1.0)),
            run(0.99, Some(1.0)),
        ];
        let cell = judge_strategy("a", &criteria, &noisy.iter().collect::<Vec<_>>());
        assert_eq!(cell.success.mean, 0.995);
        assert!(cell.success.low < 0.99, "{:?}", cell.success);
        assert!(!cell.meets, "every seed meets 99%, the interval does not");
        let steady = [
            run(0.996, Some(1.0)),
            run(0.995, Some(1.0)),
            run(0.994, Some(1.0)),
        ];
        assert!(judge_strategy("a", &criteria, &steady.iter().collect::<Vec<_>>()).meets);
    }

    #[test]
    fn the_best_strategy_meets_first_then_succeeds_most_then_is_fastest() {
        let criteria = default_criteria();
        let cells = [
            judge_strategy("slow", &criteria, &[&run(0.999, Some(9.0))]),
            judge_strategy("fast", &criteria, &[&run(0.999, Some(2.0))]),
            judge_strategy("failing", &criteria, &[&run(0.5, Some(0.1))]),
        ];
        assert_eq!(best_strategy(&cells), 1);
        assert_eq!(best_strategy(&cells[2..]), 0);
        let none_meet = [
            judge_strategy("a", &criteria, &[&run(0.5, None)]),
            judge_strategy("b", &criteria, &[&run(0.7, Some(30.0))]),
        ];
        assert_eq!(best_strategy(&none_meet), 1);
    }
}
