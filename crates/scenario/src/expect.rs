//! The `[expect]` table: service-level thresholds a scenario's runs must meet, for CI gates
//! (`ratelab check`). Thresholds at the top of the table apply to every strategy; a
//! `[expect.strategy."<name>"]` table overrides them for one strategy. `gate` names the
//! strategies the gate is about; the others are baselines, judged and reported but never
//! failing the gate.
//!
//! ```toml
//! [expect]
//! gate = ["ours"]             # strategy labels; without it every strategy is gated
//! min_success_rate = 0.99     # share of requests that succeed, 0 to 1
//! max_p99_latency = "30s"     # end-to-end, retries and waits included
//! max_amplification = 1.5     # attempts per request
//! max_429_share = 0.2         # share of attempts rejected with 429
//! max_gave_up = 0             # requests given up
//! max_early_retries = 0       # retries sent before the server's retry-after
//! max_makespan = "10m"        # the batch's completion time (unfinished fails)
//! max_storm_share = 0.5       # largest share of retries in any busy one-second window
//!
//! [expect.strategy."none"]    # a strategy's label or its kind
//! min_success_rate = 0.5
//!
//! [expect.plan]               # a capacity gate (docs/plan.md, "A plan as a CI gate")
//! tier = "tier-2"             # this tier must still meet [expect] (99% success without a
//! holds_at = 1.5              # threshold) with the traffic grown 1.5 times
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Location, ScenarioError, SourceText};
use model::HumanDuration;

/// The `[expect]` table as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    /// Least share of requests that succeed, from 0 to 1 (e.g. 0.99).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub min_success_rate: Option<Spanned<f64>>,
    /// Largest p99 end-to-end latency of succeeded requests, retries and waits included
    /// (e.g. "30s").
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub max_p99_latency: Option<Spanned<HumanDuration>>,
    /// Largest number of attempts per request (1 means no retries).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub max_amplification: Option<Spanned<f64>>,
    /// Largest share of attempts rejected with 429, from 0 to 1.
    #[serde(default, rename = "max_429_share")]
    #[schemars(with = "Option<f64>")]
    pub max_rate_limited_share: Option<Spanned<f64>>,
    /// Most requests the strategy may give up.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_gave_up: Option<Spanned<u64>>,
    /// Most retries sent before the wait the server asked for (`retry-after`).
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_early_retries: Option<Spanned<u64>>,
    /// Longest completion time of the scenario's batch (groups with `requests_per_worker`), from
    /// its start to the end of its last request (e.g. "10m"); a batch that did not finish fails.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub max_makespan: Option<Spanned<HumanDuration>>,
    /// Largest storm share, from 0 to 1: the share of retries among the attempts sent in the
    /// stormiest one-second window holding at least 10 attempts (see `results::storm_share`).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub max_storm_share: Option<Spanned<f64>>,
    /// The strategies the gate is about, by label; the others are baselines, reported but
    /// never failing `ratelab check`. Without it every strategy is gated.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub gate: Option<Spanned<Vec<Spanned<String>>>>,
    /// Thresholds for one strategy, by its label (`openai-python@2.52`) or kind
    /// (`honour-retry-after`); they replace the top-level ones of the same name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ExpectFile>")]
    pub strategy: BTreeMap<String, Spanned<ExpectFile>>,
    /// A capacity gate: the tier that must still meet the criterion (these thresholds, or 99%
    /// success without any) with the scenario's traffic grown by a factor, as `ratelab plan`
    /// judges a cell. `ratelab check` probes that one cell.
    #[serde(default)]
    #[schemars(with = "Option<PlanGateFile>")]
    pub plan: Option<Spanned<PlanGateFile>>,
}

/// The `[expect.plan]` table as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanGateFile {
    /// The tier that must hold, as `ratelab tiers` names it (e.g. "tier-2").
    #[schemars(with = "String")]
    pub tier: Spanned<String>,
    /// The growth factor it must hold at: 1 is the scenario's traffic, 1.5 half as much again
    /// (above 0, at most 1000, three decimals at most).
    #[schemars(with = "f64")]
    pub holds_at: Spanned<f64>,
}

/// A checked `[expect.plan]` gate: `tier` must meet the scenario's criterion with its traffic
/// grown `holds_at_thousandths / 1000` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanGate {
    /// The tier, known to the catalog and offering the scenario's model.
    pub tier: String,
    /// The growth factor in thousandths (1500 for 1.5x), as plans count growth.
    pub holds_at_thousandths: u32,
    /// Where the table is written.
    pub location: Location,
}

/// A plan gate with the span of its `tier`, for the caller that checks the tier.
pub(crate) struct PlanGateAt {
    pub(crate) gate: PlanGate,
    pub(crate) tier_span: Range<usize>,
}

/// The largest growth factor a plan gate takes, in thousandths: `ratelab plan`'s own largest.
const MAX_GATE_THOUSANDTHS: u32 = 1_000_000;

/// A metric an `[expect]` threshold bounds; serialized (in `report.json`) as its key in the
/// `[expect]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SloMetric {
    /// Share of requests that succeeded (a minimum).
    #[serde(rename = "min_success_rate")]
    SuccessRate,
    /// p99 end-to-end latency of succeeded requests, in seconds.
    #[serde(rename = "max_p99_latency")]
    P99Latency,
    /// Attempts per logical request.
    #[serde(rename = "max_amplification")]
    Amplification,
    /// Share of attempts rejected with 429.
    #[serde(rename = "max_429_share")]
    RateLimitedShare,
    /// Requests given up.
    #[serde(rename = "max_gave_up")]
    GaveUp,
    /// Retries sent before the server's `retry-after`.
    #[serde(rename = "max_early_retries")]
    EarlyRetries,
    /// The batch's completion time, in seconds; none (not finished) fails.
    #[serde(rename = "max_makespan")]
    Makespan,
    /// The storm share (`results::storm_share`), from 0 to 1.
    #[serde(rename = "max_storm_share")]
    StormShare,
}

impl SloMetric {
    /// Every metric, in the order reports list them.
    pub const ALL: [SloMetric; 8] = [
        SloMetric::SuccessRate,
        SloMetric::P99Latency,
        SloMetric::Amplification,
        SloMetric::RateLimitedShare,
        SloMetric::GaveUp,
        SloMetric::EarlyRetries,
        SloMetric::Makespan,
        SloMetric::StormShare,
    ];

    /// The key in the `[expect]` table, e.g. `max_p99_latency`.
    pub fn key(self) -> &'static str {
        match self {
            SloMetric::SuccessRate => "min_success_rate",
            SloMetric::P99Latency => "max_p99_latency",
            SloMetric::Amplification => "max_amplification",
            SloMetric::RateLimitedShare => "max_429_share",
            SloMetric::GaveUp => "max_gave_up",
            SloMetric::EarlyRetries => "max_early_retries",
            SloMetric::Makespan => "max_makespan",
            SloMetric::StormShare => "max_storm_share",
        }
    }

    /// The metric's name in reports, e.g. `p99 latency`.
    pub fn name(self) -> &'static str {
        match self {
            SloMetric::SuccessRate => "success rate",
            SloMetric::P99Latency => "p99 latency",
            SloMetric::Amplification => "amplification",
            SloMetric::RateLimitedShare => "429 share",
            SloMetric::GaveUp => "gave up",
            SloMetric::EarlyRetries => "early retries",
            SloMetric::Makespan => "makespan",
            SloMetric::StormShare => "storm share",
        }
    }

    /// Whether the threshold is a floor (`>=`) rather than a ceiling (`<=`).
    pub fn is_minimum(self) -> bool {
        self == SloMetric::SuccessRate
    }

    /// Whether `actual` meets the threshold `limit`.
    ///
    /// ```
    /// use scenario::SloMetric;
    /// assert!(SloMetric::SuccessRate.passes(0.995, 0.99));
    /// assert!(!SloMetric::P99Latency.passes(31.0, 30.0));
    /// assert!(SloMetric::GaveUp.passes(0.0, 0.0));
    /// ```
    pub fn passes(self, actual: f64, limit: f64) -> bool {
        if self.is_minimum() {
            actual >= limit
        } else {
            actual <= limit
        }
    }
}

impl fmt::Display for SloMetric {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One checked threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// What it bounds.
    pub metric: SloMetric,
    /// The bound in the metric's unit: a share from 0 to 1, seconds for latency and makespan, a
    /// factor for amplification, a count otherwise.
    pub limit: f64,
    /// The strategy it is for (a label or kind), or `None` for every strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Where the threshold is written.
    pub location: Location,
}

/// A scenario's thresholds, checked; empty when the file has no `[expect]` table.
///
/// Serialized flattened into `report.json`'s scenario summary: `expect` (the list of
/// thresholds, absent when empty) and `gate` (absent when every strategy is gated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expectations {
    /// Thresholds for every strategy first, then per strategy by name; each in
    /// [`SloMetric::ALL`] order.
    #[serde(rename = "expect", default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// The labels of the strategies the gate is about, in the order written; `None` gates every
    /// strategy. The others are baselines: judged, reported, never failing the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Vec<String>>,
}

impl Expectations {
    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
    }

    /// Whether runs of the strategy labelled `strategy` decide the gate (`ratelab check`'s exit
    /// code); the others are baselines.
    ///
    /// ```
    /// let mut expect = scenario::Expectations::default();
    /// assert!(expect.gates("none"), "without `gate`, every strategy is gated");
    /// expect.gate = Some(vec!["ours".to_owned()]);
    /// assert!(expect.gates("ours"));
    /// assert!(!expect.gates("none"));
    /// ```
    pub fn gates(&self, strategy: &str) -> bool {
        self.gate
            .as_ref()
            .is_none_or(|gate| gate.iter().any(|label| label == strategy))
    }

    /// The threshold of `metric` that applies to a run of `strategy` (its label): one written
    /// for the exact label, else one for its kind (the label up to `:` or `@`), else the one for
    /// every strategy.
    ///
    /// ```
    /// let text = r#"
    /// name = "gate"
    /// duration = "1m"
    /// [server]
    /// model = "gpt-4o-mini"
    /// tier = "tier-1"
    /// [[clients]]
    /// name = "app"
    /// arrival = { kind = "constant", rpm = 60 }
    /// prompt_tokens = { kind = "fixed", value = 10 }
    /// completion_tokens = { kind = "fixed", value = 10 }
    /// [[strategies]]
    /// kind = "none"
    /// [expect]
    /// min_success_rate = 0.99
    /// [expect.strategy.none]
    /// min_success_rate = 0.5
    /// "#;
    /// let scenario = scenario::parse_scenario(text, "gate.toml", &mut |p| std::fs::read_to_string(p))
    ///     .unwrap();
    /// let rule = scenario.expect.applying_to(scenario::SloMetric::SuccessRate, "none").unwrap();
    /// assert_eq!(rule.limit, 0.5);
    /// assert_eq!(rule.location.to_string(), "gate.toml:17:20");
    /// ```
    pub fn applying_to(&self, metric: SloMetric, strategy: &str) -> Option<&Threshold> {
        let for_metric = || {
            self.thresholds
                .iter()
                .filter(move |rule| rule.metric == metric)
        };
        for_metric()
            .find(|rule| rule.strategy.as_deref() == Some(strategy))
            .or_else(|| {
                for_metric().find(|rule| rule.strategy.as_deref() == Some(strategy_kind(strategy)))
            })
            .or_else(|| for_metric().find(|rule| rule.strategy.is_none()))
    }
}

/// The kind of a strategy label: `openai-python` for `openai-python@2.52` or
/// `honour-retry-after` for `honour-retry-after:inner=(...)`.
pub fn strategy_kind(label: &str) -> &str {
    let end = label.find([':', '@']).unwrap_or(label.len());
    &label[..end]
}

/// Checks an `[expect]` table against the scenario's strategy labels; `has_batch` says whether
/// the scenario has a batch (a group with `requests_per_worker`) for `max_makespan` to bound.
/// Returns the thresholds and the `[expect.plan]` gate, whose tier the caller checks against
/// the catalog.
pub(crate) fn validate(
    source: &SourceText<'_>,
    file: Option<Spanned<ExpectFile>>,
    strategy_labels: &[String],
    has_batch: bool,
) -> Result<(Expectations, Option<PlanGateAt>), ScenarioError> {
    let Some(file) = file else {
        return Ok((Expectations::default(), None));
    };
    let mut thresholds = Vec::new();
    let table_span = file.span();
    let file = file.into_inner();
    thresholds_of(source, &file, None, has_batch, &mut thresholds)?;
    let plan = match &file.plan {
        Some(table) => Some(plan_gate_of(source, table)?),
        None => None,
    };
    for (name, table) in &file.strategy {
        let span = table.span();
        let known = strategy_labels
            .iter()
            .any(|label| label == name || strategy_kind(label) == name);
        if !known {
            return Err(source.invalid(
                span,
                format!(
                    "expect.strategy.\"{name}\" names no strategy of this scenario (expected a label or kind of: {})",
                    strategy_labels.join(", ")
                ),
            ));
        }
        let table = table.get_ref();
        if let Some(gate) = &table.gate {
            return Err(source.invalid(
                gate.span(),
                format!(
                    "expect.strategy.\"{name}\".gate is not allowed (gate names the gated strategies once, at the top of [expect]: write `gate = [...]` under [expect])"
                ),
            ));
        }
        if let Some(plan) = &table.plan {
            return Err(source.invalid(
                plan.span(),
                format!(
                    "expect.strategy.\"{name}\".plan is not allowed (a plan gate judges every strategy, as `ratelab plan` does: write [expect.plan] at the top level)"
                ),
            ));
        }
        if !table.strategy.is_empty() {
            return Err(source.invalid(
                span,
                format!(
                    "expect.strategy.\"{name}\" has its own strategy table (per-strategy thresholds cannot nest; write [expect.strategy.\"<name>\"] at the top level)"
                ),
            ));
        }
        thresholds_of(source, table, Some(name), has_batch, &mut thresholds)?;
    }
    if thresholds.is_empty() && plan.is_none() {
        return Err(source.invalid(
            table_span,
            format!(
                "the [expect] table sets no threshold (expected at least one of: {}; or an [expect.plan] gate)",
                SloMetric::ALL.map(SloMetric::key).join(", ")
            ),
        ));
    }
    let gate = match &file.gate {
        Some(gate) => Some(gate_of(source, gate, strategy_labels, &thresholds)?),
        None => None,
    };
    Ok((Expectations { thresholds, gate }, plan))
}

/// Checks `[expect.plan]`'s growth factor; returns the gate and the span of its `tier` (the
/// tier itself is checked against the catalog by the caller, which has the server).
fn plan_gate_of(
    source: &SourceText<'_>,
    table: &Spanned<PlanGateFile>,
) -> Result<PlanGateAt, ScenarioError> {
    let file = table.get_ref();
    let factor = *file.holds_at.get_ref();
    let thousandths = factor * 1_000.0;
    let max = f64::from(MAX_GATE_THOUSANDTHS) / 1_000.0;
    if !(factor.is_finite() && factor > 0.0 && factor <= max) {
        return Err(source.invalid(
            file.holds_at.span(),
            format!(
                "expect.plan.holds_at = {factor} is not allowed (expected a growth factor above 0 and at most {max}: 1 is the scenario's traffic, 1.5 half as much again)"
            ),
        ));
    }
    if (thousandths - thousandths.round()).abs() > 1e-6 {
        return Err(source.invalid(
            file.holds_at.span(),
            format!(
                "expect.plan.holds_at = {factor} has more than three decimals (write e.g. 1.125)"
            ),
        ));
    }
    let gate = PlanGate {
        tier: file.tier.get_ref().clone(),
        holds_at_thousandths: thousandths.round() as u32,
        location: source.location(table.span().start),
    };
    Ok(PlanGateAt {
        gate,
        tier_span: file.tier.span(),
    })
}

/// Checks `gate`: known labels, at least one, and each gated strategy bounded by some threshold,
/// so a gate cannot pass for want of anything to check.
fn gate_of(
    source: &SourceText<'_>,
    gate: &Spanned<Vec<Spanned<String>>>,
    strategy_labels: &[String],
    thresholds: &[Threshold],
) -> Result<Vec<String>, ScenarioError> {
    let labels = strategy_labels.join(", ");
    if gate.get_ref().is_empty() {
        return Err(source.invalid(
            gate.span(),
            format!(
                "expect.gate is empty, so nothing would be gated (expected the labels of the strategies to gate, from: {labels}; or remove gate to gate every strategy)"
            ),
        ));
    }
    let mut gated: Vec<String> = Vec::with_capacity(gate.get_ref().len());
    for label in gate.get_ref() {
        let name = label.get_ref();
        if !strategy_labels.contains(name) {
            return Err(source.invalid(
                label.span(),
                format!(
                    "expect.gate names \"{name}\", which is no strategy label of this scenario (expected one of: {labels})"
                ),
            ));
        }
        let expectations = Expectations {
            thresholds: thresholds.to_vec(),
            gate: None,
        };
        let bounded = SloMetric::ALL
            .into_iter()
            .any(|metric| expectations.applying_to(metric, name).is_some());
        if !bounded {
            return Err(source.invalid(
                label.span(),
                format!(
                    "expect.gate names \"{name}\", but no threshold applies to it, so its gate could never fail (expected a threshold at the top of [expect] or in [expect.strategy.\"{name}\"])"
                ),
            ));
        }
        if !gated.contains(name) {
            gated.push(name.clone());
        }
    }
    Ok(gated)
}

fn thresholds_of(
    source: &SourceText<'_>,
    file: &ExpectFile,
    strategy: Option<&String>,
    has_batch: bool,
    thresholds: &mut Vec<Threshold>,
) -> Result<(), ScenarioError> {
    let prefix = match strategy {
        Some(name) => format!("expect.strategy.\"{name}\"."),
        None => "expect.".to_owned(),
    };
    let mut push = |metric: SloMetric, limit: f64, span: Range<usize>| {
        thresholds.push(Threshold {
            metric,
            limit,
            strategy: strategy.cloned(),
            location: source.location(span.start),
        });
    };
    let share = |metric: SloMetric, value: &Spanned<f64>| -> Result<f64, ScenarioError> {
        let share = *value.get_ref();
        if share.is_finite() && (0.0..=1.0).contains(&share) {
            Ok(share)
        } else {
            Err(source.invalid(
                value.span(),
                format!(
                    "{prefix}{} = {share} is not allowed (expected a share from 0 to 1, e.g. 0.99)",
                    metric.key()
                ),
            ))
        }
    };
    if let Some(value) = &file.min_success_rate {
        push(
            SloMetric::SuccessRate,
            share(SloMetric::SuccessRate, value)?,
            value.span(),
        );
    }
    if let Some(value) = &file.max_p99_latency {
        let latency = value.get_ref().0;
        if latency.is_zero() {
            return Err(source.invalid(
                value.span(),
                format!(
                    "{prefix}max_p99_latency = \"0s\" is not allowed (expected a positive duration, e.g. \"30s\")"
                ),
            ));
        }
        push(SloMetric::P99Latency, latency.as_secs_f64(), value.span());
    }
    if let Some(value) = &file.max_amplification {
        let factor = *value.get_ref();
        if !(factor.is_finite() && factor >= 0.0) {
            return Err(source.invalid(
                value.span(),
                format!(
                    "{prefix}max_amplification = {factor} is not allowed (expected attempts per request, 0 or more, e.g. 1.5)"
                ),
            ));
        }
        push(SloMetric::Amplification, factor, value.span());
    }
    if let Some(value) = &file.max_rate_limited_share {
        let limit = share(SloMetric::RateLimitedShare, value)?;
        push(SloMetric::RateLimitedShare, limit, value.span());
    }
    if let Some(value) = &file.max_gave_up {
        push(SloMetric::GaveUp, *value.get_ref() as f64, value.span());
    }
    if let Some(value) = &file.max_early_retries {
        push(
            SloMetric::EarlyRetries,
            *value.get_ref() as f64,
            value.span(),
        );
    }
    if let Some(value) = &file.max_makespan {
        let makespan = value.get_ref().0;
        if !has_batch {
            return Err(source.invalid(
                value.span(),
                format!(
                    "{prefix}max_makespan is not allowed without a batch (expected a batch for it to bound: a client group with `closed_loop = {{ ..., requests_per_worker = N }}`)"
                ),
            ));
        }
        if makespan.is_zero() {
            return Err(source.invalid(
                value.span(),
                format!(
                    "{prefix}max_makespan = \"0s\" is not allowed (expected a positive duration, e.g. \"10m\")"
                ),
            ));
        }
        push(SloMetric::Makespan, makespan.as_secs_f64(), value.span());
    }
    if let Some(value) = &file.max_storm_share {
        let limit = share(SloMetric::StormShare, value)?;
        push(SloMetric::StormShare, limit, value.span());
    }
    Ok(())
}
