//! The questions a report answers, as advice a person can act on: which strategy does best on
//! each tier and with what numbers, whether it survives there, whether that still holds when
//! rejected requests count against the limit, and which tier the traffic needs.

use std::cmp::Ordering;

use quota::RejectedRequests;
use results::{HeadlineMetric, RunReport, RunResult, ServerSummary};
use scenario::{Expectations, SloMetric};

use crate::confidence::{describe, ranking_value, within_noise};
use crate::units;
use crate::verdict::run_verdicts;

/// The success rate a run must reach to survive when the scenario's `[expect]` sets no
/// `min_success_rate`.
pub const SURVIVAL_SUCCESS_RATE: f64 = 0.99;

/// The success floor of a report: the scenario's `[expect]` `min_success_rate` for every
/// strategy when it has one, else [`SURVIVAL_SUCCESS_RATE`].
///
/// The scoreboard marks a run best in a column other than success only when it reaches this
/// floor. A `min_success_rate` written for one strategy (`[expect.strategy."none"]`) decides
/// whether that strategy passes `ratelab check`, but does not lower the floor the strategies are
/// compared at.
///
/// ```
/// assert_eq!(report::success_floor(&report::example_report()), 0.99);
/// ```
pub fn success_floor(report: &RunReport) -> f64 {
    report
        .scenario
        .expect
        .thresholds
        .iter()
        .find(|threshold| {
            threshold.metric == SloMetric::SuccessRate && threshold.strategy.is_none()
        })
        .map_or(SURVIVAL_SUCCESS_RATE, |threshold| threshold.limit)
}

/// The answer lines of a report, plain text (renderers add their own markup).
///
/// **Survives.** A run survives when it meets every `[expect]` threshold that applies to it,
/// judged exactly as `ratelab check` judges it; without a `min_success_rate` for it, it must also
/// succeed for at least [`SURVIVAL_SUCCESS_RATE`] of its requests.
///
/// **Best.** On each server variant the best run is, in this order: one that survives; then the
/// highest success rate; then the lowest p99 latency (a run without successes has none and comes
/// last); then the lowest amplification; then the first in scenario order. A run that fails fast
/// therefore never wins on latency or amplification over one that succeeds more.
///
/// **Several seeds.** When the runs carry statistics over several seeds (`ratelab run --seeds`),
/// the ranking reads the means over the seeds instead of the first seed's values, and the
/// numbers are given as `mean ± half-width` of their 95% intervals. Surviving is still judged on
/// the first seed, as `ratelab check` judges it, and a shortfall says so (`success rate 66.5% <
/// 99.0% on seed 3`). When the best run and another are within the
/// noise of the seeds (on the first of success, p99 and amplification where they differ, their
/// intervals overlap), the answer says so instead of crowning one: `Best strategy on tier-1: a
/// and b are within noise (...)`. The tier needed says when its strategy's success interval
/// reaches below the success floor, and names a cheaper tier whose interval reaches above it.
///
/// **Tiers and rejection rules.** Variants are grouped by their catalog tier (variants without one,
/// custom limits, stand alone under their label). When a tier runs under several rejection rules,
/// its best strategy is named under `free` (the rule that charges nothing for a rejection), or
/// under its first variant when none is `free`; one more line per other rule says whether that
/// strategy still does best there, and names the one that does better when it does not (or says
/// the two are within the noise of the seeds, when their intervals overlap).
///
/// **Tier needed.** When several tiers are compared: the cheapest whose best strategy survives,
/// cheapest in the tier catalog's order (`free`, `tier-1` ... `tier-5`, whatever order the file
/// lists them in), variants without a tier after the catalog's tiers in scenario order. It is
/// answered under the same rule as the best strategy, and once more under each other rule
/// compared. When nothing survives anywhere, the last line says what to try.
///
/// ```
/// let answers = report::answers(&report::example_report());
/// assert_eq!(
///     answers[0],
///     "Best strategy on tier-1: retry-after (80.8% success, p99 35.3s, 1.97x amplification)."
/// );
/// assert!(answers[1].starts_with("Survives: no."));
/// ```
pub fn answers(report: &RunReport) -> Vec<String> {
    let judge = Judge::of(report);
    if let Some(tested) = &report.tested {
        return crate::side_by_side::answers(&judge, tested);
    }
    let groups = tier_groups(report);
    let mut lines = Vec::new();
    for group in &groups {
        group_lines(&judge, group, &mut lines);
    }
    let tiers_compared = groups.len() > 1;
    if tiers_compared {
        lines.push(tier_needed(&judge, &groups));
    } else if !groups.is_empty() && !groups.iter().any(|group| group.anything_survives(&judge)) {
        lines.push(
            "To try: compare higher tiers with server.compare_tiers to find the tier this traffic needs, or send less."
                .to_owned(),
        );
    }
    lines
}

/// How the runs of a report are judged: the thresholds and what surviving means in words.
pub(crate) struct Judge<'a> {
    pub(crate) report: &'a RunReport,
    expect: &'a Expectations,
}

/// One run with its verdict.
pub(crate) struct Judged<'a> {
    pub(crate) run: &'a RunResult,
    /// Thresholds the run misses, as `p99 latency 45.0s > 30.0s`; empty when it survives.
    pub(crate) shortfalls: Vec<String>,
}

impl Judged<'_> {
    pub(crate) fn survives(&self) -> bool {
        self.shortfalls.is_empty()
    }

    /// `(99.5% success, p99 3.20s, 1.10x amplification)`: the numbers the ranking reads, as
    /// `mean ± half-width` over the seeds when there are several.
    pub(crate) fn numbers(&self) -> String {
        format!("({})", self.figures())
    }

    /// [`Judged::numbers`] without the parentheses, for a line that adds figures of its own.
    pub(crate) fn figures(&self) -> String {
        if let Some(stats) = &self.run.seeds {
            return format!(
                "{} success, p99 {}, {} amplification; {} seeds",
                describe(self.run, HeadlineMetric::SuccessRate),
                describe(self.run, HeadlineMetric::P99),
                describe(self.run, HeadlineMetric::Amplification),
                stats.count()
            );
        }
        let totals = &self.run.totals;
        format!(
            "{} success, p99 {}, {} amplification",
            units::percent(totals.success_rate()),
            if self.run.latency.count == 0 {
                "n/a".to_owned()
            } else {
                units::latency(self.run.latency.p99_us)
            },
            units::factor(totals.amplification())
        )
    }

    fn strategy(&self) -> &str {
        &self.run.strategy
    }
}

impl<'a> Judge<'a> {
    fn of(report: &'a RunReport) -> Self {
        Judge {
            report,
            expect: &report.scenario.expect,
        }
    }

    pub(crate) fn judge(&self, run: &'a RunResult) -> Judged<'a> {
        let verdicts = run_verdicts(self.expect, run);
        let mut shortfalls: Vec<String> = verdicts
            .iter()
            .filter(|verdict| !verdict.passed)
            .map(|verdict| verdict.describe())
            .collect();
        let success_judged = verdicts
            .iter()
            .any(|verdict| verdict.metric == SloMetric::SuccessRate);
        let success = run.totals.success_rate();
        if !success_judged && success < SURVIVAL_SUCCESS_RATE {
            shortfalls.insert(
                0,
                format!(
                    "success rate {} < {}",
                    units::percent(success),
                    units::percent(SURVIVAL_SUCCESS_RATE)
                ),
            );
        }
        // Over several seeds the ranking reads means, but surviving is judged on the first seed,
        // as `ratelab check` judges it: a shortfall says which seed its value is from.
        if run.seeds.is_some() {
            let seed = self.report.scenario.seed;
            for shortfall in &mut shortfalls {
                shortfall.push_str(&format!(" on seed {seed}"));
            }
        }
        Judged { run, shortfalls }
    }

    /// The best run of the server variant labelled `server` (see [`answers`] for the order).
    fn best(&self, server: &str) -> Option<Judged<'a>> {
        let mut best: Option<Judged<'a>> = None;
        for run in self.report.runs.iter().filter(|run| run.server == server) {
            let judged = self.judge(run);
            // Strictly better only: the first of equally ranked runs wins.
            if best
                .as_ref()
                .is_none_or(|best| rank(&judged, best) == Ordering::Less)
            {
                best = Some(judged);
            }
        }
        best
    }

    /// The strategies of the server variant labelled `server` that rank exactly as `best` does,
    /// `best` first: a tie is reported as a tie, never settled by file order.
    fn tied_with(&self, server: &str, best: &Judged<'a>) -> Vec<&'a str> {
        let mut names = vec![best.run.strategy.as_str()];
        for run in self.report.runs.iter().filter(|run| run.server == server) {
            if run.strategy != best.run.strategy && rank(&self.judge(run), best) == Ordering::Equal
            {
                names.push(&run.strategy);
            }
        }
        names
    }

    /// The runs of the server variant labelled `server` within the noise of `best` (neither
    /// `best` nor tied with it), each with the metric whose intervals overlap.
    fn within_noise_of(
        &self,
        server: &str,
        best: &Judged<'a>,
        tied: &[&str],
    ) -> Vec<(&'a RunResult, HeadlineMetric)> {
        self.report
            .runs
            .iter()
            .filter(|run| run.server == server && !tied.contains(&run.strategy.as_str()))
            .filter(|run| self.judge(run).survives() == best.survives())
            .filter_map(|run| within_noise(best.run, run).map(|metric| (run, metric)))
            .collect()
    }

    /// What surviving means for this scenario, after a strategy or "no strategy".
    pub(crate) fn criterion(&self) -> String {
        let floor = format!(
            "succeeds for at least {} of requests",
            units::percent(SURVIVAL_SUCCESS_RATE)
        );
        // A floor written for one strategy only leaves the others at the default floor.
        let has_floor = self.expect.thresholds.iter().any(|threshold| {
            threshold.metric == SloMetric::SuccessRate && threshold.strategy.is_none()
        });
        if self.expect.is_empty() {
            floor
        } else if has_floor {
            "meets the scenario's [expect]".to_owned()
        } else {
            format!("{floor} and meets the scenario's [expect]")
        }
    }
}

/// Orders judged runs best first: surviving, success rate, p99, amplification (means over the
/// seeds when there are several).
fn rank(a: &Judged<'_>, b: &Judged<'_>) -> Ordering {
    let value = |run: &RunResult, metric: HeadlineMetric, missing: f64| {
        ranking_value(run, metric).unwrap_or(missing)
    };
    let success = |run| value(run, HeadlineMetric::SuccessRate, 0.0);
    // A run without successes has no p99 and comes last on it.
    let p99 = |run| value(run, HeadlineMetric::P99, f64::INFINITY);
    let amplification = |run| value(run, HeadlineMetric::Amplification, f64::INFINITY);
    b.survives()
        .cmp(&a.survives())
        .then(success(b.run).total_cmp(&success(a.run)))
        .then(p99(a.run).total_cmp(&p99(b.run)))
        .then(amplification(a.run).total_cmp(&amplification(b.run)))
}

/// One server variant as the answers see it.
#[derive(Debug, Clone)]
struct Variant {
    /// The label its runs carry.
    label: String,
    /// Its catalog tier, if any.
    tier: Option<String>,
    /// Its rejection rule, when the report says.
    rule: Option<RejectedRequests>,
}

/// The variants of one tier (or one variant without a tier): the first is the one answered
/// first, under the default rule; the others differ from it only by their rejection rule.
#[derive(Debug, Clone)]
struct TierGroup {
    /// The tier, or the label of a variant without one.
    name: String,
    /// Whether `name` is a catalog tier.
    in_catalog: bool,
    /// The variant answered first, then the others of the tier.
    variants: Vec<Variant>,
}

impl TierGroup {
    fn compares_rules(&self) -> bool {
        self.variants.len() > 1
    }

    fn anything_survives(&self, judge: &Judge<'_>) -> bool {
        self.variants.iter().any(|variant| {
            judge
                .best(&variant.label)
                .is_some_and(|best| best.survives())
        })
    }

    /// The variant of this tier under `rule`.
    fn under(&self, rule: Option<RejectedRequests>) -> Option<&Variant> {
        self.variants.iter().find(|variant| variant.rule == rule)
    }
}

/// The report's server variants grouped by tier, in the order they first appear.
fn tier_groups(report: &RunReport) -> Vec<TierGroup> {
    let tier_names = quota::Catalog::builtin().tier_names();
    let mut variants: Vec<Variant> = Vec::new();
    for run in &report.runs {
        if variants.iter().any(|variant| variant.label == run.server) {
            continue;
        }
        let summary: Option<&ServerSummary> = report
            .scenario
            .servers
            .iter()
            .find(|server| server.label == run.server);
        // A report written before variants carried their tier names it only in the label.
        let tier = summary
            .and_then(|server| server.tier.clone())
            .or_else(|| tier_names.contains(&run.server).then(|| run.server.clone()));
        variants.push(Variant {
            label: run.server.clone(),
            tier,
            rule: summary.map(|server| server.limits.rejected_requests),
        });
    }
    let mut groups: Vec<TierGroup> = Vec::new();
    for variant in &variants {
        let Some(tier) = &variant.tier else { continue };
        if groups.iter().any(|group| &group.name == tier) {
            continue;
        }
        let mut members: Vec<Variant> = variants
            .iter()
            .filter(|other| other.tier.as_ref() == Some(tier))
            .cloned()
            .collect();
        // The tier compares rejection rules only when each variant has its own known rule;
        // otherwise (variants differing in something else) each stands alone.
        let rules_distinct = members.iter().all(|member| member.rule.is_some())
            && members.iter().enumerate().all(|(index, member)| {
                members[..index]
                    .iter()
                    .all(|earlier| earlier.rule != member.rule)
            });
        if members.len() > 1 && rules_distinct {
            if let Some(free) = members
                .iter()
                .position(|member| member.rule == Some(RejectedRequests::Free))
            {
                let default_rule = members.remove(free);
                members.insert(0, default_rule);
            }
            groups.push(TierGroup {
                name: tier.clone(),
                in_catalog: tier_names.contains(tier),
                variants: members,
            });
        } else {
            for member in members {
                groups.push(TierGroup {
                    name: if groups.iter().any(|group| &group.name == tier) {
                        member.label.clone()
                    } else {
                        tier.clone()
                    },
                    in_catalog: tier_names.contains(tier),
                    variants: vec![member],
                });
            }
        }
    }
    // Variants without a tier (custom limits) stand alone, after in order of appearance.
    for variant in variants.iter().filter(|variant| variant.tier.is_none()) {
        groups.push(TierGroup {
            name: variant.label.clone(),
            in_catalog: false,
            variants: vec![variant.clone()],
        });
    }
    // Keep the order in which the report lists the variants.
    let position = |group: &TierGroup| {
        variants
            .iter()
            .position(|variant| variant.label == group.variants[0].label)
            .unwrap_or(usize::MAX)
    };
    groups.sort_by_key(position);
    groups
}

/// How a rejection rule reads in an answer: `counted rejections`. When a tier compares both
/// counting rules, each says which limits it charges.
fn rule_phrase(rule: Option<RejectedRequests>, both_counting_rules: bool) -> &'static str {
    match rule {
        Some(RejectedRequests::Free) => "free rejections",
        Some(RejectedRequests::CountPerMinute) if both_counting_rules => {
            "rejections counted per minute"
        }
        Some(RejectedRequests::CountAllRequestLimits) if both_counting_rules => {
            "rejections counted on every request limit"
        }
        Some(_) => "counted rejections",
        None => "another rule",
    }
}

/// The rule's name as variant labels write it: `rejections free`.
fn rule_label(rule: Option<RejectedRequests>) -> &'static str {
    match rule {
        Some(RejectedRequests::Free) => "rejections free",
        Some(RejectedRequests::CountPerMinute) => "rejections count",
        Some(RejectedRequests::CountAllRequestLimits) => "rejections count-all",
        None => "another rule",
    }
}

fn both_counting_rules(group: &TierGroup) -> bool {
    let counts = |rule| {
        group
            .variants
            .iter()
            .any(|variant| variant.rule == Some(rule))
    };
    counts(RejectedRequests::CountPerMinute) && counts(RejectedRequests::CountAllRequestLimits)
}

/// The best strategy of a tier, whether it survives, and how it fares under the other rules.
fn group_lines(judge: &Judge<'_>, group: &TierGroup, lines: &mut Vec<String>) {
    let primary = &group.variants[0];
    let Some(best) = judge.best(&primary.label) else {
        return;
    };
    let heading = if group.compares_rules() {
        format!("{}, {}", group.name, rule_label(primary.rule))
    } else {
        group.name.clone()
    };
    let tied = judge.tied_with(&primary.label, &best);
    let noisy = judge.within_noise_of(&primary.label, &best, &tied);
    lines.push(if !noisy.is_empty() {
        let mut names = tied.clone();
        names.extend(noisy.iter().map(|(run, _)| run.strategy.as_str()));
        let seeds = best.run.seeds.as_ref().map_or(1, results::SeedStats::count);
        let comparisons: Vec<String> = noisy
            .iter()
            .map(|(run, metric)| {
                format!(
                    "{}: {} {}, {} {}",
                    crate::confidence::title(*metric),
                    best.strategy(),
                    describe(best.run, *metric),
                    run.strategy,
                    describe(run, *metric),
                )
            })
            .collect();
        format!(
            "Best strategy on {heading}: {} are within noise over {seeds} seeds ({}); {} has the best mean, and more seeds may tell them apart.",
            join_names(&names),
            comparisons.join("; "),
            best.strategy(),
        )
    } else if tied.len() > 1 {
        format!(
            "Best strategy on {heading}: {} tie {}.",
            join_names(&tied),
            best.numbers()
        )
    } else {
        format!(
            "Best strategy on {heading}: {} {}.",
            best.strategy(),
            best.numbers()
        )
    });
    lines.push(if best.survives() && tied.len() > 1 {
        format!(
            "Survives: yes. On {heading}, each of them {}.",
            judge.criterion()
        )
    } else if best.survives() {
        format!(
            "Survives: yes. On {heading}, {} {}.",
            best.strategy(),
            judge.criterion()
        )
    } else {
        format!(
            "Survives: no. On {heading}, no strategy {}; {} comes closest ({}).",
            judge.criterion(),
            best.strategy(),
            best.shortfalls.join(", ")
        )
    });
    let both = both_counting_rules(group);
    for other in &group.variants[1..] {
        let Some(other_best) = judge.best(&other.label) else {
            continue;
        };
        let phrase = rule_phrase(other.rule, both);
        let fate = if other_best.survives() {
            format!("{} survives", other_best.strategy())
        } else {
            format!(
                "no strategy survives ({})",
                other_best.shortfalls.join(", ")
            )
        };
        let other_tied = judge.tied_with(&other.label, &other_best);
        if other_tied.len() > 1 && other_tied.contains(&best.strategy()) {
            lines.push(format!(
                "Under {phrase}: {} still tie {}; {}.",
                join_names(&other_tied),
                other_best.numbers(),
                if other_best.survives() {
                    "each survives".to_owned()
                } else {
                    format!(
                        "no strategy survives ({})",
                        other_best.shortfalls.join(", ")
                    )
                }
            ));
        } else if other_tied.contains(&best.strategy()) {
            let numbers = judge
                .report
                .runs
                .iter()
                .find(|run| run.server == other.label && run.strategy == best.strategy())
                .map_or_else(|| other_best.numbers(), |run| judge.judge(run).numbers());
            lines.push(format!(
                "Under {phrase}: {} still does best {numbers}; {fate}.",
                best.strategy(),
            ));
        } else {
            let same_strategy = judge
                .report
                .runs
                .iter()
                .find(|run| run.server == other.label && run.strategy == best.strategy())
                .map(|run| judge.judge(run));
            // Within the noise of the seeds, the other rule's best does not do better: say so
            // rather than crown it on a difference the seeds cannot tell from chance.
            let noise = same_strategy.as_ref().and_then(|judged| {
                (judged.survives() == other_best.survives())
                    .then(|| within_noise(other_best.run, judged.run))
                    .flatten()
                    .map(|metric| (judged, metric))
            });
            if let Some((judged, metric)) = noise {
                let seeds = other_best
                    .run
                    .seeds
                    .as_ref()
                    .map_or(1, results::SeedStats::count);
                lines.push(format!(
                    "Under {phrase}: {} and {} are within noise over {seeds} seeds ({}: {} {}, {} {}); {fate}.",
                    other_best.strategy(),
                    judged.strategy(),
                    crate::confidence::title(metric),
                    other_best.strategy(),
                    describe(other_best.run, metric),
                    judged.strategy(),
                    describe(judged.run, metric),
                ));
                continue;
            }
            let against = match same_strategy {
                Some(judged) => format!(" than {} {}", judged.strategy(), judged.numbers()),
                None => String::new(),
            };
            lines.push(format!(
                "Under {phrase}: {} does better {}{against}; {fate}.",
                other_best.strategy(),
                other_best.numbers()
            ));
        }
    }
}

/// The cheapest compared tier whose best strategy survives, under each rule compared.
fn tier_needed(judge: &Judge<'_>, groups: &[TierGroup]) -> String {
    let tier_names = quota::Catalog::builtin().tier_names();
    let mut cheapest_first: Vec<&TierGroup> = groups.iter().collect();
    // A stable sort: catalog tiers by their catalog position, the rest after, in file order.
    cheapest_first.sort_by_key(|group| {
        if group.in_catalog {
            tier_names
                .iter()
                .position(|name| *name == group.name)
                .unwrap_or(usize::MAX)
        } else {
            usize::MAX
        }
    });
    let needed = |variant_of: &dyn Fn(&TierGroup) -> Option<&Variant>| {
        cheapest_first.iter().find_map(|group| {
            let variant = variant_of(group)?;
            let best = judge.best(&variant.label)?;
            best.survives().then(|| {
                let tied = judge.tied_with(&variant.label, &best);
                let who = if tied.len() > 1 {
                    format!("tied strategies ({}) each", join_names(&tied))
                } else {
                    format!("a strategy ({})", best.strategy())
                };
                (group.name.clone(), who, join_names(&tied))
            })
        })
    };
    let names: Vec<&str> = cheapest_first
        .iter()
        .map(|group| group.name.as_str())
        .collect();
    let mut line = match needed(&|group| group.variants.first()) {
        Some((tier, who, _)) => format!(
            "Tier needed: {tier}, the cheapest compared tier where {who} {}.{}",
            judge.criterion(),
            tier_noise(judge, &cheapest_first, &tier)
        ),
        None => format!(
            "Tier needed: none of {} is enough for this traffic; try a higher tier, or send less.",
            names.join(", ")
        ),
    };
    // Once more under each rule some tier compares besides its first.
    let mut other_rules: Vec<Option<RejectedRequests>> = Vec::new();
    for group in groups {
        for variant in &group.variants[1..] {
            if !other_rules.contains(&variant.rule) {
                other_rules.push(variant.rule);
            }
        }
    }
    let both = groups.iter().any(both_counting_rules);
    for rule in other_rules {
        let phrase = rule_phrase(rule, both);
        let under_rule = needed(&|group| group.under(rule));
        line.push_str(&match under_rule {
            Some((tier, _, strategies)) => format!(" Under {phrase}: {tier} ({strategies})."),
            None => format!(" Under {phrase}: none of the compared tiers."),
        });
    }
    line
}

/// What the seeds say about the tier needed, `tier`: whether its best strategy's success
/// interval reaches below the success floor (the margin is noise), and which cheaper tier's
/// best reaches above it (that tier may be enough). Empty without seed statistics.
fn tier_noise(judge: &Judge<'_>, cheapest_first: &[&TierGroup], tier: &str) -> String {
    let floor = crate::success_floor(judge.report);
    let success_interval = |run: &RunResult| {
        run.seeds
            .as_ref()
            .and_then(|stats| stats.success_rate.interval())
    };
    let mut notes = Vec::new();
    for group in cheapest_first {
        let Some(best) = group
            .variants
            .first()
            .and_then(|variant| judge.best(&variant.label))
        else {
            continue;
        };
        let Some(interval) = success_interval(best.run) else {
            continue;
        };
        if group.name == tier {
            if interval.low() < floor {
                notes.push(format!(
                    "{}'s success on {tier}, {}, reaches below the {} floor: the margin is within noise",
                    best.strategy(),
                    describe(best.run, HeadlineMetric::SuccessRate),
                    units::percent(floor)
                ));
            }
            break;
        }
        if interval.high() >= floor {
            notes.push(format!(
                "{} may be enough too: {}'s success there, {}, reaches the {} floor within noise",
                group.name,
                best.strategy(),
                describe(best.run, HeadlineMetric::SuccessRate),
                units::percent(floor)
            ));
        }
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" Over the seeds: {}.", notes.join("; "))
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
