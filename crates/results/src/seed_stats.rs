//! Runs over several seeds: each headline metric's per-seed values with their mean and a
//! Student's t confidence interval.
//!
//! One seed is one draw of the workload, the latencies and the jitter; a strategy comparison
//! on one seed cannot tell a real difference from that draw. Running every (variant, strategy)
//! on N seeds and reporting `mean ± half-width` says how much of a difference is noise. The
//! seeds themselves are the scenario's (`scenario::derive_seeds`); the executor (the command
//! line's parallel runner) runs them; this module only summarises the results, so it stays
//! pure.

use serde::{Deserialize, Serialize};

use crate::analysis::round_to;
use crate::result::RunResult;

/// The confidence level of an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confidence {
    /// 90%, two-sided.
    P90,
    /// 95%, two-sided: what `report.json` holds.
    #[default]
    P95,
    /// 99%, two-sided.
    P99,
}

impl Confidence {
    /// The level as a percentage, e.g. 95.
    pub fn percent(self) -> u32 {
        match self {
            Confidence::P90 => 90,
            Confidence::P95 => 95,
            Confidence::P99 => 99,
        }
    }

    /// The level for a percentage of 90, 95 or 99.
    pub fn from_percent(percent: u32) -> Option<Confidence> {
        match percent {
            90 => Some(Confidence::P90),
            95 => Some(Confidence::P95),
            99 => Some(Confidence::P99),
            _ => None,
        }
    }

    /// The two-sided Student's t quantile for `df` degrees of freedom, e.g. 2.776 for 95% and
    /// df = 4 (five seeds).
    ///
    /// A table for df 1 to 30 (the standard values, to three decimals), then the normal
    /// quantile (1.645, 1.960, 2.576): past 30 the t quantile is within 3% of it, and a table
    /// keeps the crate free of a statistics dependency for three numbers. `df = 0` has no
    /// quantile (one value has no spread) and gives infinity.
    ///
    /// ```
    /// use results::Confidence;
    /// assert_eq!(Confidence::P95.t_quantile(4), 2.776);
    /// assert_eq!(Confidence::P95.t_quantile(1_000), 1.96);
    /// ```
    pub fn t_quantile(self, df: u64) -> f64 {
        const T90: [f64; 30] = [
            6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782,
            1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711,
            1.708, 1.706, 1.703, 1.701, 1.699, 1.697,
        ];
        const T95: [f64; 30] = [
            12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
            2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
            2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
        ];
        const T99: [f64; 30] = [
            63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169, 3.106, 3.055,
            3.012, 2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845, 2.831, 2.819, 2.807, 2.797,
            2.787, 2.779, 2.771, 2.763, 2.756, 2.750,
        ];
        let (table, normal) = match self {
            Confidence::P90 => (&T90, 1.645),
            Confidence::P95 => (&T95, 1.96),
            Confidence::P99 => (&T99, 2.576),
        };
        match df {
            0 => f64::INFINITY,
            1..=30 => table[df as usize - 1],
            _ => normal,
        }
    }
}

/// A mean with its confidence interval: `mean ± half_width`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The mean of the values.
    pub mean: f64,
    /// Half the interval's width: `t * s / sqrt(n)`.
    pub half_width: f64,
}

impl Interval {
    /// The Student's t interval of the mean of `values` (at least two):
    /// `mean ± t(confidence, n - 1) * s / sqrt(n)`, with `s` the sample standard deviation
    /// (divided by `n - 1`). `None` for fewer than two values.
    ///
    /// ```
    /// use results::{Confidence, Interval};
    /// let interval = Interval::student_t(&[1.0, 2.0, 3.0], Confidence::P95).unwrap();
    /// assert_eq!(interval.mean, 2.0);
    /// // s = 1, t(95%, df 2) = 4.303, so the half-width is 4.303 / sqrt(3).
    /// assert!((interval.half_width - 4.303 / 3f64.sqrt()).abs() < 1e-12);
    /// ```
    pub fn student_t(values: &[f64], confidence: Confidence) -> Option<Interval> {
        let count = values.len();
        if count < 2 {
            return None;
        }
        let n = count as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values
            .iter()
            .map(|value| (value - mean) * (value - mean))
            .sum::<f64>()
            / (n - 1.0);
        let half_width = confidence.t_quantile(count as u64 - 1) * (variance / n).sqrt();
        Some(Interval { mean, half_width })
    }

    /// The lower end.
    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    /// The upper end.
    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }

    /// Whether the two intervals share a point.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.low() <= other.high() && other.low() <= self.high()
    }
}

/// The metrics a multi-seed run summarises, in the order reports list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeadlineMetric {
    /// Share of requests that succeeded (0 to 1).
    SuccessRate,
    /// Median end-to-end latency of succeeded requests, in microseconds.
    P50,
    /// 99th-percentile end-to-end latency of succeeded requests, in microseconds.
    P99,
    /// Attempts per request.
    Amplification,
    /// Share of attempts rejected with 429 (0 to 1).
    RateLimitedShare,
    /// Succeeded requests per minute.
    Goodput,
    /// Retries sent before the server's `retry-after`.
    EarlyRetries,
    /// Requests given up.
    GaveUp,
    /// A batch's completion time, in milliseconds.
    Makespan,
}

impl HeadlineMetric {
    /// Every metric, in report order.
    pub const ALL: [HeadlineMetric; 9] = [
        HeadlineMetric::SuccessRate,
        HeadlineMetric::P50,
        HeadlineMetric::P99,
        HeadlineMetric::Amplification,
        HeadlineMetric::RateLimitedShare,
        HeadlineMetric::Goodput,
        HeadlineMetric::EarlyRetries,
        HeadlineMetric::GaveUp,
        HeadlineMetric::Makespan,
    ];

    /// The key in `report.json`'s `seeds` object, e.g. `p99_us`.
    pub fn key(self) -> &'static str {
        match self {
            HeadlineMetric::SuccessRate => "success_rate",
            HeadlineMetric::P50 => "p50_us",
            HeadlineMetric::P99 => "p99_us",
            HeadlineMetric::Amplification => "amplification",
            HeadlineMetric::RateLimitedShare => "rate_limited_share",
            HeadlineMetric::Goodput => "goodput_rpm",
            HeadlineMetric::EarlyRetries => "early_retries",
            HeadlineMetric::GaveUp => "gave_up",
            HeadlineMetric::Makespan => "makespan_ms",
        }
    }

    /// Whether a larger value is better (success, goodput); otherwise smaller is.
    pub fn higher_is_better(self) -> bool {
        matches!(self, HeadlineMetric::SuccessRate | HeadlineMetric::Goodput)
    }

    /// The metric's value in one run; `None` when it has none (no success, so no latency; a
    /// batch that did not finish, so no makespan; no batch at all).
    pub fn value(self, run: &RunResult) -> Option<f64> {
        let totals = &run.totals;
        let latency = |micros: u64| (run.latency.count > 0).then_some(micros as f64);
        match self {
            HeadlineMetric::SuccessRate => Some(totals.success_rate()),
            HeadlineMetric::P50 => latency(run.latency.p50_us),
            HeadlineMetric::P99 => latency(run.latency.p99_us),
            HeadlineMetric::Amplification => Some(totals.amplification()),
            HeadlineMetric::RateLimitedShare => Some(if totals.attempts == 0 {
                0.0
            } else {
                totals.rate_limited as f64 / totals.attempts as f64
            }),
            HeadlineMetric::Goodput => Some(run.analysis.goodput.requests_per_minute),
            HeadlineMetric::EarlyRetries => Some(run.analysis.early_retries as f64),
            HeadlineMetric::GaveUp => Some(totals.gave_up as f64),
            HeadlineMetric::Makespan => run
                .batch
                .and_then(|batch| batch.makespan_ms)
                .map(|millis| millis as f64),
        }
    }

    /// Decimals kept in `report.json`: ratios to 6, the rest (counts, microseconds,
    /// milliseconds, requests per minute) to 3.
    fn decimals(self) -> i32 {
        match self {
            HeadlineMetric::SuccessRate
            | HeadlineMetric::Amplification
            | HeadlineMetric::RateLimitedShare => 6,
            _ => 3,
        }
    }
}

/// The headline values of one run on one seed: what the runner keeps of every seed but the
/// first, whose full [`RunResult`] the report holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedValues {
    /// One value per [`HeadlineMetric::ALL`] entry.
    values: [Option<f64>; 9],
    /// Whether the run has a batch (then it has a makespan entry, finished or not).
    has_batch: bool,
}

impl SeedValues {
    /// The headline values of `run`.
    pub fn of(run: &RunResult) -> SeedValues {
        SeedValues {
            values: HeadlineMetric::ALL.map(|metric| metric.value(run)),
            has_batch: run.batch.is_some(),
        }
    }
}

/// One headline metric over the seeds of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedMetric {
    /// The value on each seed, in the order of [`SeedStats::seeds`]; `null` where a seed has
    /// none (e.g. no latency without a success).
    pub values: Vec<Option<f64>>,
    /// The mean over the seeds; absent when a seed has no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Half the width of the 95% interval, `t(0.975, n - 1) * s / sqrt(n)`; absent with the
    /// mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_width: Option<f64>,
    /// The 95% interval, `[mean - half_width, mean + half_width]`; absent with the mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
}

impl SeedMetric {
    fn of(values: Vec<Option<f64>>, decimals: i32) -> SeedMetric {
        let values: Vec<Option<f64>> = values
            .into_iter()
            .map(|value| value.map(|value| round_to(value, decimals)))
            .collect();
        let present: Option<Vec<f64>> = values.iter().copied().collect();
        let interval = present.and_then(|present| Interval::student_t(&present, Confidence::P95));
        SeedMetric {
            mean: interval.map(|interval| round_to(interval.mean, decimals)),
            half_width: interval.map(|interval| round_to(interval.half_width, decimals)),
            ci95: interval.map(|interval| {
                [
                    round_to(interval.low(), decimals),
                    round_to(interval.high(), decimals),
                ]
            }),
            values,
        }
    }

    /// The per-seed values, when every seed has one.
    pub fn complete_values(&self) -> Option<Vec<f64>> {
        self.values.iter().copied().collect()
    }

    /// The interval as written (rounded), when there is one.
    pub fn interval(&self) -> Option<Interval> {
        Some(Interval {
            mean: self.mean?,
            half_width: self.half_width?,
        })
    }
}

/// A run's headline metrics over its seeds: the `seeds` object of a run in `report.json`,
/// present when the run used more than one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedStats {
    /// The seeds, the scenario's own first (see [`scenario::derive_seeds`]).
    pub seeds: Vec<u64>,
    /// Share of requests that succeeded (0 to 1).
    pub success_rate: SeedMetric,
    /// Median latency of succeeded requests, in microseconds.
    pub p50_us: SeedMetric,
    /// 99th-percentile latency of succeeded requests, in microseconds.
    pub p99_us: SeedMetric,
    /// Attempts per request.
    pub amplification: SeedMetric,
    /// Share of attempts rejected with 429 (0 to 1).
    pub rate_limited_share: SeedMetric,
    /// Succeeded requests per minute.
    pub goodput_rpm: SeedMetric,
    /// Retries sent before the server's `retry-after`.
    pub early_retries: SeedMetric,
    /// Requests given up.
    pub gave_up: SeedMetric,
    /// The batch's completion time in milliseconds (`null` on a seed where it did not
    /// finish); absent for a scenario without a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub makespan_ms: Option<SeedMetric>,
}

impl SeedStats {
    /// The statistics of one run over `seeds`, from its values on each seed in the same order.
    ///
    /// ```
    /// let run = results::RunMetrics::new(vec!["app".to_owned()], 1_000_000_000)
    ///     .finish("tier-1".to_owned(), "none".to_owned());
    /// let values: Vec<_> = (0..3).map(|_| results::SeedValues::of(&run)).collect();
    /// let stats = results::SeedStats::of(vec![1, 2, 3], &values);
    /// assert_eq!(stats.seeds, vec![1, 2, 3]);
    /// assert_eq!(stats.gave_up.mean, Some(0.0));
    /// ```
    pub fn of(seeds: Vec<u64>, per_seed: &[SeedValues]) -> SeedStats {
        let metric = |metric: HeadlineMetric| {
            let index = HeadlineMetric::ALL
                .iter()
                .position(|candidate| *candidate == metric)
                .unwrap_or(0);
            SeedMetric::of(
                per_seed.iter().map(|seed| seed.values[index]).collect(),
                metric.decimals(),
            )
        };
        let has_batch = per_seed.iter().any(|seed| seed.has_batch);
        SeedStats {
            seeds,
            success_rate: metric(HeadlineMetric::SuccessRate),
            p50_us: metric(HeadlineMetric::P50),
            p99_us: metric(HeadlineMetric::P99),
            amplification: metric(HeadlineMetric::Amplification),
            rate_limited_share: metric(HeadlineMetric::RateLimitedShare),
            goodput_rpm: metric(HeadlineMetric::Goodput),
            early_retries: metric(HeadlineMetric::EarlyRetries),
            gave_up: metric(HeadlineMetric::GaveUp),
            makespan_ms: has_batch.then(|| metric(HeadlineMetric::Makespan)),
        }
    }

    /// One metric's statistics; `None` only for a makespan without a batch.
    pub fn metric(&self, metric: HeadlineMetric) -> Option<&SeedMetric> {
        Some(match metric {
            HeadlineMetric::SuccessRate => &self.success_rate,
            HeadlineMetric::P50 => &self.p50_us,
            HeadlineMetric::P99 => &self.p99_us,
            HeadlineMetric::Amplification => &self.amplification,
            HeadlineMetric::RateLimitedShare => &self.rate_limited_share,
            HeadlineMetric::Goodput => &self.goodput_rpm,
            HeadlineMetric::EarlyRetries => &self.early_retries,
            HeadlineMetric::GaveUp => &self.gave_up,
            HeadlineMetric::Makespan => return self.makespan_ms.as_ref(),
        })
    }

    /// How many seeds.
    pub fn count(&self) -> usize {
        self.seeds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{Confidence, Interval};

    #[test]
    fn the_interval_is_students_t_over_the_values() {
        // Mean 10, sample standard deviation 2 over five values: 2.776 x 2 / sqrt(5).
        let values = [8.0, 9.0, 10.0, 11.0, 12.0];
        let sd = (10.0f64 / 4.0).sqrt();
        let interval = Interval::student_t(&values, Confidence::P95).unwrap();
        assert_eq!(interval.mean, 10.0);
        assert!((interval.half_width - 2.776 * sd / 5f64.sqrt()).abs() < 1e-12);
        let wider = Interval::student_t(&values, Confidence::P99).unwrap();
        let narrower = Interval::student_t(&values, Confidence::P90).unwrap();
        assert!(narrower.half_width < interval.half_width);
        assert!(interval.half_width < wider.half_width);
        assert_eq!(Interval::student_t(&[1.0], Confidence::P95), None);
        let constant = Interval::student_t(&[3.0, 3.0, 3.0], Confidence::P95).unwrap();
        assert_eq!(constant.half_width, 0.0);
        assert!(constant.overlaps(&constant));
        assert!(!constant.overlaps(&Interval {
            mean: 4.0,
            half_width: 0.5
        }));
    }

    #[test]
    fn the_t_table_falls_to_the_normal_quantile_past_30() {
        assert_eq!(Confidence::P95.t_quantile(1), 12.706);
        assert_eq!(Confidence::P95.t_quantile(30), 2.042);
        assert_eq!(Confidence::P95.t_quantile(31), 1.96);
        assert_eq!(Confidence::P90.t_quantile(31), 1.645);
        assert_eq!(Confidence::P99.t_quantile(31), 2.576);
        assert!(Confidence::P95.t_quantile(0).is_infinite());
        for confidence in [Confidence::P90, Confidence::P95, Confidence::P99] {
            assert_eq!(
                Confidence::from_percent(confidence.percent()),
                Some(confidence)
            );
            for df in 1..40 {
                assert!(confidence.t_quantile(df) >= confidence.t_quantile(df + 1));
            }
        }
    }
}
