//! The scenario file as written: serde types that mirror the TOML, with unknown keys rejected.
//!
//! These types only describe syntax. [`crate::parse_scenario`] turns them into the domain types
//! ([`crate::Scenario`] and its parts), checking everything that spans more than one value.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use model::HumanDuration;

/// A scenario file: a situation to replay, the server it runs against, and who sends traffic.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Short name, used for the output directory (`reports/<name>/`): letters, digits, `-`, `_`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// One or two sentences saying what situation this models.
    #[serde(default)]
    pub description: String,
    /// Seed of every random draw; `ratelab run --seed` overrides it.
    #[serde(default)]
    pub seed: u64,
    /// How many seeds `ratelab run` runs every strategy on (1 to 1000, default 1): the first is
    /// `seed`, the others derive from it, and reports give each headline metric as a mean with
    /// a 95% confidence interval. `ratelab run --seeds` overrides it.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub seeds: Option<Spanned<u32>>,
    /// How long clients send new requests.
    #[schemars(with = "HumanDuration")]
    pub duration: Spanned<HumanDuration>,
    /// How long after `duration` the simulation lets retries finish; requests still open then
    /// count as unfinished. Default: 10m.
    #[serde(default)]
    pub drain: Option<HumanDuration>,
    /// The rate-limited API being called: the server model's config, the same schema as a
    /// `ratelab serve --config` file (less `seed`: the scenario's seed seeds its server).
    #[schemars(with = "model::ServerConfig")]
    pub server: Spanned<model::ServerConfig>,
    /// Groups of client instances sharing the server's key.
    #[serde(default)]
    #[schemars(with = "Vec<ClientGroupFile>")]
    pub clients: Vec<Spanned<ClientGroupFile>>,
    /// Retry strategies to compare, each a table whose `kind` names a registered strategy and
    /// whose other keys are its parameters, plus an optional short `label` for reports.
    /// Default: `openai-python` alone.
    #[serde(default)]
    #[schemars(schema_with = "strategies_schema")]
    pub strategies: Vec<Spanned<retry::StrategySpec>>,
    /// How metrics are binned over time.
    #[serde(default)]
    pub metrics: MetricsFile,
    /// Service-level thresholds for `ratelab check`: success rate, p99 latency,
    /// amplification, 429 share, gave-up count and early retries, for every strategy or one.
    #[serde(default)]
    #[schemars(with = "Option<crate::expect::ExpectFile>")]
    pub expect: Option<Spanned<crate::expect::ExpectFile>>,
}

fn strategies_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "description": "retry strategies: `ratelab strategies` lists the kinds and their parameters",
        "items": {
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {
                    "type": "string",
                    "description": "a registered strategy, optionally with @version, e.g. openai-python@2.52"
                },
                "label": {
                    "type": "string",
                    "description": "a short name for tables and answers; the full spec goes in a legend"
                }
            },
            "additionalProperties": true
        }
    })
}

/// A group of client instances that share the server's key (a fan-out).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientGroupFile {
    /// Name of the group, unique in the scenario; it also seeds the group's random streams, so
    /// adding a group never changes the draws of the others.
    pub name: String,
    /// How many instances (processes, pods, serverless functions) run this group. Default: 1.
    #[serde(default = "default_instances")]
    pub instances: u32,
    /// When the first instance starts. Default: 0s.
    #[serde(default)]
    pub start: HumanDuration,
    /// Delay between the starts of successive instances. Default: 0s (all at once).
    #[serde(default)]
    pub stagger: HumanDuration,
    /// Closed loop: each instance runs workers that send the next request when the previous one
    /// finished. Exactly one of `closed_loop` and `arrival` must be given.
    #[serde(default)]
    pub closed_loop: Option<ClosedLoopFile>,
    /// Open loop: each instance receives requests from this arrival process, whatever happens to
    /// earlier ones. Rates are per instance.
    #[serde(default)]
    #[schemars(with = "Option<ArrivalFile>")]
    pub arrival: Option<Spanned<ArrivalFile>>,
    /// Prompt tokens per request (ignored where a replayed trace gives them).
    #[serde(default)]
    #[schemars(with = "Option<SizeFile>")]
    pub prompt_tokens: Option<Spanned<SizeFile>>,
    /// Completion tokens the server generates per request, capped at `max_tokens`.
    #[serde(default)]
    #[schemars(with = "Option<SizeFile>")]
    pub completion_tokens: Option<Spanned<SizeFile>>,
    /// The `max_tokens` sent with each request; the limiter charges it up front. Default: the
    /// largest completion the distribution can produce, or 4096 where that is unbounded.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Client-side timeout per attempt. Default: 10m (the official Python SDK's).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// The longest a user waits for a request, end to end: from its arrival, local pacing,
    /// backoff waits and attempts included. A request not done by then gives up (reason
    /// `deadline`); an attempt in flight is abandoned as a timeout would. Default: none.
    #[serde(default)]
    pub deadline: Option<HumanDuration>,
    /// The API key the group sends, one of those declared under `[[server.organizations]]`:
    /// its organization's and project's limits apply. Required when the server declares
    /// organizations; without them every group is the one default organization.
    #[serde(default)]
    pub key: Option<String>,
}

fn default_instances() -> u32 {
    1
}

/// Closed-loop workers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoopFile {
    /// Workers per instance, each with at most one request in flight. Default: 1.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Pause between a request finishing and the worker's next one. Default: 0s.
    #[serde(default)]
    pub think_time: HumanDuration,
    /// Stop each worker after this many requests. Default: run until `duration`.
    #[serde(default)]
    pub requests_per_worker: Option<u64>,
}

fn default_concurrency() -> u32 {
    1
}

/// An open-loop arrival process. Times are relative to the instance's start; rates are requests
/// per minute per instance.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalFile {
    /// Evenly spaced requests.
    Constant {
        /// Requests per minute.
        rpm: f64,
    },
    /// Exponential inter-arrival times.
    Poisson {
        /// Mean requests per minute.
        rpm: f64,
    },
    /// Gamma inter-arrival times as vLLM's and AIPerf's benchmarks draw them: shape
    /// `burstiness`, mean `1/rate`. 1 is Poisson, below 1 burstier, above 1 more regular.
    Gamma {
        /// Mean requests per minute.
        rpm: f64,
        /// The gamma shape factor, greater than 0.
        burstiness: f64,
    },
    /// `count` requests at once at `at`, repeated every `every` if given.
    Burst {
        /// Requests per burst.
        count: u32,
        /// When the first burst fires. Default: 0s.
        #[serde(default)]
        at: HumanDuration,
        /// Period of repeated bursts. Default: a single burst.
        #[serde(default)]
        every: Option<HumanDuration>,
    },
    /// Poisson traffic at `base_rpm`, rising to `peak_rpm` from `start` for `length`.
    Spike {
        /// Rate outside the spike.
        base_rpm: f64,
        /// Rate inside the spike.
        peak_rpm: f64,
        /// When the spike starts.
        start: HumanDuration,
        /// How long it lasts.
        length: HumanDuration,
    },
    /// Poisson traffic whose rate moves linearly from `from_rpm` to `to_rpm` over `over`, then
    /// holds.
    Ramp {
        /// Rate at the start.
        from_rpm: f64,
        /// Rate at the end of the ramp and afterwards.
        to_rpm: f64,
        /// How long the ramp takes.
        over: HumanDuration,
    },
    /// Poisson traffic whose rate follows a sine wave: a day/night cycle when `period` is 24h.
    Diurnal {
        /// Mean rate.
        mean_rpm: f64,
        /// Swing above and below the mean; at most `mean_rpm`.
        amplitude_rpm: f64,
        /// Length of one cycle.
        period: HumanDuration,
        /// Where in the cycle the instance starts: 0 rising through the mean. Default: 0s.
        #[serde(default)]
        phase: HumanDuration,
    },
    /// Replays recorded request times (and token counts where present) from a JSONL or CSV
    /// file, relative to the scenario file.
    Replay {
        /// Path of the trace file; `.jsonl` or `.csv`.
        path: String,
        /// Multiplies every recorded time: 0.5 replays twice as fast. Default: 1.
        #[serde(default = "default_time_scale")]
        time_scale: f64,
    },
}

fn default_time_scale() -> f64 {
    1.0
}

/// A distribution of token counts. Draws are rounded and clamped to `[min, max]` where given.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SizeFile {
    /// Always the same count.
    Fixed {
        /// The count.
        value: u32,
    },
    /// Uniform integers in `[min, max]`.
    Uniform {
        /// Smallest count.
        min: u32,
        /// Largest count.
        max: u32,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean count.
        mean: f64,
        /// Standard deviation.
        std_dev: f64,
        /// Lower clamp. Default: 1.
        #[serde(default)]
        min: Option<u32>,
        /// Upper clamp. Default: none.
        #[serde(default)]
        max: Option<u32>,
    },
    /// Log-normal: `median * exp(sigma * N(0, 1))`, the long tail of real prompt lengths.
    Lognormal {
        /// Median count.
        median: f64,
        /// Spread of the underlying normal.
        sigma: f64,
        /// Lower clamp. Default: 1.
        #[serde(default)]
        min: Option<u32>,
        /// Upper clamp. Default: none.
        #[serde(default)]
        max: Option<u32>,
    },
    /// Counts drawn from a list, with optional weights (default: equal).
    Empirical {
        /// The counts.
        values: Vec<u32>,
        /// One non-negative weight per value.
        #[serde(default)]
        weights: Option<Vec<f64>>,
    },
}

/// How metrics are binned over time.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// Width of a time bin. Default: the duration plus drain divided into about 200 bins,
    /// rounded up to whole seconds.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub bin: Option<Spanned<HumanDuration>>,
}
