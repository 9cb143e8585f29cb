//! The plan assembled from the planner's judged cells: each tier's breaking point and binding
//! limit, the cheapest tier per growth, the monthly cost at list prices, and the verdict.
//! What it assembles, `plan.json`'s document, is in `document.rs`.

use crate::bisect::BreakingPoint;
use crate::document::{
    Cell, CheapestTier, MonthlyCost, PLAN_FORMAT_VERSION, Plan, PlanScenario, PlanStrategy,
    PlanVerdict, RulePlan, TierLimits, TierPlan, dollars, numbers, rule_name, thousands,
};
use crate::growth::Growth;
use crate::judge::MIN_INTERVAL_SEEDS;
use crate::planner::Planner;
use crate::probe::{LIMIT_KINDS, round};

/// Seconds in the 30-day month costs are extended to.
const MONTH_SECONDS: f64 = 30.0 * 86_400.0;

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
