//! SLO verdicts: a scenario's `[expect]` thresholds evaluated against its runs, one verdict per
//! run and metric, with renderers for the terminal and for Markdown. Runs of strategies outside
//! `[expect]` `gate` are baselines: judged the same way, reported as such, never failing.

use std::fmt::Write;

use results::{RunReport, RunResult};
use scenario::{Expectations, Location, SloMetric};

use crate::markdown::escape;
use crate::units;

/// One threshold applied to one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Server variant label of the run.
    pub server: String,
    /// Strategy label of the run.
    pub strategy: String,
    /// What was bounded.
    pub metric: SloMetric,
    /// The bound, in the metric's unit (see [`scenario::Threshold::limit`]).
    pub limit: f64,
    /// The run's value in the same unit; `None` when it has none (p99 without a success).
    pub actual: Option<f64>,
    /// Whether the run met the bound (a missing value fails).
    pub passed: bool,
    /// Whether the run's strategy is gated (`[expect]` `gate`, every strategy without one);
    /// a verdict that is not is a baseline's and never fails the gate.
    pub gated: bool,
    /// Where the threshold is written.
    pub location: Location,
}

impl Verdict {
    /// The threshold alone: `p99 latency <= 30.0s`.
    pub fn threshold(&self) -> String {
        let comparison = if self.metric.is_minimum() { ">=" } else { "<=" };
        format!(
            "{} {comparison} {}",
            self.metric,
            format_value(self.metric, self.limit)
        )
    }

    /// Whether the verdict fails the gate: a gated run that missed its bound.
    pub fn failed(&self) -> bool {
        self.gated && !self.passed
    }

    /// `p99 latency 12.3s <= 30s`, or with `>` when it failed.
    pub fn describe(&self) -> String {
        let actual = self.actual.map_or_else(
            || missing_value(self.metric).to_owned(),
            |value| format_value(self.metric, value),
        );
        let comparison = match (self.metric.is_minimum(), self.passed) {
            (true, true) => ">=",
            (true, false) => "<",
            (false, true) => "<=",
            (false, false) => ">",
        };
        format!(
            "{} {actual} {comparison} {}",
            self.metric,
            format_value(self.metric, self.limit)
        )
    }
}

/// The verdict of a capacity gate (`[expect.plan]`): whether a tier still meets the scenario's
/// criterion with its traffic grown by a factor, as `ratelab plan` judges a cell. The planner
/// fills it in (`plan::gate_check`); this crate only reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCheck {
    /// The tier gated.
    pub tier: String,
    /// The growth factor it must hold at, as plans write it (`1.5x`).
    pub holds_at: String,
    /// Whether the tier meets the criterion there.
    pub holds: bool,
    /// The best strategy there and its numbers: `none (99.9% success, p99 462ms)`.
    pub best: String,
    /// Where the tier breaks, as far as probed: `above 1.5x` when it holds; when it does not,
    /// the largest factor found to hold, bisected (`1.984x`), or `below 0.05x`.
    pub breaking_point: String,
    /// The limit that binds first (`RPM`, `TPM`, `RPD`, `TPD`), when known.
    pub binding_limit: Option<String>,
    /// The bisection's precision, as plans write it (`0.05x`).
    pub precision: String,
    /// Where the gate is written.
    pub location: Location,
}

impl PlanCheck {
    /// The gate alone: `tier-2 holds at 1.5x`.
    pub fn gate(&self) -> String {
        format!("{} holds at {}", self.tier, self.holds_at)
    }

    /// `tier-2 holds at 1.5x: none (100.0% success, p99 462ms); RPM binds first`, or when it
    /// fails, `tier-2 does not hold at 2.5x: none (80.0% success, p99 465ms); it holds to
    /// 1.984x (bisected to 0.05x), RPM binds first`.
    pub fn describe(&self) -> String {
        let binding = self
            .binding_limit
            .as_deref()
            .map(|limit| format!("{limit} binds first"));
        if self.holds {
            let binding = binding
                .map(|words| format!("; {words}"))
                .unwrap_or_default();
            format!("{}: {}{binding}", self.gate(), self.best)
        } else {
            let binding = binding
                .map(|words| format!(", {words}"))
                .unwrap_or_default();
            format!(
                "{} does not hold at {}: {}; it holds to {} (bisected to {}){binding}",
                self.tier, self.holds_at, self.best, self.breaking_point, self.precision
            )
        }
    }
}

/// The verdicts of one scenario, for reports over several.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedScenario {
    /// Scenario name.
    pub name: String,
    /// Whether the report compares several server variants (names then include the server).
    pub several_servers: bool,
    /// One verdict per run and threshold, runs in report order.
    pub verdicts: Vec<Verdict>,
    /// The capacity gate's verdict, when the scenario has one (`[expect.plan]`).
    pub plan: Option<PlanCheck>,
}

impl CheckedScenario {
    /// Evaluates `expectations` on `report`.
    pub fn new(expectations: &Expectations, report: &RunReport) -> CheckedScenario {
        CheckedScenario {
            name: report.scenario.name.clone(),
            several_servers: report
                .runs
                .iter()
                .any(|run| run.server != report.runs[0].server),
            verdicts: evaluate(expectations, report),
            plan: None,
        }
    }

    /// The same verdicts with the capacity gate's.
    pub fn with_plan(self, plan: PlanCheck) -> CheckedScenario {
        CheckedScenario {
            plan: Some(plan),
            ..self
        }
    }

    /// Whether every gated verdict passed (baselines never fail the gate) and the capacity gate
    /// holds.
    pub fn passed(&self) -> bool {
        !self.verdicts.iter().any(Verdict::failed)
            && self.plan.as_ref().is_none_or(|plan| plan.holds)
    }

    /// How many test cases the scenario makes: its verdicts and its capacity gate.
    pub fn cases(&self) -> usize {
        self.verdicts.len() + usize::from(self.plan.is_some())
    }

    /// How many of them fail the gate.
    pub fn failures(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|verdict| verdict.failed())
            .count()
            + usize::from(self.plan.as_ref().is_some_and(|plan| !plan.holds))
    }

    /// The run a verdict is about: the strategy, prefixed by the server when there are several.
    pub fn run_name(&self, verdict: &Verdict) -> String {
        if self.several_servers {
            format!("{} / {}", verdict.server, verdict.strategy)
        } else {
            verdict.strategy.clone()
        }
    }
}

/// Applies each threshold to each run it concerns: per run and metric, the threshold written
/// for the run's strategy wins over the one for every strategy. Runs of strategies outside
/// `[expect]` `gate` get verdicts too, marked not [`Verdict::gated`].
///
/// ```
/// use scenario::{Expectations, Location, SloMetric, Threshold};
///
/// let report = report::example_report();
/// let at = Location { file: "example.toml".into(), line: 20, column: 20 };
/// let expectations = Expectations {
///     thresholds: vec![Threshold {
///         metric: SloMetric::SuccessRate,
///         limit: 0.8,
///         strategy: None,
///         location: at,
///     }],
///     gate: None,
/// };
/// let verdicts = report::evaluate(&expectations, &report);
/// assert_eq!(verdicts.len(), 2);
/// assert!(!verdicts[0].passed, "`none` succeeds for 41.7% only");
/// assert!(verdicts[1].passed);
/// assert_eq!(verdicts[1].describe(), "success rate 80.8% >= 80.0%");
/// ```
pub fn evaluate(expectations: &Expectations, report: &RunReport) -> Vec<Verdict> {
    report
        .runs
        .iter()
        .flat_map(|run| run_verdicts(expectations, run))
        .collect()
}

/// The verdicts of one run, in [`SloMetric::ALL`] order: what [`evaluate`] gives for it, so the
/// answers of `ratelab run` judge a run exactly as `ratelab check` does. A baseline's verdicts
/// say whether it met each bound, as a gated run's do; only [`Verdict::gated`] differs, so the
/// answers judge baselines and gated strategies alike.
pub(crate) fn run_verdicts(expectations: &Expectations, run: &RunResult) -> Vec<Verdict> {
    let gated = expectations.gates(&run.strategy);
    SloMetric::ALL
        .into_iter()
        .filter_map(|metric| {
            let threshold = expectations.applying_to(metric, &run.strategy)?;
            let actual = metric_value(run, metric);
            Some(Verdict {
                server: run.server.clone(),
                strategy: run.strategy.clone(),
                metric,
                limit: threshold.limit,
                actual,
                passed: actual.is_some_and(|actual| metric.passes(actual, threshold.limit)),
                gated,
                location: threshold.location.clone(),
            })
        })
        .collect()
}

/// A run's value of `metric`, in the unit of its thresholds.
pub fn metric_value(run: &RunResult, metric: SloMetric) -> Option<f64> {
    let totals = &run.totals;
    match metric {
        SloMetric::SuccessRate => Some(totals.success_rate()),
        SloMetric::P99Latency => (run.latency.count > 0).then(|| run.latency.p99_us as f64 / 1e6),
        SloMetric::Amplification => Some(totals.amplification()),
        SloMetric::RateLimitedShare => Some(if totals.attempts == 0 {
            0.0
        } else {
            totals.rate_limited as f64 / totals.attempts as f64
        }),
        SloMetric::GaveUp => Some(totals.gave_up as f64),
        SloMetric::EarlyRetries => Some(run.analysis.early_retries as f64),
        SloMetric::Makespan => run
            .batch
            .and_then(|batch| batch.makespan_ms)
            .map(|millis| millis as f64 / 1e3),
        // No one-second window with 10 attempts: nothing stormed, a share of 0.
        SloMetric::StormShare => Some(run.analysis.storm_share.unwrap_or(0.0)),
    }
}

/// What a verdict says when its run has no value of `metric`.
fn missing_value(metric: SloMetric) -> &'static str {
    match metric {
        SloMetric::Makespan => "n/a (the batch did not finish)",
        _ => "n/a (no request succeeded)",
    }
}

/// A value of `metric` as people read it.
pub fn format_value(metric: SloMetric, value: f64) -> String {
    match metric {
        SloMetric::SuccessRate | SloMetric::RateLimitedShare | SloMetric::StormShare => {
            units::percent(value)
        }
        SloMetric::P99Latency => units::latency((value * 1e6).round() as u64),
        SloMetric::Makespan => units::duration_ms((value * 1e3).round() as u64),
        SloMetric::Amplification => units::factor(value),
        SloMetric::GaveUp | SloMetric::EarlyRetries => format!("{value:.0}"),
    }
}

/// Which verdicts [`verdicts_terminal`] lists one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictListing {
    /// Only failures; passes are counted.
    FailuresOnly,
    /// Every verdict.
    All,
}

/// The verdicts for a terminal: one line per listed verdict (`pass` or `FAIL`, or `base` for a
/// baseline's, then the scenario, the run, the comparison and where the threshold is written),
/// then the counts. Baselines' verdicts are listed only with [`VerdictListing::All`]; the counts
/// always say how many there were and how many missed.
pub fn verdicts_terminal(checked: &[CheckedScenario], listing: VerdictListing) -> String {
    let mut out = String::new();
    for scenario in checked {
        for verdict in &scenario.verdicts {
            if !verdict.failed() && listing == VerdictListing::FailuresOnly {
                continue;
            }
            let mark = match (verdict.gated, verdict.passed) {
                (false, _) => "base",
                (true, true) => "pass",
                (true, false) => "FAIL",
            };
            let _ = writeln!(
                out,
                "{mark}  {}  {}  {}  ({})",
                scenario.name,
                scenario.run_name(verdict),
                verdict.describe(),
                verdict.location
            );
        }
        if let Some(plan) = &scenario.plan
            && (!plan.holds || listing == VerdictListing::All)
        {
            let mark = if plan.holds { "pass" } else { "FAIL" };
            let _ = writeln!(
                out,
                "{mark}  {}  plan  {}  ({})",
                scenario.name,
                plan.describe(),
                plan.location
            );
        }
    }
    let counts = Counts::of(checked);
    let _ = writeln!(out, "{}", counts.headline());
    out
}

/// The verdicts as Markdown: a headline, then one table per scenario with failures in bold and
/// baselines' verdicts marked as such.
///
/// ```
/// let checked: Vec<report::CheckedScenario> = Vec::new();
/// assert!(report::verdicts_markdown(&checked).starts_with("### ratelab check: 0 passed, 0 failed"));
/// ```
pub fn verdicts_markdown(checked: &[CheckedScenario]) -> String {
    let counts = Counts::of(checked);
    let icon = if counts.failed == 0 { "✅" } else { "❌" };
    let mut out = format!("### ratelab check: {} {icon}\n\n", counts.headline());
    for scenario in checked {
        let _ = writeln!(
            out,
            "#### {} {}\n",
            escape(&scenario.name),
            if scenario.passed() { "✅" } else { "❌" }
        );
        out.push_str("| run | threshold | actual | result |\n|:--|:--|--:|:--|\n");
        for verdict in &scenario.verdicts {
            let bound = verdict.threshold();
            let actual = verdict.actual.map_or_else(
                || "n/a".to_owned(),
                |value| format_value(verdict.metric, value),
            );
            let result = match (verdict.gated, verdict.passed) {
                (false, true) => "baseline: met",
                (false, false) => "baseline: missed",
                (true, true) => "pass",
                (true, false) => "**FAIL**",
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {result} |",
                scenario.run_name(verdict).replace('`', "'"),
                escape(&bound),
                escape(&actual)
            );
        }
        if let Some(plan) = &scenario.plan {
            let (actual, result) = if plan.holds {
                (format!("{} holds", plan.holds_at), "pass")
            } else {
                (format!("holds to {}", plan.breaking_point), "**FAIL**")
            };
            let _ = writeln!(
                out,
                "| plan | {} | {} | {result} |",
                escape(&plan.gate()),
                escape(&actual)
            );
        }
        out.push('\n');
    }
    out
}

/// Verdict counts: gated ones passed and failed, and baselines' (not gated) met and missed.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    passed: usize,
    failed: usize,
    baseline_met: usize,
    baseline_missed: usize,
}

impl Counts {
    fn of(checked: &[CheckedScenario]) -> Counts {
        let mut counts = Counts::default();
        for verdict in checked.iter().flat_map(|scenario| &scenario.verdicts) {
            let slot = match (verdict.gated, verdict.passed) {
                (true, true) => &mut counts.passed,
                (true, false) => &mut counts.failed,
                (false, true) => &mut counts.baseline_met,
                (false, false) => &mut counts.baseline_missed,
            };
            *slot += 1;
        }
        for plan in checked.iter().filter_map(|scenario| scenario.plan.as_ref()) {
            if plan.holds {
                counts.passed += 1;
            } else {
                counts.failed += 1;
            }
        }
        counts
    }

    /// `3 passed, 0 failed`, then `; baselines (not gated): 2 met, 4 missed` when there are any.
    fn headline(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.baseline_met + self.baseline_missed > 0 {
            let _ = write!(
                line,
                "; baselines (not gated): {} met, {} missed",
                self.baseline_met, self.baseline_missed
            );
        }
        line
    }
}
