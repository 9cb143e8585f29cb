//! The planner: which probes to run, round by round (the grid, then one bisection step per
//! tier), and what their summaries say once every round is in.
//!
//! It never runs anything itself in parallel: the command line asks for a round, runs its
//! probes on as many threads as it likes through [`Planner::run_probe`], and hands the
//! summaries back in probe order. Rounds depend only on earlier rounds' verdicts, so the plan
//! is the same whatever the thread count.

use std::collections::BTreeMap;

use quota::RejectedRequests;
use scenario::ServerVariant;

use crate::bisect::{Bisection, BreakingPoint, grid_bisection};
use crate::document::{Cell, Plan, RulePlan};
use crate::growth::{Growth, GrowthError, check_growable};
use crate::judge::{
    Criterion, StrategyCell, best_strategy, criteria, judge_strategy, peak_utilisation,
};
use crate::probe::{Probe, RunSummary, probe_scenario};
use crate::spec::PlanSpec;

/// Why a plan cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The scenario cannot grow.
    #[error(transparent)]
    Growth(#[from] GrowthError),
    /// The scenario or the flags do not make a plan; the message names the place and the fix.
    #[error("{0}")]
    Invalid(String),
    /// A simulation could not start.
    #[error(transparent)]
    Sim(#[from] sim::SimError),
}

/// Where the planner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Probing the grid's factor of this index, for every (rule, tier) that has not failed yet.
    Grid(usize),
    Bisecting,
    Done,
}

/// The planner of one [`PlanSpec`].
#[derive(Debug)]
pub struct Planner {
    spec: PlanSpec,
    /// Server variants by rule, then tier.
    variants: Vec<Vec<ServerVariant>>,
    seeds: Vec<u64>,
    criteria: Vec<Vec<Criterion>>,
    runs: BTreeMap<Probe, RunSummary>,
    /// One bisection per tier of the plan's rule, while it runs.
    bisections: Vec<Option<Bisection>>,
    /// Breaking points of the plan's rule, once known.
    breaking: Vec<Option<BreakingPoint>>,
    /// By rule, then tier: whether a grid factor has failed. Larger factors are not probed: a
    /// tier that fails at a factor is taken to fail at every larger one (the bisection's own
    /// assumption), and overloaded runs are the most expensive of a plan.
    failed: Vec<Vec<bool>>,
    stage: Stage,
}

impl Planner {
    /// Checks `spec` and builds every server variant it sweeps.
    pub fn new(spec: PlanSpec) -> Result<Planner, PlanError> {
        let scenario = &spec.scenario;
        check_growable(scenario)?;
        if spec.tiers.is_empty() || spec.growth.is_empty() || spec.rules.is_empty() {
            return Err(PlanError::Invalid(
                "a plan needs at least one tier, one growth factor and one rejection rule"
                    .to_owned(),
            ));
        }
        if scenario.strategies.is_empty() {
            return Err(PlanError::Invalid(
                "the scenario has no strategy to plan with (add [[strategies]] or pass --strategy)"
                    .to_owned(),
            ));
        }
        let config = &scenario.server.config;
        if let Some(entry) = config.timeline.iter().find(|entry| entry.changes_limits()) {
            return Err(PlanError::Invalid(format!(
                "server.timeline: the entry \"{}\" changes the limits during the run, and a plan sweeps the tier itself; remove the entry to plan (or compare the change with ratelab run)",
                entry.describe()
            )));
        }
        if let Some(organization) = config.organizations.iter().find(|org| org.tier.is_some()) {
            return Err(PlanError::Invalid(format!(
                "server.organizations: organization \"{}\" sets its own tier, and a plan sweeps the server's tier; remove its tier to plan",
                organization.id
            )));
        }
        let variants = spec
            .rules
            .iter()
            .map(|rule| {
                spec.tiers
                    .iter()
                    .map(|tier| {
                        scenario::server_variant(
                            config,
                            &scenario.server.model,
                            Some(tier),
                            Some(*rule),
                        )
                        .map_err(|message| PlanError::Invalid(format!("server.{message}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let seeds = scenario::derive_seeds(scenario.seed, spec.seeds.max(1));
        let criteria = scenario
            .strategies
            .iter()
            .map(|strategy| criteria(&scenario.expect, &strategy.label))
            .collect();
        let tier_count = spec.tiers.len();
        let rule_count = spec.rules.len();
        Ok(Planner {
            spec,
            variants,
            seeds,
            criteria,
            runs: BTreeMap::new(),
            bisections: vec![None; tier_count],
            breaking: vec![None; tier_count],
            failed: vec![vec![false; tier_count]; rule_count],
            stage: Stage::Grid(0),
        })
    }

    /// What the plan sweeps.
    pub fn spec(&self) -> &PlanSpec {
        &self.spec
    }

    /// The probes of the next round, in the order their summaries are to be recorded; empty
    /// when the plan is complete.
    pub fn next_round(&mut self) -> Vec<Probe> {
        loop {
            match self.stage {
                Stage::Grid(index) => {
                    let Some(&growth) = self.spec.growth.get(index) else {
                        self.start_bisections();
                        continue;
                    };
                    let mut probes = Vec::new();
                    for rule in 0..self.spec.rules.len() {
                        for tier in 0..self.spec.tiers.len() {
                            if !self.failed[rule][tier] {
                                probes.extend(self.cell_probes(rule, tier, growth));
                            }
                        }
                    }
                    if probes.is_empty() {
                        self.stage = Stage::Grid(index + 1);
                        continue;
                    }
                    return probes;
                }
                Stage::Bisecting => {
                    let mut probes = Vec::new();
                    for tier in 0..self.spec.tiers.len() {
                        if let Some(growth) = self.bisections[tier].and_then(|b| b.next_probe()) {
                            probes.extend(self.cell_probes(0, tier, growth));
                        }
                    }
                    if probes.is_empty() {
                        self.stage = Stage::Done;
                        for tier in 0..self.spec.tiers.len() {
                            if let Some(bisection) = self.bisections[tier].take() {
                                self.breaking[tier] = Some(bisection.result());
                            }
                        }
                    }
                    return probes;
                }
                Stage::Done => return Vec::new(),
            }
        }
    }

    /// After the grid: a bisection for every tier of the plan's rule that failed on it.
    fn start_bisections(&mut self) {
        for tier in 0..self.spec.tiers.len() {
            let grid: Vec<(Growth, bool)> = self
                .probed_growths(0, tier)
                .into_iter()
                .filter(|growth| self.spec.growth.contains(growth))
                .map(|growth| (growth, self.meets(0, tier, growth)))
                .collect();
            match grid_bisection(&grid, self.spec.precision) {
                Ok(point) => self.breaking[tier] = Some(point),
                Err(bisection) => self.bisections[tier] = Some(bisection),
            }
        }
        self.stage = Stage::Bisecting;
    }

    /// An upper bound of the probes still to run after the current round, for a progress bar.
    pub fn probes_left_estimate(&self) -> u64 {
        let per_cell = (self.spec.scenario.strategies.len() * self.seeds.len()) as u64;
        match self.stage {
            Stage::Grid(index) => {
                let largest = self
                    .spec
                    .growth
                    .last()
                    .map_or(0, |growth| growth.thousandths());
                let steps = bisection_steps(largest, self.spec.precision.thousandths());
                let open: u64 = self
                    .failed
                    .iter()
                    .flatten()
                    .filter(|failed| !**failed)
                    .count() as u64;
                let growths_left = self.spec.growth.len().saturating_sub(index) as u64;
                open * growths_left * per_cell + self.spec.tiers.len() as u64 * steps * per_cell
            }
            Stage::Bisecting => self
                .bisections
                .iter()
                .flatten()
                .map(|bisection| {
                    let (low, high) = bisection.bounds();
                    bisection_steps(high - low, self.spec.precision.thousandths()) * per_cell
                })
                .sum(),
            Stage::Done => 0,
        }
    }

    fn cell_probes(&self, rule: usize, tier: usize, growth: Growth) -> impl Iterator<Item = Probe> {
        let seeds = self.seeds.len();
        (0..self.spec.scenario.strategies.len()).flat_map(move |strategy| {
            (0..seeds).map(move |seed| Probe {
                rule,
                tier,
                growth,
                strategy,
                seed,
            })
        })
    }

    /// Simulates one probe. Pure and independent of every other probe: call it from any
    /// thread.
    pub fn run_probe(&self, probe: &Probe) -> Result<RunSummary, PlanError> {
        let variant = &self.variants[probe.rule][probe.tier];
        let scenario = probe_scenario(
            &self.spec.scenario,
            variant,
            probe.growth,
            probe.strategy,
            self.seeds[probe.seed],
        )?;
        let run = sim::simulate_run_untraced(&scenario, 0)?;
        Ok(RunSummary::of(&run, &scenario, variant))
    }

    /// Records a round's summaries, in the order of its probes.
    pub fn record(&mut self, probes: &[Probe], summaries: Vec<RunSummary>) {
        for (probe, summary) in probes.iter().zip(summaries) {
            self.runs.insert(*probe, summary);
        }
        match self.stage {
            Stage::Grid(index) => {
                let growth = self.spec.growth[index];
                for rule in 0..self.spec.rules.len() {
                    for tier in 0..self.spec.tiers.len() {
                        if !self.failed[rule][tier] && !self.meets(rule, tier, growth) {
                            self.failed[rule][tier] = true;
                        }
                    }
                }
                self.stage = Stage::Grid(index + 1);
            }
            Stage::Bisecting => {
                let probed: Vec<(usize, Growth)> = probes
                    .iter()
                    .map(|probe| (probe.tier, probe.growth))
                    .collect();
                for (tier, growth) in dedup(probed) {
                    let meets = self.meets(0, tier, growth);
                    if let Some(bisection) = &mut self.bisections[tier] {
                        bisection.record(growth, meets);
                    }
                }
            }
            Stage::Done => {}
        }
    }

    fn meets(&self, rule: usize, tier: usize, growth: Growth) -> bool {
        self.cell(rule, tier, growth).is_some_and(|cell| cell.meets)
    }

    /// The judged cell at (rule, tier, growth), when its probes ran.
    pub(crate) fn cell(&self, rule: usize, tier: usize, growth: Growth) -> Option<Cell> {
        let mut strategies: Vec<StrategyCell> = Vec::new();
        let mut summaries: Vec<Vec<&RunSummary>> = Vec::new();
        for (index, named) in self.spec.scenario.strategies.iter().enumerate() {
            let runs: Vec<&RunSummary> = (0..self.seeds.len())
                .map(|seed| {
                    self.runs.get(&Probe {
                        rule,
                        tier,
                        growth,
                        strategy: index,
                        seed,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            strategies.push(judge_strategy(&named.label, &self.criteria[index], &runs));
            summaries.push(runs);
        }
        let best = best_strategy(&strategies);
        let best_runs = &summaries[best];
        let count = best_runs.len().max(1) as f64;
        let mean = |value: &dyn Fn(&RunSummary) -> u64| {
            best_runs.iter().map(|run| value(run) as f64).sum::<f64>() / count
        };
        let mut rejections: BTreeMap<String, f64> = BTreeMap::new();
        for run in best_runs {
            for (kind, rejected) in &run.rejections {
                *rejections.entry(kind.clone()).or_default() += *rejected as f64 / count;
            }
        }
        let paced = |index: usize| self.spec.scenario.strategies[index].spec.paces_sends();
        let meets_with = |want_paced: bool| {
            strategies
                .iter()
                .enumerate()
                .any(|(index, cell)| cell.meets && paced(index) == want_paced)
        };
        Some(Cell {
            tier: self.spec.tiers[tier].clone(),
            growth,
            on_grid: self.spec.growth.contains(&growth),
            meets: strategies[best].meets,
            best: strategies[best].strategy.clone(),
            paced_meets: meets_with(true),
            retries_alone_meet: meets_with(false),
            requests: mean(&|run| run.requests),
            prompt_tokens: mean(&|run| run.prompt_tokens),
            completion_tokens: mean(&|run| run.completion_tokens),
            rejections: rejections
                .into_iter()
                .map(|(kind, count)| (kind, crate::probe::round(count)))
                .collect(),
            utilisation: peak_utilisation(best_runs),
            per_minute: best_runs
                .first()
                .map(|run| run.per_minute.clone())
                .unwrap_or_default(),
            strategies,
        })
    }

    /// Every probed growth factor of (rule, tier), ascending.
    pub(crate) fn probed_growths(&self, rule: usize, tier: usize) -> Vec<Growth> {
        let mut growths: Vec<Growth> = self
            .runs
            .keys()
            .filter(|probe| probe.rule == rule && probe.tier == tier)
            .map(|probe| probe.growth)
            .collect();
        growths.dedup();
        growths.sort();
        growths.dedup();
        growths
    }

    /// The breaking point of a tier: bisected under the plan's rule, from the grid alone under
    /// the others.
    pub(crate) fn breaking_point(&self, rule: usize, tier: usize) -> BreakingPoint {
        if rule == 0
            && let Some(point) = self.breaking[tier]
        {
            return point;
        }
        let grid: Vec<(Growth, bool)> = self
            .probed_growths(rule, tier)
            .into_iter()
            .filter(|growth| self.spec.growth.contains(growth))
            .map(|growth| (growth, self.meets(rule, tier, growth)))
            .collect();
        grid_bisection(&grid, self.spec.precision).unwrap_or_else(|bisection| bisection.result())
    }

    /// The limits of `tier` under `rule` at the start of a run.
    pub(crate) fn limits(&self, rule: usize, tier: usize) -> &quota::LimitSet {
        &self.variants[rule][tier].limits
    }

    /// The seeds the plan ran.
    pub fn seeds(&self) -> &[u64] {
        &self.seeds
    }

    /// How many simulations ran.
    pub fn simulations(&self) -> usize {
        self.runs.len()
    }

    /// The criteria of each strategy.
    pub(crate) fn criteria(&self) -> &[Vec<Criterion>] {
        &self.criteria
    }

    /// The plan's rule and the others, as the report names them.
    pub(crate) fn rule(&self, rule: usize) -> RejectedRequests {
        self.spec.rules[rule]
    }

    /// The finished plan. Call it once [`Planner::next_round`] has returned no probe.
    pub fn finish(&self) -> Plan {
        let rules: Vec<RulePlan> = (0..self.spec.rules.len())
            .map(|rule| crate::plan::rule_plan(self, rule))
            .collect();
        crate::plan::plan(self, rules)
    }
}

/// Bisection steps to narrow a gap of `gap` thousandths to `precision`.
fn bisection_steps(gap: u32, precision: u32) -> u64 {
    let mut gap = gap;
    let mut steps = 0;
    while gap > precision.max(1) {
        gap /= 2;
        steps += 1;
    }
    steps
}

fn dedup(mut pairs: Vec<(usize, Growth)>) -> Vec<(usize, Growth)> {
    pairs.dedup();
    pairs
}
