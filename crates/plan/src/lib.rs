//! ratelab's capacity planner: which tier a scenario's traffic needs, at what growth, at what
//! cost.
//!
//! A plan sweeps tiers x growth factors x strategies x seeds, each an independent simulation
//! of the scenario grown by the factor ([`scale`]); judges every (tier, growth) cell against
//! the scenario's `[expect]` (or 99% success) over the seeds ([`judge`]); bisects each tier's
//! breaking point between the grid's points ([`Bisection`]); and answers with the cheapest
//! tier per growth, when to upgrade, and what a month of the traffic costs ([`Plan`]).
//!
//! A plan of one tier at one factor is a CI gate: `[expect.plan]` in a scenario, read by
//! `ratelab check` through [`gate_spec`] and [`gate_check`].
//!
//! The crate is pure: [`Planner`] says which probes to run, round by round, and reads their
//! summaries back in probe order; the command line runs the probes on its threads. No clock,
//! no threads, no I/O here, so the plan is the same whatever the thread count.
//!
//! ```
//! let text = r#"
//! name = "doc"
//! duration = "2m"
//! drain = "1m"
//! [server]
//! model = "gpt-4o-mini"
//! tier = "tier-1"
//! [[clients]]
//! name = "app"
//! arrival = { kind = "constant", rpm = 300 }
//! prompt_tokens = { kind = "fixed", value = 100 }
//! completion_tokens = { kind = "fixed", value = 20 }
//! max_tokens = 20
//! [[strategies]]
//! kind = "openai-python@2.52"
//! "#;
//! let scenario = scenario::parse_scenario(text, "doc.toml", &mut |p| std::fs::read_to_string(p)).unwrap();
//! let catalog = quota::Catalog::builtin();
//! let spec = plan::PlanSpec {
//!     tiers: plan::parse_tiers("tier-1..tier-2", &catalog, "gpt-4o-mini").unwrap(),
//!     growth: plan::parse_growth_list("1,3").unwrap(),
//!     rules: vec![quota::RejectedRequests::Free],
//!     seeds: 1,
//!     precision: plan::Growth::from_thousandths(250),
//!     cached_share: 0.0,
//!     catalog,
//!     scenario,
//! };
//! let mut planner = plan::Planner::new(spec).unwrap();
//! loop {
//!     let probes = planner.next_round();
//!     if probes.is_empty() {
//!         break;
//!     }
//!     let summaries = probes.iter().map(|probe| planner.run_probe(probe).unwrap()).collect();
//!     planner.record(&probes, summaries);
//! }
//! let plan = planner.finish();
//! // 300 RPM fits Tier 1's 500 RPM; 900 RPM (3x) needs Tier 2's 5,000.
//! assert_eq!(plan.rules[0].cheapest[0].tier.as_deref(), Some("tier-1"));
//! assert_eq!(plan.rules[0].cheapest[1].tier.as_deref(), Some("tier-2"));
//! assert_eq!(plan.verdict.next_tier.as_deref(), Some("tier-2"));
//! // Tier 1 breaks near 2.5x, not 500 / 300 = 1.67x: its bucket starts full, and over two
//! // minutes those 500 requests count. Plan on scenarios long enough for the refill to rule.
//! let breaks = plan.rules[0].tiers[0].breaking_point;
//! assert_eq!(breaks.sustains, Some(plan::parse_growth("2.5").unwrap()));
//! ```

mod bisect;
mod document;
mod gate;
mod growth;
mod html;
pub mod judge;
mod plan;
mod planner;
mod probe;
mod render;
mod spec;

pub use bisect::{Bisection, BreakingPoint, grid_bisection};
pub use document::{
    COST_COLUMNS, Cell, CheapestTier, MonthlyCost, PLAN_FORMAT_VERSION, Plan, PlanScenario,
    PlanStrategy, PlanVerdict, RulePlan, TierLimits, TierPlan, rule_name,
};
pub use gate::{gate_check, gate_spec};
pub use growth::{
    GroupScaling, Growth, GrowthError, MAX_GROWTH, check_growable, parse_growth, parse_growth_list,
    scale, scaling_rules,
};
pub use html::html;
pub use planner::{PlanError, Planner};
pub use probe::{LIMIT_KINDS, Probe, RunSummary, Utilisation};
pub use render::{markdown, plan_json, terminal};
pub use spec::{
    DEFAULT_GROWTH, DEFAULT_PRECISION, PlanSpec, parse_share, parse_tiers, scenario_rules,
    tiers_offering,
};
