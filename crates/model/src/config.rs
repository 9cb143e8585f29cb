//! The one server configuration: a scenario's `[server]` table and the whole of a
//! `ratelab serve --config` file are this schema, parsed by this code, with one duration
//! grammar and errors at `file:line:col`.
//!
//! It says what the limits are (tier, `limits`, organizations and projects, the catalog and
//! prices), how the server answers (headers, latency, reply lengths, faults, the timeline) and,
//! for the mock server only, how it is reached (clock, admin token, body and connection caps).

use std::collections::BTreeMap;
use std::time::Duration;

use quota::LimitSet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::completion::LengthDistribution;
use crate::duration::HumanDuration;
use crate::faults::FaultConfig;
use crate::latency::LatencyConfig;
use crate::pricing::Price;
use crate::timeline::TimelineEntry;

/// The organization every key belongs to when the config declares no keys.
pub const DEFAULT_ORGANIZATION: &str = "org-ratelab";
/// The project of the default organization.
pub const DEFAULT_PROJECT: &str = "proj_ratelab";
/// The tier of organizations that name none, unless `tier` says otherwise.
pub const DEFAULT_TIER: &str = "tier-1";
/// OpenAI's documented request size ceiling is far larger; 8 MiB keeps a mock's memory bounded.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The server: a scenario's `[server]` table, or a serve config file. Parse a file with
/// [`ServerConfig::from_toml_str`] or build one in code from [`ServerConfig::default`].
///
/// ```
/// let config = model::ServerConfig::from_toml_str(
///     "model = \"gpt-4o-mini\"\ntier = \"tier-2\"\n[latency]\nttft = \"400ms\"\n",
///     "serve.toml",
/// )
/// .unwrap();
/// assert_eq!(config.default_tier(), Some("tier-2"));
/// let error = model::ServerConfig::from_toml_str("[latency]\nttft_ms = 400\n", "serve.toml");
/// assert!(error.unwrap_err().to_string().starts_with("serve.toml:2:1: unknown field `ttft_ms`"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The model a scenario's clients call, whose `limits` these are. Required in a scenario;
    /// optional for `ratelab serve`, which serves every model of the catalog.
    pub model: Option<String>,
    /// The tier of organizations that name none: `free`, `tier-1` ... `tier-5`, or a tier added
    /// under `[catalog]`. Default: `tier-1`, unless `limits` is given without a tier, which
    /// then serves `model` with exactly those limits (labelled `custom`).
    pub tier: Option<String>,
    /// Limits of `model` (`rpm`, `rpd`, `tpm`, `tpd`, `ipm`) and limiter options
    /// (`algorithm`, `quantum_ms`, `rejected_requests`, `token_charge`) for organizations that
    /// write none of their own: each figure given replaces the tier's, the others stay.
    #[schemars(schema_with = "crate::config::limit_set_schema")]
    pub limits: Option<ConfiguredLimits>,
    /// More tiers to run the same workload against, side by side: each is a server variant
    /// identical to this one but for its tier. `ratelab serve` serves one (`--variant`).
    pub compare_tiers: Vec<String>,
    /// Rejection rules to run the same workload under, side by side (`free`,
    /// `count-per-minute`, `count-all-request-limits`): each tier becomes one server variant per
    /// rule, labelled e.g. `tier-1, rejections count`. OpenAI's guide says rejected requests
    /// count without saying how, so a conclusion that depends on the rule should show both.
    #[schemars(with = "Vec<String>")]
    pub compare_rejections: Vec<quota::RejectedRequests>,
    /// Algorithm, quantization, rejection rule and token charge of every limit: the catalog's,
    /// and limit sets written here unless they set the option themselves.
    pub limiter: LimiterOptions,
    /// Which headers responses carry.
    pub headers: HeaderPolicy,
    /// How long answers take.
    pub latency: LatencyConfig,
    /// How long the mock server's replies are before `max_tokens` caps them (a scenario's
    /// requests carry their own lengths).
    pub completion: LengthDistribution,
    /// Injected faults: rates and scripted sequences. Windows of faults are timeline entries.
    pub faults: FaultConfig,
    /// Changes over the run, at times from its start: tier or limit changes, fault windows
    /// (outages, `slow_down` storms, 429 bursts) and latency regimes.
    pub timeline: Vec<TimelineEntry>,
    /// Organizations with their projects and keys. When empty, any key is accepted into one
    /// default organization and project.
    pub organizations: Vec<OrganizationConfig>,
    /// Overrides merged into the built-in tier catalog, in the catalog's own format
    /// (`[catalog.models.gpt-4o.tiers]` ...); models sharing a `pool` share one bucket.
    #[schemars(with = "Option<serde_json::Value>")]
    pub catalog: Option<toml::Table>,
    /// Price overrides in dollars per million tokens, by model (spend and budgets).
    pub prices: BTreeMap<String, Price>,
    /// Seeds the mock server's content, latency jitter and fault draws. A scenario's own
    /// `seed` seeds its server, so a scenario may not set this.
    pub seed: Option<u64>,
    /// The mock server's clock: `real`, or `manual` (moved by `/_admin/clock/advance`).
    pub clock: ClockKind,
    /// Enables the mock server's `/_admin` routes; requests must send it as a bearer token.
    pub admin_token: Option<String>,
    /// The mock server answers bodies larger than this with a 413.
    pub max_body_bytes: usize,
    /// The mock server's timeouts and cap on open connections.
    pub connections: ConnectionLimits,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            model: None,
            tier: None,
            limits: None,
            compare_tiers: Vec::new(),
            compare_rejections: Vec::new(),
            limiter: LimiterOptions::default(),
            headers: HeaderPolicy::default(),
            latency: LatencyConfig::default(),
            completion: LengthDistribution::default(),
            faults: FaultConfig::default(),
            timeline: Vec::new(),
            organizations: Vec::new(),
            catalog: None,
            prices: BTreeMap::new(),
            seed: None,
            clock: ClockKind::Real,
            admin_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connections: ConnectionLimits::default(),
        }
    }
}

fn limit_set_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "limits and limiter options, as quota::LimitSet reads them",
        "additionalProperties": false,
        "properties": {
            "rpm": { "type": "integer", "minimum": 1 },
            "rpd": { "type": "integer", "minimum": 1 },
            "tpm": { "type": "integer", "minimum": 1 },
            "tpd": { "type": "integer", "minimum": 1 },
            "ipm": { "type": "integer", "minimum": 1 },
            "algorithm": {
                "enum": ["token-bucket", "fixed-window", "sliding-window-log",
                         "sliding-window-counter", "gcra"]
            },
            "quantum_ms": { "type": "integer", "minimum": 1 },
            "rejected_requests": {
                "enum": ["free", "count-per-minute", "count-all-request-limits"]
            },
            "token_charge": {
                "enum": ["guide", "prompt-plus-max"]
            }
        }
    })
}

/// Which clock the mock server runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// Wall-clock time; waits really wait.
    #[default]
    Real,
    /// Time stands still until `POST /_admin/clock/advance` moves it.
    Manual,
}

/// The `[limiter]` options: applied to every limit set, the catalog's and those written per
/// organization or project, except where such a set writes the option itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimiterOptions {
    /// `token-bucket` (default), `fixed-window`, `sliding-window-log`,
    /// `sliding-window-counter` or `gcra`.
    #[schemars(with = "Option<String>")]
    pub algorithm: quota::Algorithm,
    /// Enforce limits over this shorter period (OpenAI's quantization), e.g. 1000.
    pub quantum_ms: Option<u64>,
    /// Whether rejected requests count: `free` (default), `count-per-minute` or
    /// `count-all-request-limits` (docs/limits.md).
    #[schemars(with = "Option<String>")]
    pub rejected_requests: quota::RejectedRequests,
    /// How many tokens a request is charged at admission: `guide` (default) or
    /// `prompt-plus-max`.
    #[schemars(with = "Option<String>")]
    pub token_charge: quota::TokenChargeRule,
}

/// How long a connection may keep the server waiting, and how many may be open at once, so
/// that slow, idle or numerous clients cannot starve the others (`[connections]` in the serve
/// config; README "What the server promises").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Once the first byte of a request head has arrived, the whole head must follow within
    /// this time, or the connection is closed (a slowloris client sending its headers a byte
    /// at a time). Default: 10s.
    pub header_read_timeout: HumanDuration,
    /// A connection with no request in progress and no byte of the next one is closed after
    /// this time (a new connection counts from its opening). Default: 30s.
    pub idle_timeout: HumanDuration,
    /// Once a request head has arrived, its body must follow within this time, or the
    /// request gets a 408 and the connection is closed. Default: 30s.
    pub body_read_timeout: HumanDuration,
    /// The most connections open at once; past it a new connection gets an immediate 503 (the
    /// overloaded error) and is closed. Keep it below the process's descriptor limit
    /// (`ulimit -n`), which otherwise stops new clients first. Default 512.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: HumanDuration(Duration::from_secs(10)),
            idle_timeout: HumanDuration(Duration::from_secs(30)),
            body_read_timeout: HumanDuration(Duration::from_secs(30)),
            max_connections: 512,
        }
    }
}

impl ConnectionLimits {
    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("body_read_timeout", self.body_read_timeout),
        ] {
            // A day is far past any use, and keeps deadlines clear of overflow.
            if !(Duration::from_millis(1)..=Duration::from_secs(86_400)).contains(&value.0) {
                return Err(format!(
                    "connections.{name}: {value} is out of range (1ms to 1d)"
                ));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(format!(
                "connections.max_connections: {} is out of range (1 to 1000000)",
                self.max_connections
            ));
        }
        Ok(())
    }
}

/// Which headers responses carry (`[server.headers]`). OpenAI sends some only on some 429s,
/// so a client should be tested against every combination; the defaults are what OpenAI is
/// known to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderPolicy {
    /// `retry-after`, in whole seconds rounded up, on 429s of a limit that can ever fit.
    /// Default: true.
    pub retry_after: bool,
    /// `retry-after-ms` on those 429s, as Azure OpenAI sends; OpenAI is not known to.
    /// Default: false.
    pub retry_after_ms: bool,
    /// Where the `x-ratelimit-*` headers go: `all` responses (default), `success` responses
    /// only, or `none`.
    pub rate_limit: RateLimitHeaderPolicy,
}

impl Default for HeaderPolicy {
    fn default() -> HeaderPolicy {
        HeaderPolicy {
            retry_after: true,
            retry_after_ms: false,
            rate_limit: RateLimitHeaderPolicy::All,
        }
    }
}

/// Which responses carry the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitHeaderPolicy {
    /// Successes and 429s of the limiter.
    #[default]
    All,
    /// Successes only.
    Success,
    /// None.
    None,
}

impl RateLimitHeaderPolicy {
    /// Whether successes carry them.
    pub fn on_success(self) -> bool {
        self != RateLimitHeaderPolicy::None
    }

    /// Whether the limiter's 429s carry them.
    pub fn on_429(self) -> bool {
        self == RateLimitHeaderPolicy::All
    }
}

/// One organization: its tier, optional spend budget and projects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationConfig {
    pub id: String,
    #[serde(default)]
    pub tier: Option<String>,
    /// Spend in US dollars per 30 days of server time after which requests get
    /// `insufficient_quota`; the tier's monthly cap applies when absent.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// Limits by model for this organization: each figure given replaces the tier's.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub limits: BTreeMap<String, ConfiguredLimits>,
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
}

/// One project and the keys that act for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub id: String,
    #[serde(default)]
    pub keys: Vec<String>,
    /// The project's own limits by model, enforced on top of the organization's.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub limits: BTreeMap<String, ConfiguredLimits>,
}

/// A limit set written in the config (`limits`, an organization's or a project's) or through
/// `PUT /_admin/limits`: quota's `LimitSet`, remembering which limiter options it writes
/// itself. An option it leaves out comes from `[limiter]`; one it writes wins, so a single
/// organization can try another algorithm or rejection rule. Over a tier's figures
/// ([`ConfiguredLimits::overlay`]), a figure it sets replaces the tier's and the others stay.
///
/// `LimitSet` fills an unwritten `algorithm` or `rejected_requests` with its default, which
/// cannot be told apart from the same value written out; hence the keys are read first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfiguredLimits {
    /// The set as written, with quota's defaults for what it leaves out.
    pub set: LimitSet,
    /// Which limiter options the set writes itself.
    pub written: WrittenOptions,
}

/// The limiter options a [`ConfiguredLimits`] writes itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrittenOptions {
    pub algorithm: bool,
    pub quantum_ms: bool,
    pub rejected_requests: bool,
    pub token_charge: bool,
}

impl ConfiguredLimits {
    /// The set to enforce over `base` (a tier's figures, or none): each figure written here
    /// replaces the base's, and the options are resolved as [`ConfiguredLimits::resolve`] does.
    ///
    /// ```
    /// use model::{ConfiguredLimits, LimiterOptions};
    /// use quota::{LimitKind, LimitSet};
    ///
    /// let tier = LimitSet { rpm: Some(500), tpm: Some(200_000), ..LimitSet::default() };
    /// let written: ConfiguredLimits = toml::from_str("rpm = 100").unwrap();
    /// let enforced = written.overlay(Some(&tier), &LimiterOptions::default());
    /// assert_eq!(enforced.get(LimitKind::Rpm), Some(100));
    /// assert_eq!(enforced.get(LimitKind::Tpm), Some(200_000));
    /// ```
    pub fn overlay(&self, base: Option<&LimitSet>, limiter: &LimiterOptions) -> LimitSet {
        let mut set = self.resolve(limiter);
        if let Some(base) = base {
            for kind in quota::LimitKind::ALL {
                if set.get(kind).is_none() {
                    set.set(kind, base.get(kind));
                }
            }
        }
        set
    }

    /// The set to enforce: its own options where written, `[limiter]`'s elsewhere.
    pub fn resolve(&self, limiter: &LimiterOptions) -> LimitSet {
        let mut set = self.set.clone();
        if !self.written.algorithm {
            set.algorithm = limiter.algorithm;
        }
        if !self.written.quantum_ms {
            set.quantum_ms = limiter.quantum_ms;
        }
        if !self.written.rejected_requests {
            set.rejected_requests = limiter.rejected_requests;
        }
        if !self.written.token_charge {
            set.token_charge = limiter.token_charge;
        }
        set
    }
}

impl From<LimitSet> for ConfiguredLimits {
    /// A set built in code writes every option it holds.
    fn from(set: LimitSet) -> ConfiguredLimits {
        ConfiguredLimits {
            set,
            written: WrittenOptions {
                algorithm: true,
                quantum_ms: true,
                rejected_requests: true,
                token_charge: true,
            },
        }
    }
}

impl<'de> Deserialize<'de> for ConfiguredLimits {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let written = WrittenOptions {
            algorithm: table.contains_key("algorithm"),
            quantum_ms: table.contains_key("quantum_ms"),
            rejected_requests: table.contains_key("rejected_requests"),
            token_charge: table.contains_key("token_charge"),
        };
        // `LimitSet` itself checks the fields, so its unknown-field errors and the list of
        // what is allowed stay quota's.
        let set = LimitSet::deserialize(serde_json::Value::Object(table))
            .map_err(serde::de::Error::custom)?;
        Ok(ConfiguredLimits { set, written })
    }
}

impl Serialize for ConfiguredLimits {
    /// Writes the set as it was written: options taken from `[limiter]` are left out.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut table = match serde_json::to_value(&self.set).map_err(serde::ser::Error::custom)? {
            serde_json::Value::Object(table) => table,
            _ => {
                return Err(serde::ser::Error::custom(
                    "a limit set serializes as a table",
                ));
            }
        };
        for (key, written) in [
            ("algorithm", self.written.algorithm),
            ("quantum_ms", self.written.quantum_ms),
            ("rejected_requests", self.written.rejected_requests),
            ("token_charge", self.written.token_charge),
        ] {
            if !written {
                table.remove(key);
            }
        }
        table.serialize(serializer)
    }
}

/// A configuration that cannot be used, with the place and the fix in its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not TOML, or a field serde rejects; `origin` is `path:line:column` when toml knows
    /// the spot.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// A toml error as `path:line:column` and its message: what editors and terminals turn into a
/// jump to the spot (toml's own rendering puts the place on a separate "at line" clause).
fn parse_error_at(text: &str, origin: &str, error: &toml::de::Error) -> ConfigError {
    let place = match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!("{origin}:{line}:{column}")
        }
        None => origin.to_owned(),
    };
    ConfigError::Parse {
        origin: place,
        message: error.message().trim_end().to_owned(),
    }
}

/// Reads a user's catalog file (`--catalog FILE`): the catalog's own format, every part
/// optional, adding private tiers and models or changing the built-in figures field by field
/// (docs/tiers.md, "Your own tiers and models"). Returns it as a table to overlay on a
/// config's `[catalog]` ([`ServerConfig::overlay_catalog`]); a mistake is reported at
/// `origin:line:column`.
///
/// ```
/// let table = model::read_catalog_file(
///     "[tiers.enterprise]\nqualification = \"contract\"\nmonthly_spend_cap_usd = 1000000\n\
///      [models.gpt-4o-mini.tiers]\nenterprise = { rpm = 50000, tpm = 500000000 }\n",
///     "mine.toml",
/// )
/// .unwrap();
/// assert!(table.contains_key("tiers"));
/// let error = model::read_catalog_file("[models.gpt-4o.tiers]\ntier-9 = { rpm = 1 }\n", "mine.toml");
/// assert_eq!(
///     error.unwrap_err().to_string(),
///     "mine.toml:2:1: model \"gpt-4o\" lists limits for unknown tier \"tier-9\" (expected one of: free, tier-1, tier-2, tier-3, tier-4, tier-5; or define it under [tiers.tier-9])"
/// );
/// ```
pub fn read_catalog_file(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    toml::from_str::<quota::CatalogOverrides>(text)
        .map_err(|error| parse_error_at(text, origin, &error))?;
    let table: toml::Table =
        toml::from_str(text).map_err(|error| parse_error_at(text, origin, &error))?;
    quota::Catalog::builtin()
        .apply_overrides_toml(text)
        .map_err(|error| match error {
            quota::CatalogError::UndefinedTier { model, tier, valid } => {
                let origin = match tier_key_offset(text, &model, &tier) {
                    Some(offset) => {
                        let (line, column) = line_and_column(text, offset);
                        format!("{origin}:{line}:{column}")
                    }
                    None => origin.to_owned(),
                };
                ConfigError::Invalid {
                    origin,
                    message: format!(
                        "model \"{model}\" lists limits for unknown tier \"{tier}\" (expected one of: {}; or define it under [tiers.{tier}])",
                        valid.join(", ")
                    ),
                }
            }
            other => ConfigError::Invalid {
                origin: origin.to_owned(),
                message: other.to_string(),
            },
        })?;
    Ok(table)
}

/// Where a catalog file writes `tier`'s limits for `model`: the `tier` key under the model's
/// `[models.<model>.tiers]` header when the file is written that way, else the first mention
/// of the model.
fn tier_key_offset(text: &str, model: &str, tier: &str) -> Option<usize> {
    let headers = [
        format!("[models.{model}.tiers]"),
        format!("[models.\"{model}\".tiers]"),
    ];
    if let Some(header) = headers.iter().find_map(|header| text.find(header.as_str())) {
        let mut offset = header;
        for line in text[header..].split_inclusive('\n') {
            let trimmed = line.trim_start();
            let key = trimmed.trim_start_matches('"');
            let is_key = key
                .strip_prefix(tier)
                .is_some_and(|rest| rest.trim_start_matches('"').trim_start().starts_with('='));
            if is_key {
                return Some(offset + line.len() - trimmed.len());
            }
            if offset > header && trimmed.starts_with('[') {
                break;
            }
            offset += line.len();
        }
    }
    text.find(model)
}

impl ServerConfig {
    /// Lays a user's catalog file ([`read_catalog_file`]) under this config's own
    /// `[catalog]`: the built-in catalog, then the file, then the config's table, each
    /// overriding the one before, table by table, value by value.
    pub fn overlay_catalog(&mut self, file: &toml::Table) {
        let mut merged = file.clone();
        if let Some(own) = self.catalog.take() {
            merge_tables(&mut merged, own);
        }
        self.catalog = Some(merged);
    }

    /// Parses and validates a TOML config; `origin` (usually the path) prefixes every error,
    /// with the line and column where toml knows the spot.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<ServerConfig, ConfigError> {
        let parse_error = |error: toml::de::Error| parse_error_at(text, origin, &error);
        let config: ServerConfig = toml::from_str(text).map_err(parse_error)?;
        // The `[catalog]` table is kept as written and applied later; reading it here in the
        // catalog's own format reports a mistake at its place in this file.
        #[derive(Deserialize)]
        struct CatalogOnly {
            #[serde(default)]
            #[allow(dead_code)]
            catalog: Option<quota::CatalogOverrides>,
        }
        toml::from_str::<CatalogOnly>(text).map_err(|error| {
            let ConfigError::Parse { origin, message } = parse_error(error) else {
                unreachable!("parse_error makes parse errors")
            };
            ConfigError::Parse {
                origin,
                message: format!("catalog: {message}"),
            }
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks everything serde cannot: ranges, duplicates, tiers and models known to the
    /// catalog, the timeline's order.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.check().map_err(|message| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        })
    }

    /// The tier of organizations that name none: `tier`, else `tier-1`, else none when
    /// `limits` stands alone (a `custom` server).
    pub fn default_tier(&self) -> Option<&str> {
        match (&self.tier, &self.limits) {
            (Some(tier), _) => Some(tier),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TIER),
        }
    }

    /// The seed of the mock server's draws: `seed`, else 0.
    pub fn seed_or_default(&self) -> u64 {
        self.seed.unwrap_or(0)
    }

    fn check(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes: must be at least 1".to_owned());
        }
        if self.limits.is_some() && self.model.is_none() {
            return Err(crate::error::ModelError {
                place: "limits".to_owned(),
                kind: crate::error::ModelErrorKind::LimitsNeedModel,
            }
            .to_string());
        }
        self.connections.validate()?;
        if self.admin_token.as_deref() == Some("") {
            return Err(
                "admin_token: must not be empty; omit it to keep the admin API off".to_owned(),
            );
        }
        self.latency.validate()?;
        crate::pricing::validate(&self.prices)?;
        self.completion.validate()?;
        self.faults.validate()?;
        crate::timeline::validate(&self.timeline)?;
        let mut organizations = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        for (org_index, organization) in self.organizations.iter().enumerate() {
            let place = format!("organizations[{org_index}]");
            if !organizations.insert(organization.id.as_str()) {
                return Err(format!(
                    "{place}.id: \"{}\" is declared twice",
                    organization.id
                ));
            }
            if let Some(budget) = organization.budget_usd
                && !(budget.is_finite() && budget >= 0.0)
            {
                return Err(format!(
                    "{place}.budget_usd: {budget} is not a non-negative amount"
                ));
            }
            if organization.projects.is_empty() {
                return Err(format!(
                    "{place}.projects: declare at least one project with its keys"
                ));
            }
            for (project_index, project) in organization.projects.iter().enumerate() {
                for key in &project.keys {
                    if key.is_empty() {
                        return Err(format!(
                            "{place}.projects[{project_index}].keys: a key must not be empty"
                        ));
                    }
                    if !keys.insert(key.as_str()) {
                        return Err(format!(
                            "{place}.projects[{project_index}].keys: key {} is declared twice",
                            redact(key)
                        ));
                    }
                }
            }
        }
        // Tiers, models, limit sets, the timeline's changes and catalog overrides are checked
        // by building the model.
        crate::server::ServerModel::new(self)
            .map(drop)
            .map_err(|error| error.to_string())
    }
}

/// The JSON Schema of a server config (a serve file, and a scenario's `[server]` table), for
/// editors (`ratelab schema --server`).
///
/// ```
/// let schema = model::json_schema();
/// assert!(schema.contains("\"timeline\""));
/// ```
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ServerConfig);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// An API key with all but its first three and last four characters starred out (all of it
/// when shorter than 12), for logs and error messages.
pub fn redact(key: &str) -> String {
    let characters: Vec<char> = key.chars().collect();
    if characters.len() < 12 {
        return "*".repeat(characters.len());
    }
    let head: String = characters[..3].iter().collect();
    let tail: String = characters[characters.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(characters.len() - 7))
}

/// The 1-based line and column (in characters) of a byte offset into `text`.
/// `top`'s values over `base`'s, tables merged key by key.
fn merge_tables(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(below)), toml::Value::Table(above)) => {
                merge_tables(below, above);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_error(text: &str, expected: &str) {
        let error = ServerConfig::from_toml_str(text, "serve.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "error was: {error}");
        assert!(error.starts_with("serve.toml"), "error was: {error}");
    }

    #[test]
    fn a_syntax_or_field_error_names_file_line_and_column() {
        check_error(
            "tier = \"tier-2\"\n  seeed = 7\n",
            "serve.toml:2:3: unknown field `seeed`, expected one of `model`",
        );
        check_error("# é\ntier = \n", "serve.toml:2:8: ");
    }

    #[test]
    fn an_empty_file_is_the_default() {
        assert_eq!(
            ServerConfig::from_toml_str("", "x").unwrap(),
            ServerConfig::default()
        );
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../server/serve.example.toml");
        let config = ServerConfig::from_toml_str(text, "serve.example.toml").unwrap();
        assert_eq!(config.organizations[0].projects.len(), 2);
        assert_eq!(config.connections, ConnectionLimits::default());
        assert_eq!(config.limiter.quantum_ms, Some(1000));
        let organization = &config.organizations[0].limits["gpt-4o-mini"];
        assert!(organization.written.rejected_requests && !organization.written.quantum_ms);
        let enforced = organization.resolve(&config.limiter);
        assert_eq!(enforced.rejected_requests, quota::RejectedRequests::Free);
        assert_eq!(enforced.quantum_ms, Some(1000));
        let project = &config.organizations[0].projects[0].limits["gpt-4o"];
        assert_eq!(
            project.resolve(&config.limiter).rejected_requests,
            quota::RejectedRequests::CountPerMinute
        );
    }

    #[test]
    fn a_limit_set_keeps_what_it_writes_and_takes_the_rest_from_the_limiter_table() {
        let config = ServerConfig::from_toml_str(
            r#"
            [limiter]
            algorithm = "gcra"
            quantum_ms = 500
            rejected_requests = "count-all-request-limits"
            [[organizations]]
            id = "o"
            [organizations.limits.gpt-4o]
            rpm = 3
            algorithm = "fixed-window"
            [[organizations.projects]]
            id = "p"
            keys = ["sk-abcdefgh"]
            [organizations.projects.limits.gpt-4o]
            rpm = 2
            quantum_ms = 1000
            rejected_requests = "free"
            "#,
            "serve.toml",
        )
        .unwrap();
        let organization = config.organizations[0].limits["gpt-4o"].resolve(&config.limiter);
        assert_eq!(organization.algorithm, quota::Algorithm::FixedWindow);
        assert_eq!(organization.quantum_ms, Some(500));
        assert_eq!(
            organization.rejected_requests,
            quota::RejectedRequests::CountAllRequestLimits
        );
        let project = config.organizations[0].projects[0].limits["gpt-4o"].resolve(&config.limiter);
        assert_eq!(project.algorithm, quota::Algorithm::Gcra);
        assert_eq!(project.quantum_ms, Some(1000));
        assert_eq!(project.rejected_requests, quota::RejectedRequests::Free);
        // Written back, a set holds only what it wrote.
        let written = toml::to_string(&config.organizations[0].limits["gpt-4o"]).unwrap();
        assert_eq!(written, "algorithm = \"fixed-window\"\nrpm = 3\n");
    }

    #[test]
    fn a_bad_catalog_override_is_reported_at_its_place_in_the_users_file() {
        let error = ServerConfig::from_toml_str(
            "seed = 1\n[catalog.models.gpt-4o.tiers]\ntier-1 = { tpm = \"lots\" }\n",
            "serve.toml",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "serve.toml:3:18: catalog: invalid type: string \"lots\", expected u64"
        );
    }

    #[test]
    fn a_full_file_parses() {
        let config = ServerConfig::from_toml_str(
            r#"
            seed = 9
            clock = "manual"
            admin_token = "secret"
            [headers]
            retry_after_ms = true
            [latency]
            ttft = "300ms"
            per_output_token = "20ms"
            [completion]
            kind = "fixed"
            tokens = 12
            [faults.rates]
            server_error = 0.01
            [[timeline]]
            at = "30s"
            until = "40s"
            fault = { kind = "overloaded" }
            [[faults.scripts]]
            key = "sk-a"
            steps = [{ fault = { kind = "rate_limited", retry_after = "1s" }, count = 3 }]
            [[organizations]]
            id = "org-acme"
            budget_usd = 5.0
            [[organizations.projects]]
            id = "proj_web"
            keys = ["sk-a", "sk-b"]
            "#,
            "serve.toml",
        )
        .unwrap();
        assert_eq!(config.seed, Some(9));
        assert_eq!(
            config.timeline[0].until,
            Some(HumanDuration(Duration::from_secs(40)))
        );
        assert_eq!(config.clock, ClockKind::Manual);
        assert_eq!(config.completion, LengthDistribution::Fixed { tokens: 12 });
        assert_eq!(config.organizations[0].projects[0].keys.len(), 2);
        assert_eq!(config.faults.scripts[0].steps[0].count, 3);
    }

    #[test]
    fn bad_files_name_the_place() {
        check_error("sede = 1", "unknown field `sede`");
        check_error("[latency]\njitter = 4.0", "latency.jitter");
        check_error("limits = { rpm = 3 }", "limits: name the model");
        check_error(
            "[[organizations]]\nid = \"o\"\n[[organizations.projects]]\nid = \"p\"\nkeys = [\"sk-same-key-1\", \"sk-same-key-1\"]",
            "organizations[0].projects[0].keys: key sk-******ey-1 is declared twice",
        );
        check_error("[[organizations]]\nid = \"o\"", "organizations[0].projects");
        check_error(
            "[connections]\nidle_timeout = \"0s\"",
            "connections.idle_timeout: 0s is out of range (1ms to 1d)",
        );
        check_error(
            "[connections]\nmax_connections = 0",
            "connections.max_connections: 0 is out of range",
        );
        check_error("[connections]\nidle_ms = 5", "unknown field `idle_ms`");
        check_error(
            "[[organizations]]\nid = \"o\"\n[organizations.limits.gpt-4o]\nrpm = 3\nrpmm = 4",
            "serve.toml:3:1: unknown field `rpmm`, expected one of `rpm`",
        );
    }
}
