//! Validation: parses scenario TOML and turns the file types into checked domain types, with
//! `file:line:col` errors that say what is wrong and what is allowed.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::error::{ScenarioError, SourceText};
use crate::file::{FaultFile, LatencyFile, ScenarioFile, ServerFile};
use crate::model::{
    Fault, HeaderPolicy, LatencyModel, NamedStrategy, Scenario, ServerSpec, ServerVariant,
};

mod clients;

/// Reads a file a scenario refers to (a recorded trace); the CLI passes
/// `std::fs::read_to_string`, tests may serve files from memory.
pub type ReadFile<'a> = &'a mut dyn FnMut(&Path) -> std::io::Result<String>;

/// The strategy run when a scenario names none: what most applications run without knowing.
pub const DEFAULT_STRATEGY: &str = "openai-python";
const DEFAULT_DRAIN: Duration = Duration::from_secs(600);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_MAX_TOKENS: u32 = 4_096;
const TARGET_BIN_COUNT: u32 = 200;
/// Bins kept per run: each is a few counters, and every run keeps all of them.
const MAX_BINS: u128 = 100_000;

/// Parses and validates scenario text.
///
/// `file_name` is used in error messages and to resolve trace paths (relative to its folder);
/// `read_file` reads those traces.
///
/// ```
/// let text = r#"
/// name = "tiny"
/// duration = "1m"
/// [server]
/// model = "gpt-4o-mini"
/// tier = "tier-1"
/// [[clients]]
/// name = "app"
/// arrival = { kind = "poisson", rpm = 60 }
/// prompt_tokens = { kind = "fixed", value = 100 }
/// completion_tokens = { kind = "uniform", min = 10, max = 50 }
/// "#;
/// let scenario = scenario::parse_scenario(text, "tiny.toml", &mut |path| {
///     std::fs::read_to_string(path)
/// })
/// .unwrap();
/// assert_eq!(scenario.name, "tiny");
/// assert_eq!(scenario.groups[0].shape.max_tokens, 50);
///
/// let error = scenario::parse_scenario("name = 1", "bad.toml", &mut |path| {
///     std::fs::read_to_string(path)
/// })
/// .unwrap_err();
/// assert!(error.to_string().starts_with("bad.toml:1:8: "));
/// ```
pub fn parse_scenario(
    text: &str,
    file_name: &str,
    read_file: ReadFile<'_>,
) -> Result<Scenario, ScenarioError> {
    let source = SourceText {
        name: file_name,
        text,
    };
    let file: ScenarioFile = toml::from_str(text).map_err(|error| {
        source.invalid(
            error.span().unwrap_or(0..0),
            error.message().trim_end().trim_end_matches('.').to_owned(),
        )
    })?;
    Validator {
        source,
        base_dir: Path::new(file_name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        read_file,
    }
    .scenario(file)
}

struct Validator<'a, 'r> {
    source: SourceText<'a>,
    base_dir: PathBuf,
    read_file: ReadFile<'r>,
}

impl Validator<'_, '_> {
    fn fail<T>(&self, span: Range<usize>, message: impl Into<String>) -> Result<T, ScenarioError> {
        Err(self.source.invalid(span, message))
    }

    fn scenario(&mut self, file: ScenarioFile) -> Result<Scenario, ScenarioError> {
        let name_span = file.name.span();
        let name = file.name.into_inner();
        let name_is_plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_is_plain {
            return self.fail(
                name_span,
                format!(
                    "scenario name \"{name}\" is not allowed (use letters, digits, `-` and `_`; it names the output folder)"
                ),
            );
        }
        let duration_span = file.duration.span();
        let duration = file.duration.into_inner().0;
        if duration.is_zero() {
            return self.fail(duration_span, "duration must be longer than 0s");
        }
        let drain = file.drain.map_or(DEFAULT_DRAIN, |drain| drain.0);
        let seeds = match file.seeds {
            Some(seeds) => {
                let span = seeds.span();
                let seeds = seeds.into_inner();
                if !(1..=crate::MAX_SEEDS).contains(&seeds) {
                    return self.fail(
                        span,
                        format!(
                            "seeds = {seeds} is not allowed (expected 1 to {}: how many seeds every strategy runs on)",
                            crate::MAX_SEEDS
                        ),
                    );
                }
                seeds
            }
            None => 1,
        };
        let server = self.server(file.server)?;
        if file.clients.is_empty() {
            return self.fail(
                0..0,
                "the scenario has no client groups (add at least one [[clients]] table)",
            );
        }
        let mut names = BTreeSet::new();
        let mut groups = Vec::with_capacity(file.clients.len());
        for group in file.clients {
            let span = group.span();
            let group = self.client_group(group.into_inner(), span.clone())?;
            if !names.insert(group.name.clone()) {
                return self.fail(
                    span,
                    format!(
                        "client group name \"{}\" is used twice (names must be unique: they seed each group's random streams)",
                        group.name
                    ),
                );
            }
            groups.push(group);
        }
        let strategies = self.strategies(file.strategies)?;
        let labels: Vec<String> = strategies
            .iter()
            .map(|strategy| strategy.label.clone())
            .collect();
        let has_batch = groups.iter().any(|group| group.batch_requests().is_some());
        let expect = crate::expect::validate(&self.source, file.expect, &labels, has_batch)?;
        let bin_width = match file.metrics.bin {
            Some(bin) => {
                let span = bin.span();
                let bin = bin.into_inner();
                let bins = (duration + drain).as_nanos() / bin.0.as_nanos().max(1);
                if bin.0.is_zero() || bins > MAX_BINS {
                    return self.fail(
                        span,
                        format!(
                            "metrics.bin = \"{bin}\" is not allowed (expected a width that cuts duration + drain into at most {MAX_BINS} bins)"
                        ),
                    );
                }
                bin.0
            }
            None => {
                let seconds = (duration + drain)
                    .as_secs()
                    .div_ceil(u64::from(TARGET_BIN_COUNT));
                Duration::from_secs(seconds.max(1))
            }
        };
        Ok(Scenario {
            name,
            description: file.description.trim().to_owned(),
            seed: file.seed,
            seeds,
            duration,
            drain,
            server,
            groups,
            strategies,
            bin_width,
            expect,
        })
    }

    fn strategies(
        &self,
        specs: Vec<Spanned<retry::StrategySpec>>,
    ) -> Result<Vec<NamedStrategy>, ScenarioError> {
        if specs.is_empty() {
            return Ok(vec![NamedStrategy::unlabelled(retry::StrategySpec::named(
                DEFAULT_STRATEGY,
            ))]);
        }
        let registry = retry::Registry::with_builtins();
        let mut labels = BTreeSet::new();
        let mut specs_seen = BTreeSet::new();
        let mut checked = Vec::with_capacity(specs.len());
        for spec in specs {
            let span = spec.span();
            let mut spec = spec.into_inner();
            // `label` names the entry, not a parameter of the strategy.
            let label = match spec.params.remove("label") {
                None => None,
                Some(retry::ParamValue::Text(label)) if valid_label(&label) => Some(label),
                Some(other) => {
                    return self.fail(
                        span,
                        format!(
                            "strategy label {other} is not allowed (expected a short non-empty string of at most {MAX_LABEL_LENGTH} characters, e.g. label = \"sdk default\")"
                        ),
                    );
                }
            };
            if let Err(error) = registry.build(&spec) {
                return self.fail(span, error.to_string());
            }
            if !specs_seen.insert(spec.to_string()) {
                return self.fail(
                    span,
                    format!("strategy {spec} is listed twice (compare each strategy once)"),
                );
            }
            if let Some(label) = &label
                && !labels.insert(label.clone())
            {
                return self.fail(
                    span,
                    format!(
                        "strategy label \"{label}\" is used twice (give each strategy its own label)"
                    ),
                );
            }
            let named = (label, spec);
            checked.push(named);
        }
        Ok(NamedStrategy::label_all(checked))
    }

    /// The limits of one server variant: the tier's catalog limits (if a tier is given) overlaid
    /// with the explicit `limits` table, checked by compiling them.
    fn variant(
        &self,
        catalog: &quota::Catalog,
        model: &str,
        tier: Option<&Spanned<String>>,
        overrides: Option<&Spanned<quota::LimitSet>>,
        server_span: &Range<usize>,
    ) -> Result<ServerVariant, ScenarioError> {
        let (label, mut limits) = match tier {
            Some(tier) => {
                let from_catalog = catalog
                    .limits(tier.get_ref(), model)
                    .map_err(|error| self.source.invalid(tier.span(), error.to_string()))?;
                (tier.get_ref().clone(), from_catalog.limit_set())
            }
            None => (String::from("custom"), quota::LimitSet::default()),
        };
        if let Some(overrides) = overrides {
            let explicit = overrides.get_ref();
            for kind in quota::LimitKind::ALL {
                if let Some(value) = explicit.get(kind) {
                    limits.set(kind, Some(value));
                }
            }
            limits.algorithm = explicit.algorithm;
            limits.quantum_ms = explicit.quantum_ms.or(limits.quantum_ms);
            limits.rejected_requests = explicit.rejected_requests;
        }
        let span = overrides.map_or_else(|| server_span.clone(), Spanned::span);
        let compiled = limits.compile().map_err(|error| {
            self.source
                .invalid(span.clone(), format!("server.limits: {error}"))
        })?;
        if compiled.is_unlimited() {
            return self.fail(
                span,
                "the server has no limits (give a tier, or set e.g. rpm and tpm in server.limits)",
            );
        }
        Ok(ServerVariant {
            label,
            tier: tier.map(|tier| tier.get_ref().clone()),
            limits,
        })
    }

    fn server(&mut self, server: Spanned<ServerFile>) -> Result<ServerSpec, ScenarioError> {
        let span = server.span();
        let server = server.into_inner();
        let Some(model) = server.model else {
            return self.fail(
                span,
                "server.model is missing (name the model whose limits apply, e.g. model = \"gpt-4o-mini\")",
            );
        };
        let catalog = quota::Catalog::builtin();
        if server.tier.is_none() && server.limits.is_none() {
            return self.fail(
                span,
                format!(
                    "the server has neither tier nor limits (add tier = one of: {}; or a [server.limits] table)",
                    catalog.tier_names().join(", ")
                ),
            );
        }
        let first = self.variant(
            &catalog,
            model.get_ref(),
            server.tier.as_ref(),
            server.limits.as_ref(),
            &span,
        )?;
        if !server.compare_tiers.is_empty() && server.tier.is_none() {
            return self.fail(
                span,
                "server.compare_tiers needs server.tier: the comparison runs the same workload on each tier",
            );
        }
        let mut variants = vec![first];
        for extra in &server.compare_tiers {
            let variant = self.variant(
                &catalog,
                model.get_ref(),
                Some(extra),
                server.limits.as_ref(),
                &span,
            )?;
            if variants.iter().any(|known| known.label == variant.label) {
                return self.fail(
                    extra.span(),
                    format!(
                        "tier \"{}\" is listed twice (compare each tier once)",
                        variant.label
                    ),
                );
            }
            variants.push(variant);
        }
        let variants = self.with_rejection_rules(variants, &server.compare_rejections)?;
        let latency = self.latency(&server.latency, span.clone())?;
        let faults = server
            .faults
            .into_iter()
            .map(|fault| {
                let span = fault.span();
                self.fault(fault.into_inner(), span)
            })
            .collect::<Result<_, _>>()?;
        Ok(ServerSpec {
            model: model.into_inner(),
            variants,
            latency,
            headers: HeaderPolicy {
                retry_after: server.headers.retry_after,
                retry_after_ms: server.headers.retry_after_ms,
                rate_limit: server.headers.rate_limit,
            },
            faults,
        })
    }

    /// Each variant once per rejection rule of `compare_rejections`, rules innermost; the
    /// variants unchanged when the list is empty.
    fn with_rejection_rules(
        &self,
        variants: Vec<ServerVariant>,
        rules: &[Spanned<quota::RejectedRequests>],
    ) -> Result<Vec<ServerVariant>, ScenarioError> {
        if rules.is_empty() {
            return Ok(variants);
        }
        for (index, rule) in rules.iter().enumerate() {
            if rules[..index]
                .iter()
                .any(|seen| seen.get_ref() == rule.get_ref())
            {
                return self.fail(
                    rule.span(),
                    format!(
                        "rejection rule \"{}\" is listed twice in server.compare_rejections (compare each rule once)",
                        rejection_rule_name(*rule.get_ref())
                    ),
                );
            }
        }
        let mut expanded = Vec::with_capacity(variants.len() * rules.len());
        for variant in variants {
            for rule in rules {
                let rule = *rule.get_ref();
                expanded.push(ServerVariant {
                    label: format!("{}, {}", variant.label, rejection_rule_label(rule)),
                    tier: variant.tier.clone(),
                    limits: quota::LimitSet {
                        rejected_requests: rule,
                        ..variant.limits.clone()
                    },
                });
            }
        }
        Ok(expanded)
    }

    fn latency(
        &self,
        latency: &LatencyFile,
        span: Range<usize>,
    ) -> Result<LatencyModel, ScenarioError> {
        if !(latency.jitter.is_finite() && (0.0..=3.0).contains(&latency.jitter)) {
            return self.fail(
                span,
                format!(
                    "server.latency.jitter {} is not allowed (expected a log-normal sigma from 0 to 3)",
                    latency.jitter
                ),
            );
        }
        // An admitted request must take time, or a closed-loop worker would send forever at one
        // instant. A rejection may be instant: every strategy caps its attempts, so a retry
        // loop at one instant ends.
        if latency.base.0.is_zero() {
            return self.fail(
                span,
                "server.latency.base must be longer than 0s (use e.g. \"1ms\" for a near-instant server)",
            );
        }
        Ok(LatencyModel {
            base: latency.base.0,
            per_prompt_token: latency.per_prompt_token.0,
            per_output_token: latency.per_output_token.0,
            jitter: latency.jitter,
            reject: latency.reject.0,
        })
    }

    fn fault(&self, fault: FaultFile, span: Range<usize>) -> Result<Fault, ScenarioError> {
        if !(fault.status == 429 || (500..=599).contains(&fault.status)) {
            return self.fail(
                span,
                format!(
                    "fault status {} is not allowed (expected a server error from 500 to 599, e.g. 503, or 429)",
                    fault.status
                ),
            );
        }
        let allowed_codes: &[&'static str] = if fault.status == 429 {
            &["insufficient_quota", "slow_down"]
        } else {
            &["server_is_overloaded", "server_error"]
        };
        let code = match fault.code.as_deref() {
            None if fault.status == 503 => "server_is_overloaded",
            None if fault.status == 429 => "insufficient_quota",
            None => "server_error",
            Some(given) => match allowed_codes.iter().find(|code| **code == given) {
                Some(code) => code,
                None => {
                    return self.fail(
                        span,
                        format!(
                            "fault code \"{given}\" is not allowed with status {} (expected one of: {})",
                            fault.status,
                            allowed_codes.join(", ")
                        ),
                    );
                }
            },
        };
        if !(0.0..=1.0).contains(&fault.probability) {
            return self.fail(
                span,
                format!(
                    "fault probability {} is not allowed (expected a share from 0 to 1)",
                    fault.probability
                ),
            );
        }
        let end = fault.end.map_or(Duration::MAX, |end| end.0);
        if end <= fault.start.0 {
            return self.fail(
                span,
                format!(
                    "fault window ends ({}) before it starts ({}) (expected end > start)",
                    fault.end.unwrap_or_default(),
                    fault.start
                ),
            );
        }
        Ok(Fault {
            start: fault.start.0,
            end,
            status: fault.status,
            code,
            probability: fault.probability,
        })
    }
}

/// The JSON Schema of scenario files, for editors (`ratelab schema`).
///
/// ```
/// let schema = scenario::json_schema();
/// assert!(schema.contains("\"clients\""));
/// ```
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// The longest strategy label a scenario may give.
const MAX_LABEL_LENGTH: usize = 40;

fn valid_label(label: &str) -> bool {
    let label = label.trim();
    !label.is_empty() && label.chars().count() <= MAX_LABEL_LENGTH && label == label.trim()
}

/// A rejection rule as written in files.
fn rejection_rule_name(rule: quota::RejectedRequests) -> &'static str {
    match rule {
        quota::RejectedRequests::Free => "free",
        quota::RejectedRequests::CountPerMinute => "count-per-minute",
        quota::RejectedRequests::CountAllRequestLimits => "count-all-request-limits",
    }
}

/// A rejection rule as a variant label reads it.
pub fn rejection_rule_label(rule: quota::RejectedRequests) -> &'static str {
    match rule {
        quota::RejectedRequests::Free => "rejections free",
        quota::RejectedRequests::CountPerMinute => "rejections count",
        quota::RejectedRequests::CountAllRequestLimits => "rejections count (RPM and RPD)",
    }
}
