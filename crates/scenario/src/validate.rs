//! Validation: parses scenario TOML and turns the file types into checked domain types, with
//! `file:line:col` errors that say what is wrong and what is allowed.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use crate::error::{ScenarioError, SourceText};
use crate::file::{
    ArrivalFile, ClientGroupFile, FaultFile, LatencyFile, ScenarioFile, ServerFile, SizeFile,
};
use crate::model::{
    ArrivalProcess, ClientGroup, Driver, Fault, HeaderPolicy, LatencyModel, RequestShape, Scenario,
    ServerSpec, ServerVariant, SizeDistribution,
};
use crate::replay::{RecordedTrace, TraceFormat};

/// Reads a file a scenario refers to (a recorded trace); the CLI passes
/// `std::fs::read_to_string`, tests may serve files from memory.
pub type ReadFile<'a> = &'a mut dyn FnMut(&Path) -> std::io::Result<String>;

/// The strategy run when a scenario names none: what most applications run without knowing.
pub const DEFAULT_STRATEGY: &str = "openai-python";
const DEFAULT_DRAIN: Duration = Duration::from_secs(600);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_MAX_TOKENS: u32 = 4_096;
const TARGET_BIN_COUNT: u32 = 200;

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
        let bin_width = match file.metrics.bin {
            Some(bin) if bin.0.is_zero() => {
                return self.fail(0..0, "metrics.bin must be longer than 0s");
            }
            Some(bin) => bin.0,
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
            duration,
            drain,
            server,
            groups,
            strategies,
            bin_width,
        })
    }

    fn strategies(
        &self,
        specs: Vec<Spanned<retry::StrategySpec>>,
    ) -> Result<Vec<retry::StrategySpec>, ScenarioError> {
        if specs.is_empty() {
            return Ok(vec![retry::StrategySpec::named(DEFAULT_STRATEGY)]);
        }
        let registry = retry::Registry::with_builtins();
        let mut labels = BTreeSet::new();
        let mut checked = Vec::with_capacity(specs.len());
        for spec in specs {
            let span = spec.span();
            let spec = spec.into_inner();
            if let Err(error) = registry.build(&spec) {
                return self.fail(span, error.to_string());
            }
            if !labels.insert(spec.to_string()) {
                return self.fail(
                    span,
                    format!("strategy {spec} is listed twice (compare each strategy once)"),
                );
            }
            checked.push(spec);
        }
        Ok(checked)
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
        Ok(ServerVariant { label, limits })
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
        // Virtual time must advance between an attempt and its outcome: with an instant server,
        // a strategy that retries without delay would loop forever at one instant.
        if latency.base.0.is_zero() || latency.reject.0.is_zero() {
            return self.fail(
                span,
                "server.latency.base and server.latency.reject must be longer than 0s (use e.g. \"1ms\" for a near-instant server)",
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
        if !(500..=599).contains(&fault.status) {
            return self.fail(
                span,
                format!(
                    "fault status {} is not allowed (expected a server error from 500 to 599, e.g. 503)",
                    fault.status
                ),
            );
        }
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
            probability: fault.probability,
        })
    }

    fn client_group(
        &mut self,
        group: ClientGroupFile,
        span: Range<usize>,
    ) -> Result<ClientGroup, ScenarioError> {
        let name = group.name;
        if name.is_empty() {
            return self.fail(span, "client group name is empty (give each group a name)");
        }
        if group.instances == 0 {
            return self.fail(
                span,
                format!("client group \"{name}\" has instances = 0 (expected 1 or more)"),
            );
        }
        let driver = match (group.closed_loop, group.arrival) {
            (Some(_), Some(arrival)) => {
                return self.fail(
                    arrival.span(),
                    format!(
                        "client group \"{name}\" has both closed_loop and arrival (choose one: closed-loop workers or open-loop arrivals)"
                    ),
                );
            }
            (None, None) => {
                return self.fail(
                    span,
                    format!(
                        "client group \"{name}\" has neither closed_loop nor arrival (add closed_loop = {{ concurrency = N }} or arrival = {{ kind = \"poisson\", rpm = N }})"
                    ),
                );
            }
            (Some(closed), None) => {
                if closed.concurrency == 0 {
                    return self.fail(
                        span,
                        format!(
                            "client group \"{name}\" has closed_loop.concurrency = 0 (expected 1 or more workers)"
                        ),
                    );
                }
                Driver::ClosedLoop {
                    concurrency: closed.concurrency,
                    think_time: closed.think_time.0,
                    requests_per_worker: closed.requests_per_worker,
                }
            }
            (None, Some(arrival)) => {
                let arrival_span = arrival.span();
                Driver::OpenLoop(self.arrival(arrival.into_inner(), arrival_span)?)
            }
        };
        let trace_has_tokens = match &driver {
            Driver::OpenLoop(ArrivalProcess::Replay { trace, .. }) => trace.has_all_token_counts(),
            _ => false,
        };
        let prompt_tokens = self.size(
            group.prompt_tokens,
            "prompt_tokens",
            &name,
            &span,
            trace_has_tokens,
            1,
        )?;
        let completion_tokens = self.size(
            group.completion_tokens,
            "completion_tokens",
            &name,
            &span,
            trace_has_tokens,
            0,
        )?;
        let max_tokens = match group.max_tokens {
            Some(0) => {
                return self.fail(
                    span,
                    format!("client group \"{name}\" has max_tokens = 0 (expected 1 or more)"),
                );
            }
            Some(max_tokens) => max_tokens,
            None => {
                let bound = match &driver {
                    // A replayed request's completion is its own max_tokens bound: the largest
                    // recorded completion stands in for what the application sent.
                    Driver::OpenLoop(ArrivalProcess::Replay { trace, .. }) if trace_has_tokens => {
                        trace
                            .arrivals
                            .iter()
                            .filter_map(|arrival| arrival.completion_tokens)
                            .max()
                            .unwrap_or(0)
                    }
                    _ => completion_tokens.upper_bound(),
                };
                match bound {
                    0 | u32::MAX => DEFAULT_MAX_TOKENS,
                    bound => bound,
                }
            }
        };
        let timeout = group.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0);
        if timeout.is_zero() {
            return self.fail(
                span,
                format!(
                    "client group \"{name}\" has timeout = \"0s\" (expected a positive duration)"
                ),
            );
        }
        Ok(ClientGroup {
            name,
            instances: group.instances,
            start: group.start.0,
            stagger: group.stagger.0,
            driver,
            shape: RequestShape {
                prompt_tokens,
                completion_tokens,
                max_tokens,
                timeout,
            },
        })
    }

    fn arrival(
        &mut self,
        arrival: ArrivalFile,
        span: Range<usize>,
    ) -> Result<ArrivalProcess, ScenarioError> {
        let rate = |value: f64, field: &str, allow_zero: bool| -> Result<f64, ScenarioError> {
            let ok = value.is_finite() && (value > 0.0 || (allow_zero && value == 0.0));
            if ok {
                Ok(value)
            } else {
                let expected = if allow_zero {
                    "0 or more"
                } else {
                    "more than 0"
                };
                self.fail(
                    span.clone(),
                    format!("arrival {field} {value} is not allowed (expected requests per minute, {expected})"),
                )
            }
        };
        let positive = |value: Duration, field: &str| -> Result<Duration, ScenarioError> {
            if value.is_zero() {
                self.fail(
                    span.clone(),
                    format!("arrival {field} must be longer than 0s"),
                )
            } else {
                Ok(value)
            }
        };
        Ok(match arrival {
            ArrivalFile::Constant { rpm } => ArrivalProcess::Constant {
                rpm: rate(rpm, "rpm", false)?,
            },
            ArrivalFile::Poisson { rpm } => ArrivalProcess::Poisson {
                rpm: rate(rpm, "rpm", false)?,
            },
            ArrivalFile::Gamma { rpm, burstiness } => {
                if !(burstiness.is_finite() && burstiness > 0.0) {
                    return self.fail(
                        span,
                        format!("arrival burstiness {burstiness} is not allowed (expected a gamma shape above 0: 1 is Poisson, below 1 burstier)"),
                    );
                }
                ArrivalProcess::Gamma {
                    rpm: rate(rpm, "rpm", false)?,
                    burstiness,
                }
            }
            ArrivalFile::Burst { count, at, every } => {
                if count == 0 {
                    return self.fail(
                        span,
                        "arrival count = 0 (expected 1 or more requests per burst)",
                    );
                }
                ArrivalProcess::Burst {
                    count,
                    at: at.0,
                    every: every.map(|every| positive(every.0, "every")).transpose()?,
                }
            }
            ArrivalFile::Spike {
                base_rpm,
                peak_rpm,
                start,
                length,
            } => ArrivalProcess::Spike {
                base_rpm: rate(base_rpm, "base_rpm", true)?,
                peak_rpm: rate(peak_rpm, "peak_rpm", false)?,
                start: start.0,
                length: positive(length.0, "length")?,
            },
            ArrivalFile::Ramp {
                from_rpm,
                to_rpm,
                over,
            } => {
                let from_rpm = rate(from_rpm, "from_rpm", true)?;
                let to_rpm = rate(to_rpm, "to_rpm", true)?;
                if from_rpm == 0.0 && to_rpm == 0.0 {
                    return self.fail(
                        span,
                        "arrival ramp from 0 to 0 sends nothing (give to_rpm a positive rate)",
                    );
                }
                ArrivalProcess::Ramp {
                    from_rpm,
                    to_rpm,
                    over: positive(over.0, "over")?,
                }
            }
            ArrivalFile::Diurnal {
                mean_rpm,
                amplitude_rpm,
                period,
                phase,
            } => {
                let mean_rpm = rate(mean_rpm, "mean_rpm", false)?;
                let amplitude_rpm = rate(amplitude_rpm, "amplitude_rpm", true)?;
                if amplitude_rpm > mean_rpm {
                    return self.fail(
                        span,
                        format!("arrival amplitude_rpm {amplitude_rpm} exceeds mean_rpm {mean_rpm} (the rate would go below 0; expected amplitude_rpm <= mean_rpm)"),
                    );
                }
                ArrivalProcess::Diurnal {
                    mean_rpm,
                    amplitude_rpm,
                    period: positive(period.0, "period")?,
                    phase: phase.0,
                }
            }
            ArrivalFile::Replay { path, time_scale } => {
                if !(time_scale.is_finite() && time_scale > 0.0) {
                    return self.fail(
                        span,
                        format!("arrival time_scale {time_scale} is not allowed (expected a factor above 0, e.g. 0.5 to replay twice as fast)"),
                    );
                }
                let Some(format) = TraceFormat::from_path(&path) else {
                    return self.fail(
                        span,
                        format!(
                            "trace \"{path}\" has an unknown extension (expected .jsonl or .csv)"
                        ),
                    );
                };
                let full_path = self.base_dir.join(&path);
                let text = (self.read_file)(&full_path).map_err(|source| {
                    ScenarioError::ReadReferencedFile {
                        location: self.source.location(span.start),
                        path: full_path.clone(),
                        source,
                    }
                })?;
                let trace = RecordedTrace::parse(&text, format, &full_path.display().to_string())?;
                ArrivalProcess::Replay {
                    trace: Arc::new(trace),
                    time_scale,
                }
            }
        })
    }

    fn size(
        &self,
        size: Option<Spanned<SizeFile>>,
        field: &str,
        group: &str,
        group_span: &Range<usize>,
        trace_has_tokens: bool,
        default_min: u32,
    ) -> Result<SizeDistribution, ScenarioError> {
        let Some(size) = size else {
            if trace_has_tokens {
                // Never drawn: every replayed request carries its own counts.
                return Ok(SizeDistribution::Fixed(0));
            }
            return self.fail(
                group_span.clone(),
                format!(
                    "client group \"{group}\" lacks {field} (add e.g. {field} = {{ kind = \"fixed\", value = 100 }})"
                ),
            );
        };
        let span = size.span();
        let bounds = |min: Option<u32>, max: Option<u32>| -> Result<(u32, u32), ScenarioError> {
            let min = min.unwrap_or(default_min);
            let max = max.unwrap_or(u32::MAX);
            if min > max {
                self.fail(
                    span.clone(),
                    format!("{field}: min {min} is above max {max} (expected min <= max)"),
                )
            } else {
                Ok((min, max))
            }
        };
        let spread = |value: f64, what: &str| -> Result<f64, ScenarioError> {
            if value.is_finite() && value >= 0.0 {
                Ok(value)
            } else {
                self.fail(
                    span.clone(),
                    format!("{field}: {what} {value} is not allowed (expected 0 or more)"),
                )
            }
        };
        Ok(match size.into_inner() {
            SizeFile::Fixed { value } => SizeDistribution::Fixed(value),
            SizeFile::Uniform { min, max } => {
                let (min, max) = bounds(Some(min), Some(max))?;
                SizeDistribution::Uniform { min, max }
            }
            SizeFile::Normal {
                mean,
                std_dev,
                min,
                max,
            } => {
                let (min, max) = bounds(min, max)?;
                SizeDistribution::Normal {
                    mean: spread(mean, "mean")?,
                    std_dev: spread(std_dev, "std_dev")?,
                    min,
                    max,
                }
            }
            SizeFile::Lognormal {
                median,
                sigma,
                min,
                max,
            } => {
                let (min, max) = bounds(min, max)?;
                if !(median.is_finite() && median > 0.0) {
                    return self.fail(
                        span,
                        format!("{field}: median {median} is not allowed (expected more than 0)"),
                    );
                }
                SizeDistribution::Lognormal {
                    median,
                    sigma: spread(sigma, "sigma")?,
                    min,
                    max,
                }
            }
            SizeFile::Empirical { values, weights } => {
                if values.is_empty() {
                    return self.fail(
                        span,
                        format!("{field}: values is empty (list at least one count)"),
                    );
                }
                let weights = weights.unwrap_or_else(|| vec![1.0; values.len()]);
                if weights.len() != values.len() {
                    return self.fail(
                        span,
                        format!(
                            "{field}: {} weights for {} values (expected one weight per value)",
                            weights.len(),
                            values.len()
                        ),
                    );
                }
                let total: f64 = weights.iter().sum();
                let weights_ok = weights
                    .iter()
                    .all(|weight| weight.is_finite() && *weight >= 0.0);
                if !(weights_ok && total.is_finite() && total > 0.0) {
                    return self.fail(
                        span,
                        format!("{field}: weights must be 0 or more with a positive sum"),
                    );
                }
                let mut running = 0.0;
                let cumulative = weights
                    .iter()
                    .map(|weight| {
                        running += weight / total;
                        running
                    })
                    .collect();
                SizeDistribution::Empirical { values, cumulative }
            }
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
