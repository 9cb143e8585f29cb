//! What `plan.json` holds (docs/plan.md describes every field): the judged cells, each
//! tier's breaking point and binding limit, the cheapest tier per growth, the verdict and the
//! monthly cost, with the words every renderer shows for them.
//!
//! Every number is an integer, a growth factor in thousandths or a ratio rounded to six
//! decimals, and every list is in a fixed order, so the same inputs give the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bisect::BreakingPoint;
use crate::growth::{GroupScaling, Growth};
use crate::judge::{Criterion, StrategyCell};
use crate::probe::Utilisation;

/// Version of the `plan.json` layout; bumped on incompatible changes.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// A capacity plan: `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// [`PLAN_FORMAT_VERSION`].
    pub format_version: u32,
    /// The scenario planned for.
    pub scenario: PlanScenario,
    /// Tiers swept, cheapest first.
    pub tiers: Vec<String>,
    /// The growth grid.
    pub growth: Vec<Growth>,
    /// The bisection's precision: a breaking point is bracketed at least this closely.
    pub precision: Growth,
    /// The seeds every cell ran on.
    pub seeds: Vec<u64>,
    /// How the seeds are judged: `interval` (the pessimistic end of the 95% interval, with 3
    /// seeds or more) or `every-seed`.
    pub judged_by: &'static str,
    /// The strategies compared in every cell.
    pub strategies: Vec<PlanStrategy>,
    /// What grows in each client group.
    pub scaling: Vec<GroupScaling>,
    /// The plan under its rejection rule first, then under each other rule compared.
    pub rules: Vec<RulePlan>,
    /// The answer.
    pub verdict: PlanVerdict,
    /// The monthly cost at each growth factor of the grid, on the cheapest tier that meets the
    /// criterion there.
    pub cost: Vec<MonthlyCost>,
    /// Simulations run.
    pub simulations: usize,
}

/// The scenario a plan is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanScenario {
    pub name: String,
    pub description: String,
    pub model: String,
    pub seed: u64,
    pub duration_ms: u64,
    pub drain_ms: u64,
}

/// A strategy of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanStrategy {
    /// Its label in tables.
    pub label: String,
    /// Its full spec.
    pub spec: String,
    /// Whether it paces sends on the client (`retry::PACING_STRATEGIES`) rather than only
    /// retrying.
    pub paces: bool,
    /// The criteria it is judged by.
    pub criteria: Vec<Criterion>,
}

/// The plan under one rejection rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulePlan {
    /// The rule, as `limits.rejected_requests` writes it.
    pub rule: &'static str,
    /// Every cell probed, tier by tier, growth ascending: the grid's and the bisection's.
    pub cells: Vec<Cell>,
    /// Each tier's breaking point and what binds it.
    pub tiers: Vec<TierPlan>,
    /// The cheapest tier that meets the criterion at each growth factor of the grid.
    pub cheapest: Vec<CheapestTier>,
}

/// One (tier, growth) of a plan, judged over its strategies and seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub tier: String,
    pub growth: Growth,
    /// On the grid (`false`: a bisection probe).
    pub on_grid: bool,
    /// Whether the best strategy meets the criterion.
    pub meets: bool,
    /// The best strategy's label.
    pub best: String,
    /// Whether a strategy that paces sends meets the criterion here.
    pub paced_meets: bool,
    /// Whether a strategy that only retries meets the criterion here.
    pub retries_alone_meet: bool,
    /// The best strategy's requests, mean over the seeds.
    pub requests: f64,
    /// Its billed prompt tokens (succeeded requests), mean over the seeds.
    pub prompt_tokens: f64,
    /// Its billed completion tokens, mean over the seeds.
    pub completion_tokens: f64,
    /// Its 429s by limit, mean over the seeds.
    pub rejections: BTreeMap<String, f64>,
    /// Its peak use of each limit, the largest over the seeds.
    pub utilisation: Utilisation,
    /// Its admitted requests and tokens per minute on the first seed, `[start_s, requests,
    /// tokens]`: the utilisation chart.
    pub per_minute: Vec<(u64, u64, u64)>,
    /// Every strategy, in the scenario's order.
    pub strategies: Vec<StrategyCell>,
}

/// One tier under one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierPlan {
    pub tier: String,
    /// The tier's limits for the scenario's model: `rpm`, `tpm`, `rpd`, `tpd` (absent: none).
    pub limits: TierLimits,
    /// The largest growth it sustains (bisected under the plan's rule; from the grid under the
    /// others).
    pub breaking_point: BreakingPoint,
    /// The limit that binds first: the one with the most 429s where the tier first fails,
    /// else (no 429s, or no failure) the one used most. `None` without any data.
    pub binding_limit: Option<String>,
    /// Peak use of each limit at the breaking point (the largest factor it sustains; the
    /// smallest probed when it sustains none).
    pub utilisation: Utilisation,
    /// The best strategy at the breaking point.
    pub best_strategy: Option<String>,
    /// The largest growth probed at which a pacing strategy meets the criterion, every
    /// smaller probe meeting too; `None` when none does (or none was compared).
    pub paced_sustains: Option<Growth>,
    /// The same for strategies that only retry.
    pub retries_alone_sustain: Option<Growth>,
}

/// A tier's limits for the scenario's model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TierLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u64>,
}

/// The cheapest tier at one growth factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheapestTier {
    pub growth: Growth,
    /// `None` when no tier swept meets the criterion.
    pub tier: Option<String>,
}

/// The answer, in three lines and as values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanVerdict {
    /// Which tier now, when to upgrade, what it costs; a fourth line when counted rejections
    /// change the answer.
    pub lines: Vec<String>,
    /// The cheapest tier at the grid's smallest factor.
    pub tier_now: Option<String>,
    /// The growth factor past which that tier no longer holds (where it first failed).
    pub upgrade_at: Option<Growth>,
    /// The cheapest tier that holds past it.
    pub next_tier: Option<String>,
    /// The cheapest tier per growth under each other rule, when it differs from the plan's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differs_under: Vec<String>,
}

/// The cost of a month of the scenario's traffic at one growth factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthlyCost {
    pub growth: Growth,
    /// The tier it is costed on: the cheapest that meets the criterion, else the last swept
    /// (whose successes are then fewer than the traffic's requests).
    pub tier: String,
    /// Whether that tier meets the criterion.
    pub tier_meets: bool,
    /// Requests in 30 days.
    pub requests: u64,
    /// Billed input tokens in 30 days (succeeded requests' prompts).
    pub input_tokens: u64,
    /// Of which served from the prompt cache (`--cached-share`).
    pub cached_input_tokens: u64,
    /// Billed output tokens in 30 days.
    pub output_tokens: u64,
    /// The list-price cost in US dollars.
    pub usd: f64,
    /// Whether the price table lists the model (else the cost is 0).
    pub priced: bool,
    /// The tier's monthly spend cap in US dollars.
    pub spend_cap_usd: u64,
    /// Whether the cost is over the cap.
    pub exceeds_cap: bool,
    /// What qualifies an organization for the tier.
    pub qualification: String,
    /// The least paid to qualify, in US dollars, when the catalog lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_usd: Option<u64>,
    /// The fewest days since the first payment, when the catalog lists them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_since_first_payment: Option<u32>,
}

/// The header of a cost table, the columns of [`MonthlyCost::columns`].
pub const COST_COLUMNS: [&str; 9] = [
    "growth",
    "tier",
    "requests",
    "input tokens",
    "cached",
    "output tokens",
    "cost",
    "spend cap",
    "qualifies with",
];

impl MonthlyCost {
    /// The row as people read it, in `COST_COLUMNS` order, for every renderer.
    pub fn columns(&self) -> [String; 9] {
        [
            self.growth.to_string(),
            format!(
                "{}{}",
                self.tier,
                if self.tier_meets {
                    ""
                } else {
                    " (does not meet)"
                }
            ),
            thousands(self.requests),
            thousands(self.input_tokens),
            thousands(self.cached_input_tokens),
            thousands(self.output_tokens),
            format!("${}", dollars(self.usd)),
            format!(
                "${}{}",
                thousands(self.spend_cap_usd),
                if self.exceeds_cap { " (exceeded)" } else { "" }
            ),
            self.qualification.clone(),
        ]
    }
}

impl Cell {
    /// The best strategy's mean success and p99 as people read them: (`99.9%`, `1.20s`).
    pub fn best_numbers(&self) -> (String, String) {
        let best = self
            .strategies
            .iter()
            .find(|strategy| strategy.strategy == self.best);
        let success = best.map_or("-".to_owned(), |best| {
            report::units::percent(best.success.mean)
        });
        let p99 = best
            .and_then(|best| best.p99_s)
            .map_or("n/a".to_owned(), |p99| {
                report::units::latency((p99.mean * 1e6).round() as u64)
            });
        (success, p99)
    }
}

/// A rejection rule as files write it.
pub fn rule_name(rule: quota::RejectedRequests) -> &'static str {
    match rule {
        quota::RejectedRequests::Free => "free",
        quota::RejectedRequests::CountPerMinute => "count-per-minute",
        quota::RejectedRequests::CountAllRequestLimits => "count-all-request-limits",
    }
}

/// ` (99.9% success, p99 1.20s)`.
pub(crate) fn numbers(cell: &StrategyCell) -> String {
    let p99 = cell.p99_s.map_or("n/a".to_owned(), |p99| {
        report::units::latency((p99.mean * 1e6).round() as u64)
    });
    format!(
        " ({} success, p99 {p99})",
        report::units::percent(cell.success.mean)
    )
}

/// `12,345`.
pub(crate) fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `1,234.56`.
pub(crate) fn dollars(value: f64) -> String {
    let cents = (value * 100.0).round() as u64;
    format!("{}.{:02}", thousands(cents / 100), cents % 100)
}
