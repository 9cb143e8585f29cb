//! The validated scenario: domain types the workload generator and executors use.
//!
//! Unlike [`crate::file`], every value here has been checked: rates are positive, ranges are
//! ordered, names are unique, referenced traces are loaded.

use std::sync::Arc;
use std::time::Duration;

use crate::replay::RecordedTrace;

/// A validated scenario, ready to generate a workload.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name, also the default output directory.
    pub name: String,
    /// What situation this models.
    pub description: String,
    /// Seed of every random draw.
    pub seed: u64,
    /// How many seeds `ratelab run` runs every (variant, strategy) on: 1 (the default) is
    /// `seed` alone; more derive the others from it ([`crate::derive_seeds`]).
    pub seeds: u32,
    /// How long clients send new requests.
    pub duration: Duration,
    /// How long after `duration` retries may still finish.
    pub drain: Duration,
    /// The server side.
    pub server: ServerSpec,
    /// Who sends traffic, in file order.
    pub groups: Vec<ClientGroup>,
    /// Retry strategies to compare, in file order, each checked by the registry.
    pub strategies: Vec<NamedStrategy>,
    /// Width of a metrics time bin.
    pub bin_width: Duration,
    /// Thresholds the runs must meet (`ratelab check`); empty without an `[expect]` table.
    pub expect: crate::expect::Expectations,
    /// The `[expect.plan]` capacity gate `ratelab check` probes, when the file sets one.
    pub plan_gate: Option<crate::expect::PlanGate>,
}

impl Scenario {
    /// The instant after which the executor stops: `duration + drain`.
    pub fn horizon(&self) -> Duration {
        self.duration + self.drain
    }

    /// The same scenario cut to at most `duration` of new traffic and `drain` afterwards: for
    /// quick checks (tests, previews) of scenarios whose full length is not needed.
    ///
    /// ```
    /// # let text = "name = \"x\"\nduration = \"1h\"\n[server]\nmodel = \"gpt-4o\"\ntier = \"tier-1\"\n[[clients]]\nname = \"a\"\narrival = { kind = \"poisson\", rpm = 1 }\nprompt_tokens = { kind = \"fixed\", value = 1 }\ncompletion_tokens = { kind = \"fixed\", value = 1 }\n";
    /// # let scenario = scenario::parse_scenario(text, "x.toml", &mut |p| std::fs::read_to_string(p)).unwrap();
    /// use std::time::Duration;
    /// let short = scenario.shortened(Duration::from_secs(120), Duration::from_secs(60));
    /// assert_eq!(short.horizon(), Duration::from_secs(180));
    /// ```
    pub fn shortened(&self, duration: Duration, drain: Duration) -> Scenario {
        Scenario {
            duration: self.duration.min(duration),
            drain: self.drain.min(drain),
            ..self.clone()
        }
    }

    /// Total client instances across groups.
    pub fn instance_count(&self) -> u64 {
        self.groups
            .iter()
            .map(|group| u64::from(group.instances))
            .sum()
    }
}

/// A strategy to compare, with the short label tables and answers use.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedStrategy {
    /// Unique within the scenario: the file's `label`, else a short name made from the spec
    /// ([`NamedStrategy::short_name`]); the report's legend maps it to the full spec.
    pub label: String,
    /// The strategy, checked by the registry.
    pub spec: retry::StrategySpec,
}

impl NamedStrategy {
    /// A strategy labelled with its short name ([`NamedStrategy::short_name`]), which may not be
    /// unique in a scenario: [`NamedStrategy::label_all`] makes labels unique.
    pub fn unlabelled(spec: retry::StrategySpec) -> NamedStrategy {
        NamedStrategy {
            label: NamedStrategy::short_name(&spec),
            spec,
        }
    }

    /// A readable name for a spec: its kind, with wrapped strategies in parentheses and the
    /// outer layer of a stack first, leaving out every other parameter (the legend has them).
    ///
    /// ```
    /// use scenario::NamedStrategy;
    ///
    /// let wrapper = "honour-retry-after:inner=(decorrelated-jitter:base=500ms),jitter=0.5";
    /// assert_eq!(
    ///     NamedStrategy::short_name(&wrapper.parse().unwrap()),
    ///     "honour-retry-after(decorrelated-jitter)"
    /// );
    /// let stack = "stacked:inner=(openai-python@2.52),outer=(tenacity@9:max=60s)";
    /// assert_eq!(
    ///     NamedStrategy::short_name(&stack.parse().unwrap()),
    ///     "tenacity@9(openai-python@2.52)"
    /// );
    /// ```
    pub fn short_name(spec: &retry::StrategySpec) -> String {
        let nested = |name: &str| match spec.params.get(name) {
            Some(retry::ParamValue::Strategy(inner)) => Some(inner),
            _ => None,
        };
        // A stack reads from the outside in: the outer layer wraps the inner one.
        if let (Some(outer), Some(inner)) = (nested("outer"), nested("inner")) {
            return format!(
                "{}({})",
                NamedStrategy::short_name(outer),
                NamedStrategy::short_name(inner)
            );
        }
        let wrapped: Vec<String> = spec
            .params
            .values()
            .filter_map(|value| match value {
                retry::ParamValue::Strategy(inner) => Some(NamedStrategy::short_name(inner)),
                _ => None,
            })
            .collect();
        if wrapped.is_empty() {
            spec.kind.clone()
        } else {
            format!("{}({})", spec.kind, wrapped.join(", "))
        }
    }

    /// Labels a scenario's strategies: a given label is kept; an unlabelled strategy takes its
    /// short name, made unique by the top-level parameters that tell it apart from the others of
    /// the same short name (`honour-retry-after(full-jitter) jitter=1`), else by a number
    /// (`full-jitter #2`). Checking that given labels are unique is the caller's job.
    ///
    /// ```
    /// use scenario::NamedStrategy;
    ///
    /// let labels: Vec<String> = NamedStrategy::label_all(vec![
    ///     (None, "full-jitter:base=1s".parse().unwrap()),
    ///     (None, "full-jitter:base=2s".parse().unwrap()),
    ///     (Some("ours".to_owned()), "none".parse().unwrap()),
    /// ])
    /// .into_iter()
    /// .map(|strategy| strategy.label)
    /// .collect();
    /// assert_eq!(labels, ["full-jitter base=1s", "full-jitter base=2s", "ours"]);
    /// ```
    pub fn label_all(entries: Vec<(Option<String>, retry::StrategySpec)>) -> Vec<NamedStrategy> {
        let short: Vec<Option<String>> = entries
            .iter()
            .map(|(label, spec)| label.is_none().then(|| NamedStrategy::short_name(spec)))
            .collect();
        let mut taken: std::collections::BTreeSet<String> = entries
            .iter()
            .filter_map(|(label, _)| label.clone())
            .collect();
        let mut labels: Vec<Option<String>> =
            entries.iter().map(|(label, _)| label.clone()).collect();
        for index in 0..entries.len() {
            let Some(name) = &short[index] else { continue };
            if labels[index].is_some() {
                continue;
            }
            let same: Vec<usize> = (0..entries.len())
                .filter(|&other| short[other].as_ref() == Some(name))
                .collect();
            let specs: Vec<&retry::StrategySpec> = same.iter().map(|&i| &entries[i].1).collect();
            let mut candidates: Vec<String> = specs
                .iter()
                .map(|spec| with_distinguishing_params(name, spec, &specs))
                .collect();
            let distinct: std::collections::BTreeSet<&String> = candidates.iter().collect();
            if distinct.len() < candidates.len() || candidates.iter().any(|c| taken.contains(c)) {
                candidates = Vec::with_capacity(same.len());
                let mut number = 1;
                for _ in &same {
                    let mut candidate = if number == 1 {
                        name.clone()
                    } else {
                        format!("{name} #{number}")
                    };
                    while taken.contains(&candidate) || candidates.contains(&candidate) {
                        number += 1;
                        candidate = format!("{name} #{number}");
                    }
                    candidates.push(candidate);
                    number += 1;
                }
            }
            for (&member, candidate) in same.iter().zip(candidates) {
                taken.insert(candidate.clone());
                labels[member] = Some(candidate);
            }
        }
        entries
            .into_iter()
            .zip(labels)
            .map(|((_, spec), label)| NamedStrategy {
                label: label.unwrap_or_else(|| NamedStrategy::short_name(&spec)),
                spec,
            })
            .collect()
    }
}

/// `name` followed by the top-level parameters of `spec` (not wrapped strategies) whose value
/// is not the same in every one of `specs`: what tells strategies of one short name apart.
fn with_distinguishing_params(
    name: &str,
    spec: &retry::StrategySpec,
    specs: &[&retry::StrategySpec],
) -> String {
    if specs.len() < 2 {
        return name.to_owned();
    }
    let differing: Vec<String> = spec
        .params
        .iter()
        .filter(|(_, value)| !matches!(value, retry::ParamValue::Strategy(_)))
        .filter(|(key, value)| {
            specs.iter().any(|other| {
                other.params.get(*key).map(ToString::to_string) != Some(value.to_string())
            })
        })
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if differing.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {}", differing.join(","))
    }
}

/// The server side of a scenario: the server model's config and the variants to compare.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The model the clients call.
    pub model: String,
    /// The server variants to compare, at least one; each runs every strategy.
    pub variants: Vec<ServerVariant>,
    /// The `[server]` table as written (every variant's config derives from it).
    pub config: model::ServerConfig,
    /// Each declared API key's organization and project.
    pub keys: std::collections::BTreeMap<String, (String, String)>,
}

/// One server configuration in a comparison: a tier of the catalog (or `custom` limits), under
/// one rejection rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerVariant {
    /// Label in reports: the tier name, or `custom` for explicit limits without a tier; with
    /// `compare_rejections`, followed by the rule, e.g. `tier-1, rejections count`.
    pub label: String,
    /// The catalog tier the limits come from; `None` for explicit limits without a tier.
    pub tier: Option<String>,
    /// The limits of the scenario's model at the start of the run, with the limiter's options.
    pub limits: quota::LimitSet,
    /// The server model's config of this variant: the scenario's, with its tier and rule.
    pub config: model::ServerConfig,
}

/// A group of client instances sharing the key.
#[derive(Debug, Clone)]
pub struct ClientGroup {
    /// Unique name; seeds the group's random streams.
    pub name: String,
    /// Fan-out: how many instances run this group.
    pub instances: u32,
    /// When instance 0 starts.
    pub start: Duration,
    /// Delay between successive instances' starts.
    pub stagger: Duration,
    /// Closed-loop workers or an open-loop arrival process.
    pub driver: Driver,
    /// Token counts, timeout and deadline of each request.
    pub shape: RequestShape,
    /// The API key the group sends and its organization and project; `None` for the default
    /// organization of a server that declares none.
    pub key: Option<GroupKey>,
}

/// A client group's API key, with the organization and project it acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupKey {
    pub key: String,
    pub organization: String,
    pub project: String,
}

impl ClientGroup {
    /// When instance `instance` starts.
    pub fn instance_start(&self, instance: u32) -> Duration {
        self.start + self.stagger * instance
    }

    /// For a batch (closed-loop workers with `requests_per_worker`), the requests the group is
    /// to send in all: instances x concurrency x requests_per_worker. `None` for other groups,
    /// whose work has no fixed size.
    pub fn batch_requests(&self) -> Option<u64> {
        match self.driver {
            Driver::ClosedLoop {
                concurrency,
                requests_per_worker: Some(per_worker),
                ..
            } => Some(
                u64::from(self.instances)
                    .saturating_mul(u64::from(concurrency))
                    .saturating_mul(per_worker),
            ),
            _ => None,
        }
    }
}

/// How an instance produces requests.
#[derive(Debug, Clone)]
pub enum Driver {
    /// Workers that send the next request when the previous one finished.
    ClosedLoop {
        /// Workers per instance.
        concurrency: u32,
        /// Pause between a request's end and the worker's next.
        think_time: Duration,
        /// Cap on requests per worker.
        requests_per_worker: Option<u64>,
    },
    /// Requests arrive on their own schedule.
    OpenLoop(ArrivalProcess),
}

/// An open-loop arrival process; rates in requests per minute per instance, times relative to
/// the instance's start.
#[derive(Debug, Clone)]
pub enum ArrivalProcess {
    /// Evenly spaced.
    Constant {
        /// Requests per minute.
        rpm: f64,
    },
    /// Exponential gaps.
    Poisson {
        /// Mean requests per minute.
        rpm: f64,
    },
    /// Gamma gaps with shape `burstiness`.
    Gamma {
        /// Mean requests per minute.
        rpm: f64,
        /// Gamma shape.
        burstiness: f64,
    },
    /// `count` at once at `at`, repeated every `every`.
    Burst {
        /// Requests per burst.
        count: u32,
        /// First burst.
        at: Duration,
        /// Period, if repeated.
        every: Option<Duration>,
    },
    /// Base rate with a window at a peak rate.
    Spike {
        /// Rate outside the window.
        base_rpm: f64,
        /// Rate inside the window.
        peak_rpm: f64,
        /// Window start.
        start: Duration,
        /// Window length.
        length: Duration,
    },
    /// Linear change of rate, then hold.
    Ramp {
        /// Initial rate.
        from_rpm: f64,
        /// Final rate.
        to_rpm: f64,
        /// Ramp length.
        over: Duration,
    },
    /// Sinusoidal rate.
    Diurnal {
        /// Mean rate.
        mean_rpm: f64,
        /// Swing around the mean.
        amplitude_rpm: f64,
        /// Cycle length.
        period: Duration,
        /// Offset into the cycle at the instance start.
        phase: Duration,
    },
    /// Recorded arrivals.
    Replay {
        /// The loaded trace, shared by instances.
        trace: Arc<RecordedTrace>,
        /// Time multiplier.
        time_scale: f64,
    },
}

/// Token counts, timeout and deadline of a group's requests.
#[derive(Debug, Clone)]
pub struct RequestShape {
    /// Prompt tokens.
    pub prompt_tokens: SizeDistribution,
    /// Completion tokens actually generated (capped at `max_tokens`).
    pub completion_tokens: SizeDistribution,
    /// `max_tokens` sent with the request.
    pub max_tokens: u32,
    /// Client-side timeout per attempt.
    pub timeout: Duration,
    /// End-to-end deadline of each request from its arrival, waits included; `None` for none.
    pub deadline: Option<Duration>,
}

/// A validated distribution of token counts.
#[derive(Debug, Clone, PartialEq)]
pub enum SizeDistribution {
    /// Always `value`.
    Fixed(u32),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Smallest.
        min: u32,
        /// Largest.
        max: u32,
    },
    /// Normal, clamped.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std_dev: f64,
        /// Lower clamp.
        min: u32,
        /// Upper clamp.
        max: u32,
    },
    /// Log-normal, clamped.
    Lognormal {
        /// Median.
        median: f64,
        /// Sigma of the underlying normal.
        sigma: f64,
        /// Lower clamp.
        min: u32,
        /// Upper clamp.
        max: u32,
    },
    /// Weighted list.
    Empirical {
        /// Values.
        values: Vec<u32>,
        /// Cumulative weights, normalized so the last is 1.
        cumulative: Vec<f64>,
    },
}

impl SizeDistribution {
    /// The largest value a draw can produce.
    pub fn upper_bound(&self) -> u32 {
        match self {
            SizeDistribution::Fixed(value) => *value,
            SizeDistribution::Uniform { max, .. }
            | SizeDistribution::Normal { max, .. }
            | SizeDistribution::Lognormal { max, .. } => *max,
            SizeDistribution::Empirical { values, .. } => values.iter().copied().max().unwrap_or(0),
        }
    }
}
