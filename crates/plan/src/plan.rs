//! The finished plan, what `plan.json` holds (docs/plan-json.md describes every field): the
//! judged cells, each tier's breaking point and binding limit, the verdict, the monthly cost.
//!
//! Every number is an integer, a growth factor in thousandths or a ratio rounded to six
//! decimals, and every list is in a fixed order, so the same inputs give the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bisect::BreakingPoint;
use crate::growth::{GroupScaling, Growth};
use crate::judge::{Criterion, MIN_INTERVAL_SEEDS, StrategyCell};
use crate::planner::Planner;
use crate::probe::{LIMIT_KINDS, Utilisation, round};

/// Version of the `plan.json` layout; bumped on incompatible changes.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Seconds in the 30-day month costs are extended to.
const MONTH_SECONDS: f64 = 30.0 * 86_400.0;

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

/// The plan under rule index `rule`.
pub(crate) fn rule_plan(planner: &Planner, rule: usize) -> RulePlan {
    let spec = planner.spec();
    let mut cells = Vec::new();
    let mut tiers = Vec::new();
    for tier in 0..spec.tiers.len() {
        let tier_cells: Vec<Cell> = planner
            .probed_growths(rule, tier)
            .into_iter()
            .filter_map(|growth| planner.cell(rule, tier, growth))
            .collect();
        let mut plan = tier_plan(
            planner.breaking_point(rule, tier),
            &tier_cells,
            &spec.tiers[tier],
        );
        let limits = planner.limits(rule, tier);
        plan.limits = TierLimits {
            rpm: limits.rpm,
            tpm: limits.tpm,
            rpd: limits.rpd,
            tpd: limits.tpd,
        };
        tiers.push(plan);
        cells.extend(tier_cells);
    }
    let cheapest = spec
        .growth
        .iter()
        .map(|&growth| CheapestTier {
            growth,
            tier: spec
                .tiers
                .iter()
                .find(|tier| {
                    cells
                        .iter()
                        .any(|cell| &cell.tier == *tier && cell.growth == growth && cell.meets)
                })
                .cloned(),
        })
        .collect();
    RulePlan {
        rule: rule_name(planner.rule(rule)),
        cells,
        tiers,
        cheapest,
    }
}

fn tier_plan(breaking_point: BreakingPoint, cells: &[Cell], tier: &str) -> TierPlan {
    let at = |growth: Option<Growth>| {
        growth.and_then(|growth| cells.iter().find(|cell| cell.growth == growth))
    };
    let sustained = at(breaking_point.sustains).or_else(|| cells.first());
    let failing = at(breaking_point.fails_at);
    let most_rejected = failing.and_then(|cell| {
        LIMIT_KINDS
            .iter()
            .filter_map(|kind| cell.rejections.get(*kind).map(|count| (*kind, *count)))
            .filter(|(_, count)| *count > 0.0)
            .fold(
                None,
                |best: Option<(&str, f64)>, (kind, count)| match best {
                    Some((_, best_count)) if best_count >= count => best,
                    _ => Some((kind, count)),
                },
            )
    });
    let binding_limit = most_rejected
        .map(|(kind, _)| kind)
        .or_else(|| {
            failing
                .or(sustained)
                .and_then(|cell| cell.utilisation.highest())
                .map(|(kind, _)| kind)
        })
        .map(str::to_owned);
    // The largest probe a class meets with every smaller probe met too.
    let sustains = |meets: fn(&Cell) -> bool| {
        let mut last = None;
        for cell in cells {
            if !meets(cell) {
                break;
            }
            last = Some(cell.growth);
        }
        last
    };
    TierPlan {
        tier: tier.to_owned(),
        limits: TierLimits::default(),
        breaking_point,
        binding_limit,
        utilisation: sustained.map(|cell| cell.utilisation).unwrap_or_default(),
        best_strategy: sustained.map(|cell| cell.best.clone()),
        paced_sustains: sustains(|cell| cell.paced_meets),
        retries_alone_sustain: sustains(|cell| cell.retries_alone_meet),
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

/// The whole plan from its rules' plans.
pub(crate) fn plan(planner: &Planner, rules: Vec<RulePlan>) -> Plan {
    let spec = planner.spec();
    let scenario = &spec.scenario;
    let millis =
        |duration: std::time::Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let cost = monthly_costs(planner, &rules[0]);
    let verdict = verdict(planner, &rules, &cost);
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        scenario: PlanScenario {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            model: scenario.server.model.clone(),
            seed: scenario.seed,
            duration_ms: millis(scenario.duration),
            drain_ms: millis(scenario.drain),
        },
        tiers: spec.tiers.clone(),
        growth: spec.growth.clone(),
        precision: spec.precision,
        seeds: planner.seeds().to_vec(),
        judged_by: if planner.seeds().len() >= MIN_INTERVAL_SEEDS {
            "interval"
        } else {
            "every-seed"
        },
        strategies: scenario
            .strategies
            .iter()
            .zip(planner.criteria())
            .map(|(strategy, criteria)| PlanStrategy {
                label: strategy.label.clone(),
                spec: strategy.spec.to_string(),
                paces: strategy.spec.paces_sends(),
                criteria: criteria.clone(),
            })
            .collect(),
        scaling: crate::growth::scaling_rules(scenario),
        rules,
        verdict,
        cost,
        simulations: planner.simulations(),
    }
}

fn monthly_costs(planner: &Planner, rule: &RulePlan) -> Vec<MonthlyCost> {
    let spec = planner.spec();
    let scenario = &spec.scenario;
    let prices = model::PriceTable::new(&scenario.server.config.prices);
    let price = prices.price(&scenario.server.model);
    let months = MONTH_SECONDS / scenario.duration.as_secs_f64().max(1.0);
    rule.cheapest
        .iter()
        .filter_map(|cheapest| {
            let tier = cheapest
                .tier
                .clone()
                .or_else(|| spec.tiers.last().cloned())?;
            let cell = rule
                .cells
                .iter()
                .find(|cell| cell.tier == tier && cell.growth == cheapest.growth)?;
            let month = |value: f64| (value * months).round() as u64;
            let input_tokens = month(cell.prompt_tokens);
            let cached_input_tokens = (input_tokens as f64 * spec.cached_share).round() as u64;
            let output_tokens = month(cell.completion_tokens);
            let usd =
                round(price.cost_with_cache_usd(input_tokens, cached_input_tokens, output_tokens));
            let info = spec.catalog.tiers.get(&tier);
            let spend_cap_usd = info.map_or(0, |info| info.monthly_spend_cap_usd);
            Some(MonthlyCost {
                growth: cheapest.growth,
                tier_meets: cheapest.tier.is_some(),
                requests: month(cell.requests),
                input_tokens,
                cached_input_tokens,
                output_tokens,
                usd,
                priced: prices.lists(&scenario.server.model),
                spend_cap_usd,
                exceeds_cap: info.is_some() && usd > spend_cap_usd as f64,
                qualification: info
                    .map(|info| info.qualification.clone())
                    .unwrap_or_default(),
                paid_usd: info.and_then(|info| info.paid_usd),
                days_since_first_payment: info.and_then(|info| info.days_since_first_payment),
                tier,
            })
        })
        .collect()
}

fn verdict(planner: &Planner, rules: &[RulePlan], cost: &[MonthlyCost]) -> PlanVerdict {
    let spec = planner.spec();
    let main = &rules[0];
    let first = main.cheapest.first();
    let tier_now = first.and_then(|cheapest| cheapest.tier.clone());
    let tier_index = |name: &str| spec.tiers.iter().position(|tier| tier == name);
    let mut lines = Vec::new();
    let criterion = criterion_words(planner);
    let now_growth = first.map_or(Growth::ONE, |cheapest| cheapest.growth);
    match &tier_now {
        Some(tier) => {
            let cell = main
                .cells
                .iter()
                .find(|cell| &cell.tier == tier && cell.growth == now_growth);
            let numbers = cell
                .and_then(|cell| {
                    cell.strategies
                        .iter()
                        .find(|strategy| strategy.strategy == cell.best)
                })
                .map(numbers)
                .unwrap_or_default();
            lines.push(format!(
                "At {now_growth}: {tier} is the cheapest tier that meets {criterion}, with {}{numbers}.",
                cell.map_or("-", |cell| cell.best.as_str())
            ));
        }
        None => {
            let last = spec.tiers.last().map_or("", String::as_str);
            lines.push(format!(
                "At {now_growth}: no tier from {} to {last} meets {criterion}; send less, spread the load, or ask OpenAI for custom limits.",
                spec.tiers.first().map_or("", String::as_str)
            ));
        }
    }
    let mut upgrade_at = None;
    let mut next_tier = None;
    if let Some(tier) = &tier_now
        && let Some(index) = tier_index(tier)
    {
        let plan = &main.tiers[index];
        let point = plan.breaking_point;
        let binding = plan
            .binding_limit
            .as_deref()
            .map(|kind| format!(", {} binds first", kind.to_uppercase()))
            .unwrap_or_default();
        match point.fails_at {
            Some(fails) => {
                upgrade_at = Some(fails);
                // The cheapest tier that holds past the point where this one failed.
                let next = main.tiers.iter().skip(index + 1).find(|other| {
                    other
                        .breaking_point
                        .sustains
                        .is_some_and(|sustains| sustains >= fails)
                });
                next_tier = next.map(|other| other.tier.clone());
                let then = match next {
                    Some(other) => format!(
                        "move to {}, which holds to {}",
                        other.tier,
                        other.breaking_point.describe()
                    ),
                    None => "no tier swept holds past it".to_owned(),
                };
                lines.push(format!(
                    "Upgrade before {fails}: {tier} holds to {} (bisected to {}{binding}); then {then}.",
                    point.describe(),
                    spec.precision
                ));
            }
            None => lines.push(format!(
                "No upgrade needed on the grid: {tier} holds at every factor up to {}{binding}.",
                spec.growth.last().copied().unwrap_or(Growth::ONE)
            )),
        }
    } else {
        lines.push(
            "Upgrade: none of the tiers swept holds at the grid's smallest factor.".to_owned(),
        );
    }
    if let Some(row) = cost.first() {
        let cap = if row.exceeds_cap {
            // A month of this traffic would stop at the cap: say which tier's cap covers it.
            let covering = spec
                .tiers
                .iter()
                .skip_while(|tier| **tier != row.tier)
                .find_map(|tier| {
                    let cap = spec.catalog.tiers.get(tier)?.monthly_spend_cap_usd;
                    (cap as f64 >= row.usd).then(|| format!("{tier}'s cap (${})", thousands(cap)))
                });
            format!(
                "over {}'s ${} monthly spend cap, so a month of it stops at the cap: {}",
                row.tier,
                thousands(row.spend_cap_usd),
                covering.map_or_else(
                    || "no tier swept has a cap that covers it; ask OpenAI for a higher limit"
                        .to_owned(),
                    |covering| format!("{covering} is the first that covers it")
                )
            )
        } else {
            format!(
                "within {}'s ${} monthly spend cap",
                row.tier,
                thousands(row.spend_cap_usd)
            )
        };
        let priced = if row.priced {
            String::new()
        } else {
            format!(
                " (no list price for {}: priced at $0)",
                spec.scenario.server.model
            )
        };
        lines.push(format!(
            "Cost at {}: ${}/month at list prices{priced} ({}% cached input), {cap}; {} needs {}.",
            row.growth,
            dollars(row.usd),
            (spec.cached_share * 100.0).round(),
            row.tier,
            row.qualification
        ));
    }
    let mut differs_under = Vec::new();
    for other in &rules[1..] {
        if other.cheapest != main.cheapest {
            let answers: Vec<String> = other
                .cheapest
                .iter()
                .map(|cheapest| {
                    format!(
                        "{} at {}",
                        cheapest.tier.as_deref().unwrap_or("no tier"),
                        cheapest.growth
                    )
                })
                .collect();
            differs_under.push(format!(
                "If rejected requests count ({}): {}.",
                other.rule,
                answers.join(", ")
            ));
        }
    }
    lines.extend(differs_under.iter().cloned());
    PlanVerdict {
        lines,
        tier_now,
        upgrade_at,
        next_tier,
        differs_under,
    }
}

/// `the criterion (99.0% success)`, or `[expect]` when the scenario sets thresholds.
fn criterion_words(planner: &Planner) -> String {
    let expect = &planner.spec().scenario.expect;
    let judged = if planner.seeds().len() >= MIN_INTERVAL_SEEDS {
        "on the 95% interval's worse end"
    } else if planner.seeds().len() > 1 {
        "on every seed"
    } else {
        "on one seed"
    };
    if expect.thresholds.is_empty() {
        format!("99% success ({judged})")
    } else {
        format!("[expect] ({judged})")
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
