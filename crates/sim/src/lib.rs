//! ratelab's discrete-event simulator: replays a scenario in virtual time, every strategy
//! against every server variant on the identical workload.
//!
//! The server is the `model` crate's `ServerModel`, the mock server's own decision code (limits,
//! faults, spend, timeline, latency, header policy); the clients are `retry` strategies. One run is a single-threaded loop over a
//! closed set of events in a heap ordered by (virtual time, sequence); randomness comes only
//! from ChaCha streams derived from the seed per client and purpose, and state is kept in
//! vectors and ordered maps, so the same scenario and seed give the same result bit for bit.
//! Nothing here reads a clock, sleeps, spawns or does I/O.
//!
//! ```
//! let text = r#"
//! name = "doc"
//! duration = "1m"
//! [server]
//! model = "gpt-4o-mini"
//! tier = "tier-1"
//! [[clients]]
//! name = "app"
//! arrival = { kind = "constant", rpm = 1200 }
//! prompt_tokens = { kind = "fixed", value = 100 }
//! completion_tokens = { kind = "fixed", value = 20 }
//! [[strategies]]
//! kind = "none"
//! [[strategies]]
//! kind = "openai-python@2.52"
//! "#;
//! let scenario = scenario::parse_scenario(text, "doc.toml", &mut |path| std::fs::read_to_string(path))
//!     .unwrap();
//! let report = sim::simulate(&scenario, &mut |_attempt| {}).unwrap();
//! assert_eq!(report.runs.len(), 2);
//! // 1,200 requests a minute against 500 RPM: a full bucket of 500 plus a minute's refill
//! // cannot take them all, and without retries every 429 is a lost request.
//! let without_retries = &report.runs[0].totals;
//! assert_eq!(without_retries.requests, 1200);
//! assert!(without_retries.rate_limited > 0);
//! assert_eq!(without_retries.gave_up, without_retries.rate_limited);
//! assert_eq!(without_retries.succeeded + without_retries.gave_up, 1200);
//! ```

mod engine;
mod queue;
mod server;

pub use server::{AttemptServer, Identity, ModelServer, Response, rate_limit_view};

use results::{AttemptRecord, REPORT_FORMAT_VERSION, RunReport, RunResult, ScenarioSummary};
use retry::{Registry, RetryClient, SpecError};
use scenario::Scenario;

use crate::engine::{Completed, Run, SpendNearCap};

/// Why a simulation could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A strategy spec is not valid (only possible for specs that bypassed validation, e.g. a
    /// scenario built in code).
    #[error("strategy {spec}: {source}")]
    Strategy {
        /// The spec in its command-line form.
        spec: String,
        /// What the registry said.
        source: SpecError,
    },
    /// A server variant's config cannot be built into a model (only possible for a scenario
    /// that bypassed validation, e.g. one built in code).
    #[error("server variant {variant}: {source}")]
    Server {
        /// The variant's label.
        variant: String,
        /// What the server model's config got wrong (boxed: it is large, and errors are rare).
        source: Box<model::ModelError>,
    },
    /// The run index names no (variant, strategy) pair.
    #[error("run {index} does not exist (the scenario has {count} runs: variants x strategies)")]
    NoSuchRun {
        /// The index asked for.
        index: usize,
        /// How many runs there are.
        count: usize,
    },
}

/// How many runs a scenario has: server variants times strategies.
pub fn run_count(scenario: &Scenario) -> usize {
    scenario.server.variants.len() * scenario.strategies.len()
}

/// Simulates every (server variant, strategy) pair, variants outermost, and gathers the report.
/// Each attempt is passed to `trace` as it happens (to write JSONL, or `|_| {}` to skip).
pub fn simulate(
    scenario: &Scenario,
    trace: &mut dyn FnMut(&AttemptRecord),
) -> Result<RunReport, SimError> {
    let runs = (0..run_count(scenario))
        .map(|index| simulate_run(scenario, index, trace))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunReport {
        format_version: REPORT_FORMAT_VERSION,
        scenario: ScenarioSummary::of(scenario),
        runs,
        tested: None,
    })
}

/// Knobs of a run that do not change its results, only how they are computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimOptions {
    /// The reference path: send every strategy every header the scenario's policy allows,
    /// formatted as text as ratelab's server sends them and parsed back as a live client reads
    /// them, instead of the typed view built directly ([`rate_limit_view`]) and left out for
    /// strategies that do not read it ([`retry::Strategy::reads_rate_limit_headers`]). Tests
    /// use it to check that the fast path gives the same results.
    pub headers_as_text: bool,
    /// Schedule every success's completion as an event, even in an untraced run where
    /// recording it at admission is exact (see [`simulate_run_untraced`]). Tests and the
    /// benchmark use it to compare the two paths.
    pub general_path: bool,
}

/// Simulates run `index` alone: variant `index / strategies`, strategy `index % strategies`.
/// The workload is regenerated from the seed, identical for every run.
pub fn simulate_run(
    scenario: &Scenario,
    index: usize,
    trace: &mut dyn FnMut(&AttemptRecord),
) -> Result<RunResult, SimError> {
    simulate_run_with(scenario, index, SimOptions::default(), Some(trace))
}

/// [`simulate_run`] with no trace: the same result, byte for byte, sooner. Where no one can
/// observe a success between its admission and its completion (an open-loop client whose
/// strategy ignores successes, spend clear of every cap), the completion is recorded at
/// admission instead of being scheduled as an event. The trace would list such a success
/// before attempts that end earlier, so a traced run always schedules every completion.
pub fn simulate_run_untraced(scenario: &Scenario, index: usize) -> Result<RunResult, SimError> {
    simulate_run_with(scenario, index, SimOptions::default(), None)
}

/// [`simulate_run`] with explicit [`SimOptions`], traced or not.
pub fn simulate_run_with(
    scenario: &Scenario,
    index: usize,
    options: SimOptions,
    trace: Option<&mut dyn FnMut(&AttemptRecord)>,
) -> Result<RunResult, SimError> {
    run_model(scenario, index, options, trace).map(|(result, _)| result)
}

/// How an untraced run went about merging completions (see [`simulate_run_untraced`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merging {
    /// Successes completed at admission in the result's run.
    pub merged: u64,
    /// Whether a first run that merged was thrown away, spend having come near a cap, and the
    /// result is the general path's.
    pub restarted: bool,
}

/// [`simulate_run_untraced`] on `options`' path, with how it merged completions: tests and
/// benchmarks show both paths agree, and that the shortcut ran.
pub fn simulate_run_merging(
    scenario: &Scenario,
    index: usize,
    options: SimOptions,
) -> Result<(RunResult, Merging), SimError> {
    run_model(scenario, index, options, None)
}

/// Run `index` on the simulator's own server. An untraced run merges what it may (see
/// [`simulate_run_untraced`]); when spend comes near a cap after it booked a success's spend
/// early, it starts again without merging.
fn run_model(
    scenario: &Scenario,
    index: usize,
    options: SimOptions,
    trace: Option<&mut dyn FnMut(&AttemptRecord)>,
) -> Result<(RunResult, Merging), SimError> {
    let merge = trace.is_none() && !options.general_path;
    let mut untraced = |_: &AttemptRecord| {};
    let trace = trace.unwrap_or(&mut untraced);
    let build = || -> Result<(ModelServer, Vec<RetryClient>), SimError> {
        let clients = strategies_of(scenario, index)?;
        let reads_headers = clients
            .iter()
            .any(|client| client.reads_rate_limit_headers());
        let server = model_server(
            scenario,
            index,
            options.headers_as_text || reads_headers,
            options,
        )?;
        Ok((server, clients))
    };
    if merge {
        let (server, clients) = build()?;
        if let Ok(Completed { metrics, merged }) =
            Run::new(scenario, index as u32, server, clients, trace, true).run()
        {
            let merging = Merging {
                merged,
                restarted: false,
            };
            return Ok((finish_run(scenario, index, metrics), merging));
        }
    }
    let (server, clients) = build()?;
    let metrics = complete(Run::new(scenario, index as u32, server, clients, trace, false).run());
    let merging = Merging {
        merged: 0,
        restarted: merge,
    };
    Ok((finish_run(scenario, index, metrics), merging))
}

/// Run `index` with `server` answering its attempts instead of the simulator's own
/// [`ModelServer`]: the same event loop, workload and strategies. The conformance test puts
/// the real mock server here.
pub fn simulate_run_on<S: AttemptServer>(
    scenario: &Scenario,
    index: usize,
    server: S,
    trace: &mut dyn FnMut(&AttemptRecord),
) -> Result<RunResult, SimError> {
    let clients = strategies_of(scenario, index)?;
    let metrics = complete(Run::new(scenario, index as u32, server, clients, trace, false).run());
    Ok(finish_run(scenario, index, metrics))
}

/// The metrics of a run that merged nothing, which always completes.
fn complete(ended: Result<Completed, SpendNearCap>) -> results::RunMetrics {
    match ended {
        Ok(completed) => completed.metrics,
        Err(SpendNearCap) => unreachable!("a run that merges nothing never stops early"),
    }
}

/// The simulator's server for run `index`: the server model of its variant. `report` asks for
/// the `x-ratelimit-*` statuses (they cost time; the simulator asks only when a strategy reads
/// them).
pub fn model_server(
    scenario: &Scenario,
    index: usize,
    report: bool,
    options: SimOptions,
) -> Result<ModelServer, SimError> {
    let count = run_count(scenario);
    if index >= count {
        return Err(SimError::NoSuchRun { index, count });
    }
    let variant = &scenario.server.variants[index / scenario.strategies.len()];
    let model = model::ServerModel::new(&variant.config).map_err(|source| SimError::Server {
        variant: variant.label.clone(),
        source: Box::new(source),
    })?;
    Ok(ModelServer::new(
        model,
        scenario.server.model.clone(),
        report,
        options.headers_as_text,
        variant.limits.token_charge,
    ))
}

/// One strategy object per client instance for run `index`.
fn strategies_of(scenario: &Scenario, index: usize) -> Result<Vec<RetryClient>, SimError> {
    let count = run_count(scenario);
    if index >= count {
        return Err(SimError::NoSuchRun { index, count });
    }
    let spec = &scenario.strategies[index % scenario.strategies.len()].spec;
    let registry = Registry::with_builtins();
    (0..scenario.instance_count())
        .map(|_| {
            registry
                .build(spec)
                .map(RetryClient::new)
                .map_err(|source| SimError::Strategy {
                    spec: spec.to_string(),
                    source,
                })
        })
        .collect()
}

/// The result of run `index` from its metrics.
fn finish_run(scenario: &Scenario, index: usize, metrics: results::RunMetrics) -> RunResult {
    let strategy_count = scenario.strategies.len();
    let variant = &scenario.server.variants[index / strategy_count];
    let strategy = &scenario.strategies[index % strategy_count];
    let mut result = metrics.finish(variant.label.clone(), strategy.label.clone());
    result.spec = strategy.spec.to_string();
    result
}
