//! Validation of client groups: drivers (closed loop or arrival process), recorded traces and
//! request-size distributions.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::{DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT, Validator};
use crate::error::ScenarioError;
use crate::file::{ArrivalFile, ClientGroupFile, SizeFile};
use crate::model::{ArrivalProcess, ClientGroup, Driver, RequestShape, SizeDistribution};
use crate::replay::{RecordedTrace, TraceFormat};

/// Instances per group: each holds its own streams and strategy (a few kilobytes).
const MAX_INSTANCES: u32 = 1_000_000;
/// Requests per minute per instance: far above any real API, low enough that a typo cannot ask
/// for more arrivals than a run could ever process.
const MAX_RPM: f64 = 10_000_000.0;
/// Closed-loop workers per group, instances included.
const MAX_WORKERS: u64 = 10_000_000;
/// The latest an instance may start, far past any scenario, only to keep the arithmetic in range.
const MAX_START_SECONDS: u64 = 100 * 365 * 86_400;

impl Validator<'_, '_> {
    pub(super) fn client_group(
        &mut self,
        group: ClientGroupFile,
        span: Range<usize>,
        server: &crate::model::ServerSpec,
    ) -> Result<ClientGroup, ScenarioError> {
        let name = group.name;
        if name.is_empty() {
            return self.fail(span, "client group name is empty (give each group a name)");
        }
        if !(1..=MAX_INSTANCES).contains(&group.instances) {
            return self.fail(
                span,
                format!(
                    "client group \"{name}\" has instances = {} (expected 1 to {MAX_INSTANCES})",
                    group.instances
                ),
            );
        }
        let last_start = group
            .stagger
            .0
            .checked_mul(group.instances - 1)
            .and_then(|offset| offset.checked_add(group.start.0));
        if last_start.is_none_or(|last| last > Duration::from_secs(MAX_START_SECONDS)) {
            return self.fail(
                span,
                format!(
                    "client group \"{name}\": start + stagger x (instances - 1) is beyond 100 years (expected instance starts within the scenario)"
                ),
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
                let workers = u64::from(closed.concurrency) * u64::from(group.instances);
                if closed.concurrency == 0 || workers > MAX_WORKERS {
                    return self.fail(
                        span,
                        format!(
                            "client group \"{name}\" has closed_loop.concurrency = {} (expected 1 or more workers, at most {MAX_WORKERS} across its instances)",
                            closed.concurrency
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
        let deadline = group.deadline.map(|deadline| deadline.0);
        if deadline.is_some_and(|deadline| deadline.is_zero()) {
            return self.fail(
                span,
                format!(
                    "client group \"{name}\" has deadline = \"0s\" (expected a positive duration, e.g. \"2m\", or no deadline)"
                ),
            );
        }
        let key = match (&group.key, server.keys.is_empty()) {
            (None, true) => None,
            (None, false) => {
                return self.fail(
                    span,
                    format!(
                        "client group \"{name}\" has no key, but the server declares organizations (add key = one of its keys)"
                    ),
                );
            }
            (Some(_), true) => {
                return self.fail(
                    span,
                    format!(
                        "client group \"{name}\" names a key, but the server declares no organizations (declare it under [[server.organizations.projects]] keys, or remove it)"
                    ),
                );
            }
            (Some(key), false) => match server.keys.get(key) {
                Some((organization, project)) => Some(crate::model::GroupKey {
                    key: key.clone(),
                    organization: organization.clone(),
                    project: project.clone(),
                }),
                None => {
                    return self.fail(
                        span,
                        format!(
                            "client group \"{name}\" sends key {}, which no project of the server declares",
                            model::redact(key)
                        ),
                    );
                }
            },
        };
        Ok(ClientGroup {
            name,
            key,
            instances: group.instances,
            start: group.start.0,
            stagger: group.stagger.0,
            driver,
            shape: RequestShape {
                prompt_tokens,
                completion_tokens,
                max_tokens,
                timeout,
                deadline,
            },
        })
    }

    fn arrival(
        &mut self,
        arrival: ArrivalFile,
        span: Range<usize>,
    ) -> Result<ArrivalProcess, ScenarioError> {
        let rate = |value: f64, field: &str, allow_zero: bool| -> Result<f64, ScenarioError> {
            let ok = value.is_finite()
                && value <= MAX_RPM
                && (value > 0.0 || (allow_zero && value == 0.0));
            if ok {
                Ok(value)
            } else {
                let expected = if allow_zero { "from 0" } else { "above 0 and" };
                self.fail(
                    span.clone(),
                    format!("arrival {field} {value} is not allowed (expected requests per minute {expected} up to {MAX_RPM})"),
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
                let text = (self.read_file)(&full_path).map_err(|cause| {
                    ScenarioError::ReadReferencedFile {
                        location: self.source.location(span.start),
                        path: full_path.clone(),
                        cause,
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
