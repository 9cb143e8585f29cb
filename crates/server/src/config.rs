//! The server configuration: defaults for `ratelab serve`, and the TOML file that declares
//! organizations, projects, keys, tiers, header switches, latency, content and faults.

use std::collections::BTreeMap;

use quota::LimitSet;
use serde::{Deserialize, Serialize};

use crate::clock::ClockKind;
use crate::content::LengthDistribution;
use crate::faults::FaultConfig;
use crate::latency::LatencyConfig;
use crate::limits::LimiterOptions;
use crate::pricing::Price;

/// The organization every key belongs to when the config declares no keys.
pub const DEFAULT_ORGANIZATION: &str = "org-ratelab";
/// The project of the default organization.
pub const DEFAULT_PROJECT: &str = "proj_ratelab";
/// The tier of the default organization unless `tier` says otherwise.
pub const DEFAULT_TIER: &str = "tier-1";
/// OpenAI's documented request size ceiling is far larger; 8 MiB keeps a mock's memory bounded.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Everything a server needs to start. Parse a file with [`ServerConfig::from_toml_str`] or
/// build one in code from [`ServerConfig::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Seeds content, latency jitter, fault draws and request ids.
    pub seed: u64,
    /// The tier of organizations that do not name their own.
    pub tier: String,
    pub clock: ClockKind,
    /// Enables `/_admin` when set; requests must send it as a bearer token.
    pub admin_token: Option<String>,
    /// Bodies larger than this get a 413.
    pub max_body_bytes: usize,
    /// Timeouts and the cap on open connections (`ratelab serve` and `MockServer`).
    pub connections: ConnectionLimits,
    pub headers: HeaderSwitches,
    pub latency: LatencyConfig,
    /// How long replies are before `max_tokens` caps them.
    pub completion: LengthDistribution,
    pub faults: FaultConfig,
    /// Algorithm, quantization and rejection counting for every limit: the catalog's, and
    /// limit sets written per organization or project unless they set the option themselves.
    pub limiter: LimiterOptions,
    /// Overrides merged into the built-in tier catalog, in the catalog's own format
    /// (`[catalog.models.gpt-4o.tiers]` ...); models sharing a `pool` share one bucket.
    pub catalog: Option<toml::Table>,
    /// Price overrides in dollars per million tokens, by model.
    pub prices: BTreeMap<String, Price>,
    /// When empty, any key is accepted into one default organization and project.
    pub organizations: Vec<OrganizationConfig>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            seed: 0,
            tier: DEFAULT_TIER.to_owned(),
            clock: ClockKind::Real,
            admin_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connections: ConnectionLimits::default(),
            headers: HeaderSwitches::default(),
            latency: LatencyConfig::default(),
            completion: LengthDistribution::default(),
            faults: FaultConfig::default(),
            limiter: LimiterOptions::default(),
            catalog: None,
            prices: BTreeMap::new(),
            organizations: Vec::new(),
        }
    }
}

/// How long a connection may keep the server waiting, and how many may be open at once, so
/// that slow, idle or numerous clients cannot starve the others (`[connections]` in the serve
/// config; README "What the server promises").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Once the first byte of a request head has arrived, the whole head must follow within
    /// this many milliseconds, or the connection is closed (a slowloris client sending its
    /// headers a byte at a time). Default 10,000.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in progress and no byte of the next one is closed after
    /// this many milliseconds (a new connection counts from its opening). Default 30,000.
    pub idle_timeout_ms: u64,
    /// Once a request head has arrived, its body must follow within this many milliseconds,
    /// or the request gets a 408 and the connection is closed. Default 30,000.
    pub body_read_timeout_ms: u64,
    /// The most connections open at once; past it a new connection gets an immediate 503 (the
    /// overloaded error) and is closed. Keep it below the process's descriptor limit
    /// (`ulimit -n`), which otherwise stops new clients first. Default 512.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            body_read_timeout_ms: 30_000,
            max_connections: 512,
        }
    }
}

impl ConnectionLimits {
    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
        ] {
            // A day is far past any use, and keeps deadlines clear of overflow.
            if !(1..=86_400_000).contains(&value) {
                return Err(format!(
                    "connections.{name}: {value} is out of range (1 to 86400000 ms)"
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

/// Which optional headers 429s carry. OpenAI sends each only on some 429s, so a client must be
/// tested against every combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderSwitches {
    /// `Retry-After` in whole seconds, rounded up.
    pub retry_after: bool,
    /// `retry-after-ms` (Azure OpenAI's header; OpenAI is not known to send it).
    pub retry_after_ms: bool,
    /// The `x-ratelimit-*` headers on 429 responses (they are always sent on successes).
    pub rate_limit_headers_on_429: bool,
}

impl Default for HeaderSwitches {
    fn default() -> HeaderSwitches {
        HeaderSwitches {
            retry_after: true,
            retry_after_ms: false,
            rate_limit_headers_on_429: true,
        }
    }
}

/// One organization: its tier, optional spend budget and projects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationConfig {
    pub id: String,
    #[serde(default)]
    pub tier: Option<String>,
    /// Spend in US dollars per 30 days of server time after which requests get
    /// `insufficient_quota`; the tier's monthly cap applies when absent.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// Limits by model that replace the tier's figures for this organization.
    #[serde(default)]
    pub limits: BTreeMap<String, ConfiguredLimits>,
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
}

/// One project and the keys that act for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub id: String,
    #[serde(default)]
    pub keys: Vec<String>,
    /// The project's own limits by model, enforced on top of the organization's.
    #[serde(default)]
    pub limits: BTreeMap<String, ConfiguredLimits>,
}

/// A limit set written for an organization or project (in the config file or through
/// `PUT /_admin/limits`): quota's `LimitSet`, remembering which limiter options it writes
/// itself. An option it leaves out comes from `[limiter]`; one it writes wins, so a single
/// organization can try another algorithm or rejection rule.
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

impl ServerConfig {
    /// Parses and validates a TOML config; `origin` (usually the path) prefixes every error.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<ServerConfig, ConfigError> {
        let parse_error = |error: toml::de::Error| {
            // `path:line:column: message` is what editors and terminals turn into a jump to
            // the spot; toml's own rendering puts the place on a separate "at line" clause.
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
        };
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

    /// Checks everything serde cannot: ranges, duplicates, tiers known to the catalog.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.check().map_err(|message| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        })
    }

    fn check(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes: must be at least 1".to_owned());
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
                            crate::auth::redact(key)
                        ));
                    }
                }
            }
        }
        // Tiers, models, limit sets and catalog overrides are checked by building the limiter.
        crate::limits::Limits::from_config(self).map(drop)
    }
}

/// The 1-based line and column (in characters) of a byte offset into `text`.
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
            "serve.toml:2:3: unknown field `seeed`, expected one of `seed`",
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
        let text = include_str!("../serve.example.toml");
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
            ttft_ms = 300
            tokens_per_second = 50
            [completion]
            kind = "fixed"
            tokens = 12
            [faults.rates]
            server_error = 0.01
            [[faults.windows]]
            start_s = 30
            end_s = 40
            fault = { kind = "overloaded" }
            [[faults.scripts]]
            key = "sk-a"
            steps = [{ fault = { kind = "rate_limited", retry_after_ms = 1000 }, count = 3 }]
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
        assert_eq!(config.seed, 9);
        assert_eq!(config.clock, ClockKind::Manual);
        assert_eq!(config.completion, LengthDistribution::Fixed { tokens: 12 });
        assert_eq!(config.organizations[0].projects[0].keys.len(), 2);
        assert_eq!(config.faults.scripts[0].steps[0].count, 3);
    }

    #[test]
    fn bad_files_name_the_place() {
        check_error("sede = 1", "unknown field `sede`");
        check_error("[latency]\njitter = 2.0", "latency.jitter");
        check_error(
            "[[organizations]]\nid = \"o\"\n[[organizations.projects]]\nid = \"p\"\nkeys = [\"sk-same-key-1\", \"sk-same-key-1\"]",
            "organizations[0].projects[0].keys: key sk-******ey-1 is declared twice",
        );
        check_error("[[organizations]]\nid = \"o\"", "organizations[0].projects");
        check_error(
            "[connections]\nidle_timeout_ms = 0",
            "connections.idle_timeout_ms: 0 is out of range (1 to 86400000 ms)",
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
