//! A plan as a CI gate: `[expect.plan]` (`tier = "tier-2"`, `holds_at = 1.5`) asks whether one
//! tier still meets the scenario's criterion with its traffic grown by one factor. It is a plan
//! of one tier on a grid of one factor, so the planner probes that one cell, and bisects the
//! tier's breaking point below it only when it fails, to say how far growth has outrun it.

use quota::Catalog;
use scenario::{PlanGate, Scenario};

use crate::document::{Plan, numbers};
use crate::growth::Growth;
use crate::spec::{DEFAULT_PRECISION, PlanSpec, scenario_rules};

/// The plan that judges `gate` on `scenario`: its tier, its factor, the scenario's own
/// rejection rule and seeds, the default precision. Run it as any plan
/// ([`crate::Planner`]), then read it with [`gate_check`].
pub fn gate_spec(scenario: &Scenario, gate: &PlanGate, catalog: Catalog) -> PlanSpec {
    PlanSpec {
        tiers: vec![gate.tier.clone()],
        growth: vec![Growth::from_thousandths(gate.holds_at_thousandths)],
        rules: scenario_rules(scenario).into_iter().take(1).collect(),
        seeds: scenario.seeds,
        precision: DEFAULT_PRECISION,
        cached_share: 0.0,
        catalog,
        scenario: scenario.clone(),
    }
}

/// The gate's verdict from the finished plan of [`gate_spec`].
///
/// ```
/// let text = r#"
/// name = "gate"
/// duration = "2m"
/// drain = "30s"
/// [server]
/// model = "gpt-4o-mini"
/// tier = "tier-1"
/// [[clients]]
/// name = "app"
/// arrival = { kind = "constant", rpm = 300 }
/// prompt_tokens = { kind = "fixed", value = 100 }
/// completion_tokens = { kind = "fixed", value = 20 }
/// max_tokens = 20
/// [[strategies]]
/// kind = "none"
/// [expect.plan]
/// tier = "tier-1"
/// holds_at = 3
/// "#;
/// let scenario = scenario::parse_scenario(text, "gate.toml", &mut |p| std::fs::read_to_string(p)).unwrap();
/// let gate = scenario.plan_gate.clone().unwrap();
/// let spec = plan::gate_spec(&scenario, &gate, quota::Catalog::builtin());
/// let mut planner = plan::Planner::new(spec).unwrap();
/// loop {
///     let probes = planner.next_round();
///     if probes.is_empty() {
///         break;
///     }
///     let summaries = probes.iter().map(|probe| planner.run_probe(probe).unwrap()).collect();
///     planner.record(&probes, summaries);
/// }
/// let check = plan::gate_check(&planner.finish(), &gate);
/// // 900 RPM is over Tier 1's 500: it holds to about 2.5x over two minutes (its bucket
/// // starts full), found by bisection below 3x.
/// assert!(!check.holds);
/// assert_eq!(check.binding_limit.as_deref(), Some("RPM"));
/// assert!(check.describe().starts_with("tier-1 does not hold at 3x: none (8"), "{}", check.describe());
/// assert!(check.describe().ends_with("(bisected to 0.05x), RPM binds first"));
/// ```
pub fn gate_check(plan: &Plan, gate: &PlanGate) -> report::PlanCheck {
    let growth = Growth::from_thousandths(gate.holds_at_thousandths);
    let rule = plan.rules.first();
    let tier = rule.and_then(|rule| rule.tiers.iter().find(|tier| tier.tier == gate.tier));
    let cell = rule.and_then(|rule| {
        rule.cells
            .iter()
            .find(|cell| cell.tier == gate.tier && cell.growth == growth)
    });
    let best = cell
        .and_then(|cell| {
            cell.strategies
                .iter()
                .find(|strategy| strategy.strategy == cell.best)
                .map(|strategy| format!("{}{}", cell.best, numbers(strategy)))
        })
        .unwrap_or_else(|| "not probed".to_owned());
    report::PlanCheck {
        tier: gate.tier.clone(),
        holds_at: growth.to_string(),
        holds: cell.is_some_and(|cell| cell.meets),
        best,
        breaking_point: tier.map_or("not probed".to_owned(), |tier| {
            tier.breaking_point.describe()
        }),
        binding_limit: tier
            .and_then(|tier| tier.binding_limit.as_deref())
            .map(str::to_uppercase),
        precision: plan.precision.to_string(),
        location: gate.location.clone(),
    }
}
