//! Validation: parses scenario TOML and turns the file types into checked domain types, with
//! `file:line:col` errors that say what is wrong and what is allowed.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::error::{ScenarioError, SourceText};
use crate::file::ScenarioFile;
use crate::model::{NamedStrategy, Scenario, ServerSpec, ServerVariant};

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
    parse_scenario_with_catalog(text, file_name, read_file, None)
}

/// [`parse_scenario`] over a user's catalog file (`--catalog FILE`, read by
/// `model::read_catalog_file`): its tiers and models are known to the scenario as if built in,
/// and the scenario's own `[server.catalog]` is laid over it
/// (`model::ServerConfig::overlay_catalog`).
///
/// ```
/// let catalog = model::read_catalog_file(
///     "[tiers.enterprise]\nqualification = \"contract\"\nmonthly_spend_cap_usd = 1000000\n\
///      [models.gpt-4o-mini.tiers]\nenterprise = { rpm = 50000, tpm = 500000000 }\n",
///     "mine.toml",
/// )
/// .unwrap();
/// let text = "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o-mini\"\ntier = \"enterprise\"\n[[clients]]\nname = \"a\"\narrival = { kind = \"poisson\", rpm = 1 }\nprompt_tokens = { kind = \"fixed\", value = 1 }\ncompletion_tokens = { kind = \"fixed\", value = 1 }\n";
/// let read = &mut |path: &std::path::Path| std::fs::read_to_string(path);
/// let scenario = scenario::parse_scenario_with_catalog(text, "x.toml", read, Some(&catalog)).unwrap();
/// assert_eq!(scenario.server.variants[0].limits.rpm, Some(50_000));
/// assert!(scenario::parse_scenario(text, "x.toml", read).is_err(), "unknown without the file");
/// ```
pub fn parse_scenario_with_catalog(
    text: &str,
    file_name: &str,
    read_file: ReadFile<'_>,
    catalog: Option<&toml::Table>,
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
        catalog,
    }
    .scenario(file)
}

struct Validator<'a, 'r> {
    source: SourceText<'a>,
    base_dir: PathBuf,
    read_file: ReadFile<'r>,
    /// A user's catalog file, under the scenario's own `[server.catalog]`.
    catalog: Option<&'r toml::Table>,
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
            let group = self.client_group(group.into_inner(), span.clone(), &server)?;
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
        let (expect, plan_gate) =
            crate::expect::validate(&self.source, file.expect, &labels, has_batch)?;
        let plan_gate = match plan_gate {
            Some(crate::expect::PlanGateAt { gate, tier_span }) => {
                // The gated tier must be one the catalog knows and that offers the model, as
                // a tier to compare is.
                server_variant(&server.config, &server.model, Some(&gate.tier), None).map_err(
                    |message| {
                        // `tier: unknown tier ...` or `limits: unknown model ...`: the key is
                        // the server's, the place is the gate's.
                        let reason = message
                            .split_once(": ")
                            .map_or(message.as_str(), |(_, reason)| reason);
                        self.source.invalid(
                            tier_span,
                            format!("expect.plan.tier = \"{}\": {reason}", gate.tier),
                        )
                    },
                )?;
                Some(gate)
            }
            None => None,
        };
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
            plan_gate,
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

    /// The server section: the server model's config, checked by building the model for every
    /// variant (tiers x `compare_rejections` rules), each errors at the `[server]` table.
    fn server(
        &mut self,
        server: Spanned<model::ServerConfig>,
    ) -> Result<ServerSpec, ScenarioError> {
        let span = server.span();
        let mut config = server.into_inner();
        if let Some(catalog) = self.catalog {
            config.overlay_catalog(catalog);
        }
        let Some(model_name) = config.model.clone() else {
            return self.fail(
                span,
                "server.model is missing (name the model the clients call, e.g. model = \"gpt-4o-mini\")",
            );
        };
        if config.seed.is_some() {
            return self.fail(
                span,
                "server.seed: a scenario's server draws from the scenario's own `seed`; set that instead",
            );
        }
        if !config.compare_tiers.is_empty() && config.tier.is_none() {
            return self.fail(
                span,
                "server.compare_tiers needs server.tier: the comparison runs the same workload on each tier",
            );
        }
        let invalid = |message: String| {
            let at = self.server_key_offset(&message).unwrap_or(span.start);
            self.source.invalid(at..at, format!("server.{message}"))
        };
        config.validate("server").map_err(|error| match error {
            model::ConfigError::Parse { message, .. }
            | model::ConfigError::Invalid { message, .. } => invalid(message),
            other => invalid(other.to_string()),
        })?;
        let mut tiers: Vec<Option<String>> = vec![config.tier.clone()];
        for extra in &config.compare_tiers {
            if tiers.iter().any(|known| known.as_deref() == Some(extra)) {
                return Err(invalid(format!(
                    "compare_tiers: tier \"{extra}\" is listed twice (compare each tier once)"
                )));
            }
            tiers.push(Some(extra.clone()));
        }
        for (index, rule) in config.compare_rejections.iter().enumerate() {
            if config.compare_rejections[..index].contains(rule) {
                return Err(invalid(format!(
                    "compare_rejections: rejection rule \"{}\" is listed twice (compare each rule once)",
                    rejection_rule_name(*rule)
                )));
            }
        }
        if !config.compare_rejections.is_empty()
            && config
                .limits
                .as_ref()
                .is_some_and(|limits| limits.written.rejected_requests)
        {
            return Err(invalid(
                "limits.rejected_requests: compare_rejections sets the rule of each variant; remove one of the two"
                    .to_owned(),
            ));
        }
        let rules: Vec<Option<quota::RejectedRequests>> = if config.compare_rejections.is_empty() {
            vec![None]
        } else {
            config
                .compare_rejections
                .iter()
                .copied()
                .map(Some)
                .collect()
        };
        let mut variants = Vec::with_capacity(tiers.len() * rules.len());
        for tier in &tiers {
            for rule in &rules {
                variants.push(
                    server_variant(&config, &model_name, tier.as_deref(), *rule)
                        .map_err(&invalid)?,
                );
            }
        }
        // An admitted request must take time, or a closed-loop worker would send forever at one
        // instant. A rejection may be instant: every strategy caps its attempts, so a retry
        // loop at one instant ends.
        let latencies = std::iter::once(&config.latency).chain(
            config
                .timeline
                .iter()
                .filter_map(|entry| entry.latency.as_ref()),
        );
        for latency in latencies {
            if latency.ttft.0.is_zero() {
                return Err(invalid(
                    "latency.ttft must be longer than 0s in a scenario (use e.g. \"1ms\" for a near-instant server)"
                        .to_owned(),
                ));
            }
        }
        let keys = config
            .organizations
            .iter()
            .flat_map(|organization| {
                organization.projects.iter().flat_map(move |project| {
                    project.keys.iter().map(move |key| {
                        (key.clone(), (organization.id.clone(), project.id.clone()))
                    })
                })
            })
            .collect();
        Ok(ServerSpec {
            model: model_name,
            variants,
            config,
            keys,
        })
    }
}

/// One server variant of a scenario's `[server]` table: its config with `tier` (and, when given,
/// the rejection `rule`), labelled as reports name it (`tier-1`, `custom`, `tier-1, rejections
/// count`), with the limits of `model_name` at the start. The validator builds every variant of
/// `compare_tiers` x `compare_rejections` with it; `ratelab plan` builds the tiers it sweeps.
/// The error is the server table's message without its `server.` prefix (`limits: ...`).
///
/// ```
/// # let text = "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o\"\ntier = \"tier-1\"\n[[clients]]\nname = \"a\"\narrival = { kind = \"poisson\", rpm = 1 }\nprompt_tokens = { kind = \"fixed\", value = 1 }\ncompletion_tokens = { kind = \"fixed\", value = 1 }\n";
/// # let scenario = scenario::parse_scenario(text, "x.toml", &mut |p| std::fs::read_to_string(p)).unwrap();
/// let variant = scenario::server_variant(&scenario.server.config, "gpt-4o", Some("tier-3"), None).unwrap();
/// assert_eq!((variant.label.as_str(), variant.limits.rpm), ("tier-3", Some(5_000)));
/// ```
pub fn server_variant(
    config: &model::ServerConfig,
    model_name: &str,
    tier: Option<&str>,
    rule: Option<quota::RejectedRequests>,
) -> Result<ServerVariant, String> {
    let mut variant_config = model::ServerConfig {
        tier: tier.map(str::to_owned),
        compare_tiers: Vec::new(),
        compare_rejections: Vec::new(),
        ..config.clone()
    };
    if let Some(rule) = rule {
        variant_config.limiter.rejected_requests = rule;
    }
    let tier_label = tier.unwrap_or("custom");
    let label = match rule {
        Some(rule) => format!("{tier_label}, {}", rejection_rule_label(rule)),
        None => tier_label.to_owned(),
    };
    let mut server_model =
        model::ServerModel::new(&variant_config).map_err(|error| error.to_string())?;
    let limits = server_model
        .limits_at(Duration::ZERO, model_name)
        .map_err(|message| format!("limits: {message}"))?;
    let unlimited = limits
        .compile()
        .map_err(|error| format!("limits: {error}"))?
        .is_unlimited();
    if unlimited {
        return Err(
            "limits: the server has no limits (give a tier, or set e.g. rpm and tpm in server.limits)"
                .to_owned(),
        );
    }
    Ok(ServerVariant {
        label,
        tier: tier.map(str::to_owned),
        limits,
        config: variant_config,
    })
}

impl Validator<'_, '_> {
    /// Where in the file the server key a model error names (`tier: ...`,
    /// `timeline[1].until: ...`) is written: the `n`th `[[server.key]]` header of an array of
    /// tables, else the `key =` line in the `[server]` table, else a `[server.key]` header.
    /// `None` when the key is not found as written (the caller falls back to the table).
    fn server_key_offset(&self, message: &str) -> Option<usize> {
        let path = message.split(':').next()?;
        let key_end = path.find(['[', '.']).unwrap_or(path.len());
        let key = &path[..key_end];
        if key.is_empty() {
            return None;
        }
        let index: usize = path[key_end..]
            .strip_prefix('[')
            .and_then(|rest| rest.split(']').next())
            .and_then(|number| number.parse().ok())
            .unwrap_or(0);
        let text = self.source.text;
        let mut offset = 0;
        let mut in_server = false;
        let mut seen = 0;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.starts_with('[') {
                let header = trimmed.split(']').next().unwrap_or("");
                let name = header.trim_start_matches('[').trim();
                in_server = name == "server";
                if name == format!("server.{key}") {
                    if trimmed.starts_with("[[") {
                        if seen == index {
                            return Some(offset + indent);
                        }
                        seen += 1;
                    } else {
                        return Some(offset + indent);
                    }
                }
            } else if in_server
                && trimmed.starts_with(key)
                && trimmed[key.len()..].trim_start().starts_with('=')
            {
                return Some(offset + indent);
            }
            offset += line.len();
        }
        None
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
