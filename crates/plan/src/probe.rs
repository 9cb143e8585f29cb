//! One simulation of a plan, a probe: a tier under a rejection rule, at a growth factor, with
//! one strategy on one seed; and what the plan keeps of its result, a [`RunSummary`].
//!
//! Probes are independent: the command line's parallel runner spreads them over threads, and
//! the planner reads their summaries in probe order, never in the order they finished.

use std::collections::BTreeMap;

use results::RunResult;
use scenario::{Scenario, ServerVariant, SloMetric};
use serde::Serialize;

use crate::growth::Growth;

/// What to simulate: indexes into the plan's tiers, rules, strategies and seeds, and a factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Probe {
    /// Index into [`crate::PlanSpec::rules`].
    pub rule: usize,
    /// Index into [`crate::PlanSpec::tiers`].
    pub tier: usize,
    /// The growth factor.
    pub growth: Growth,
    /// Index into the scenario's strategies.
    pub strategy: usize,
    /// Index into the plan's seeds.
    pub seed: usize,
}

/// The limits a plan reports on, in the order it lists them.
pub const LIMIT_KINDS: [&str; 4] = ["rpm", "tpm", "rpd", "tpd"];

/// Peak use of each limit, as a share of it (1.0 is the whole limit).
///
/// Per-minute limits: the most admitted in any minute of the run (sliding over its time bins).
/// A token bucket starts full, so the first minute can admit up to twice the limit. Per-day
/// limits: what the run admitted, at the run's average rate over a whole day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Utilisation {
    /// Requests per minute; absent without an RPM limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<f64>,
    /// Tokens per minute (prompt plus `max_tokens`, as charged); absent without a TPM limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<f64>,
    /// Requests per day at the run's average rate; absent without an RPD limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpd: Option<f64>,
    /// Tokens per day at the run's average rate; absent without a TPD limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpd: Option<f64>,
}

impl Utilisation {
    /// The value for a kind of [`LIMIT_KINDS`].
    pub fn get(&self, kind: &str) -> Option<f64> {
        match kind {
            "rpm" => self.rpm,
            "tpm" => self.tpm,
            "rpd" => self.rpd,
            "tpd" => self.tpd,
            _ => None,
        }
    }

    /// The larger of two utilisations, limit by limit.
    pub fn max(self, other: Utilisation) -> Utilisation {
        let larger = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Utilisation {
            rpm: larger(self.rpm, other.rpm),
            tpm: larger(self.tpm, other.tpm),
            rpd: larger(self.rpd, other.rpd),
            tpd: larger(self.tpd, other.tpd),
        }
    }

    /// The limit used most, with its share.
    pub fn highest(&self) -> Option<(&'static str, f64)> {
        LIMIT_KINDS
            .iter()
            .filter_map(|kind| self.get(kind).map(|share| (*kind, share)))
            .fold(None, |best, (kind, share)| match best {
                Some((_, best_share)) if best_share >= share => best,
                _ => Some((kind, share)),
            })
    }
}

/// What a plan keeps of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's value of each `[expect]` metric, in [`SloMetric::ALL`] order (`None` where it
    /// has none, e.g. no p99 without a success).
    pub values: [Option<f64>; 8],
    /// Logical requests.
    pub requests: u64,
    /// 429s by limit kind (`rpm`, `tpm`, ...), as the run's `rejections`.
    pub rejections: BTreeMap<String, u64>,
    /// Peak use of each limit.
    pub utilisation: Utilisation,
    /// Prompt tokens of succeeded requests: what is billed as input.
    pub prompt_tokens: u64,
    /// Completion tokens of succeeded requests: what is billed as output.
    pub completion_tokens: u64,
    /// Admitted requests and charged tokens per minute over the run, for the chart of the
    /// recommended tier: (minute start in seconds, requests, tokens).
    pub per_minute: Vec<(u64, u64, u64)>,
}

impl RunSummary {
    /// The summary of `run`, a run of `scenario` on `variant`.
    pub fn of(run: &RunResult, scenario: &Scenario, variant: &ServerVariant) -> RunSummary {
        let values = SloMetric::ALL.map(|metric| report::metric_value(run, metric));
        let limits = &variant.limits;
        let bin_ms = u64::try_from(scenario.bin_width.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        // Admitted past the limiter: attempts that ended neither in a 429 nor in a server
        // error (a fault answers before the limiter); timeouts were admitted, then abandoned.
        let admitted: Vec<u64> = run
            .bins
            .iter()
            .map(|bin| {
                bin.attempts
                    .saturating_sub(bin.rate_limited)
                    .saturating_sub(bin.server_errors)
            })
            .collect();
        let tokens: Vec<u64> = run.bins.iter().map(|bin| bin.admitted_tokens).collect();
        let window = (60_000u64.div_ceil(bin_ms) as usize).clamp(1, admitted.len().max(1));
        let window_minutes = (window as u64 * bin_ms) as f64 / 60_000.0;
        let peak_per_minute = |series: &[u64]| -> f64 {
            let mut sum: u64 = series.iter().take(window).sum();
            let mut peak = sum;
            for index in window..series.len() {
                sum = sum + series[index] - series[index - window];
                peak = peak.max(sum);
            }
            peak as f64 / window_minutes
        };
        let active_days = scenario.duration.as_secs_f64().max(1.0) / 86_400.0;
        let per_day = |series: &[u64]| series.iter().sum::<u64>() as f64 / active_days;
        let share = |used: f64, limit: Option<u64>| {
            limit
                .filter(|limit| *limit > 0)
                .map(|limit| round(used / limit as f64))
        };
        let utilisation = Utilisation {
            rpm: share(peak_per_minute(&admitted), limits.rpm),
            tpm: share(peak_per_minute(&tokens), limits.tpm),
            rpd: share(per_day(&admitted), limits.rpd),
            tpd: share(per_day(&tokens), limits.tpd),
        };
        let bins_per_minute = (60_000 / bin_ms).max(1) as usize;
        let per_minute = admitted
            .chunks(bins_per_minute)
            .zip(tokens.chunks(bins_per_minute))
            .enumerate()
            .map(|(minute, (requests, tokens))| {
                (
                    (minute * bins_per_minute) as u64 * bin_ms / 1_000,
                    requests.iter().sum(),
                    tokens.iter().sum(),
                )
            })
            .collect();
        RunSummary {
            values,
            requests: run.totals.requests,
            rejections: run
                .rejections
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(kind, count)| (kind.clone(), *count))
                .collect(),
            utilisation,
            prompt_tokens: run.totals.prompt_tokens,
            completion_tokens: run.totals.completion_tokens,
            per_minute,
        }
    }

    /// The run's value of `metric`.
    pub fn value(&self, metric: SloMetric) -> Option<f64> {
        let index = SloMetric::ALL
            .iter()
            .position(|candidate| *candidate == metric)?;
        self.values[index]
    }
}

/// A ratio rounded to six decimals, as `report.json` keeps them.
pub(crate) fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// The scenario one probe runs: `base` grown by `growth`, on `variant` alone, with the one
/// strategy and seed. Its only run is index 0.
pub(crate) fn probe_scenario(
    base: &Scenario,
    variant: &ServerVariant,
    growth: Growth,
    strategy: usize,
    seed: u64,
) -> Result<Scenario, crate::growth::GrowthError> {
    let mut scenario = crate::growth::scale(base, growth)?;
    scenario.seed = seed;
    scenario.seeds = 1;
    scenario.server.variants = vec![variant.clone()];
    scenario.strategies = vec![base.strategies[strategy].clone()];
    Ok(scenario)
}
