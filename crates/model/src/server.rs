//! `ServerModel`: the fate of one request, decided from (config, server time, caller, cost,
//! RNG) with no clock and no I/O. The simulator's event loop and the mock server's handlers
//! both call [`ServerModel::decide`]; the server only parses HTTP around it and writes bytes.
//!
//! In order, a request meets: a fault (a script step for its key, the timeline's window in
//! force, then the rates), its organization's spend cap, then admission by quota's limiter
//! over the organization's and (when it has limits) the project's scope, in the pool of its
//! model (gpt-4.1 prompts over 128k tokens draw from the long-context pool).

use std::collections::BTreeMap;
use std::time::Duration;

use hashbrown::HashMap;
use quota::{
    Catalog, ErrorBody, Instant, LimitKind, LimitSet, LimitStatus, Limiter, ModelKind, Rejection,
    Scope, ScopedKey,
};
use rand::Rng;

use crate::config::{ConfiguredLimits, DEFAULT_ORGANIZATION, HeaderPolicy, ServerConfig};
use crate::faults::{DEFAULT_HANG, Fault, Faults};
use crate::latency::LatencyConfig;
use crate::pricing::PriceTable;
use crate::timeline::Timeline;

/// gpt-4.1 inputs above this many tokens draw from the separate long-context pool.
const LONG_CONTEXT_THRESHOLD: u64 = 128_000;
const LONG_CONTEXT_MODELS: [(&str, &str); 1] = [("gpt-4.1", "gpt-4.1-long-context")];

/// Spend caps are monthly: spend starts again from zero every 30 days of server time.
const SPEND_PERIOD: Duration = Duration::from_secs(30 * 86_400);

/// Who sends a request: the organization and project its key acts for, and the key.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub organization: &'a str,
    pub project: &'a str,
    pub key: &'a str,
}

impl Caller<'static> {
    /// The caller of a server that declares no organizations (and of a simulated scenario).
    pub const DEFAULT: Caller<'static> = Caller {
        organization: DEFAULT_ORGANIZATION,
        project: crate::config::DEFAULT_PROJECT,
        key: "",
    };
}

/// What a request asks of the limits: its model and measurements.
#[derive(Debug, Clone, Copy)]
pub struct Cost<'a> {
    pub model: &'a str,
    /// The prompt's tokens; for legacy completions with several prompts, the longest one's.
    pub prompt_tokens: u64,
    /// Characters of the prompt text, the token charge's estimate; `None` where the request
    /// has no text to estimate from (token arrays, embeddings), and the count stands in.
    pub prompt_characters: Option<u64>,
    /// `max_tokens` per choice, when the request sets it.
    pub max_output_tokens: Option<u64>,
    /// `n`, at least 1.
    pub choices: u64,
}

impl Cost<'_> {
    fn size(&self) -> quota::RequestSize {
        quota::RequestSize {
            prompt_characters: self.prompt_characters,
            prompt_tokens: Some(self.prompt_tokens),
            max_output_tokens: self.max_output_tokens,
            choices: self.choices,
        }
    }
}

/// What the model decides for a request.
#[derive(Debug)]
pub enum Reply {
    /// Served: charged to its limits.
    Admitted(Admission),
    /// Answered with an error instead.
    Refused(Refusal),
}

/// A request the limits admitted.
#[derive(Debug, Default)]
pub struct Admission {
    /// Every charged limit's status after the charge, for the `x-ratelimit-*` headers; empty
    /// when the caller did not ask for them or the header policy sends none on successes.
    pub statuses: Vec<LimitStatus>,
    /// A fault that strikes once the request is being served.
    pub late_fault: Option<LateFault>,
}

/// Faults that happen once a request is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateFault {
    /// The connection drops at the end of the reply's latency (a stream: partway through).
    ConnectionReset,
    /// A stream carries an in-band error; a whole reply is a 500.
    StreamError,
}

/// Why a request was not served.
#[derive(Debug)]
pub enum Refusal {
    /// 404: the model is not offered (unknown, a pool, or absent from the tier).
    ModelNotFound,
    /// 429 `rate_limit_exceeded`: a limit, or a scripted `rate_limited` fault.
    RateLimited(Box<RateLimited>),
    /// 429 `insufficient_quota`: the spend cap is reached, or an injected fault.
    InsufficientQuota,
    /// 500 `server_error`.
    ServerError,
    /// 503 `server_is_overloaded`.
    Overloaded,
    /// 429 `slow_down`.
    SlowDown,
    /// No answer for this long, then a 503.
    Hang(Duration),
}

impl Refusal {
    /// The HTTP status the refusal is answered with (a hang's, when it ends).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::ModelNotFound => 404,
            Refusal::RateLimited(_) | Refusal::InsufficientQuota | Refusal::SlowDown => 429,
            Refusal::ServerError => 500,
            Refusal::Overloaded | Refusal::Hang(_) => 503,
        }
    }

    /// The error body's `code` (its `type` where OpenAI sends a null code).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::ModelNotFound => "model_not_found",
            Refusal::RateLimited(_) => "rate_limit_exceeded",
            Refusal::InsufficientQuota => "insufficient_quota",
            Refusal::ServerError => "server_error",
            Refusal::Overloaded | Refusal::Hang(_) => "server_is_overloaded",
            Refusal::SlowDown => "slow_down",
        }
    }
}

/// A 429 of a limit: the rejection as the request found it, and what the headers carry.
#[derive(Debug, Clone)]
pub struct RateLimited {
    /// The limit, as found before any charge for the rejection.
    pub rejection: Rejection,
    /// `retry-after` in whole seconds, when the header policy sends it and the limit can fit.
    pub retry_after_seconds: Option<u64>,
    /// `retry-after-ms`, likewise.
    pub retry_after_ms: Option<u64>,
    /// Every limit's status as the request found it, when the policy sends `x-ratelimit-*`
    /// on 429s and the caller asked for them.
    pub statuses: Option<Vec<LimitStatus>>,
    /// Whether a scripted fault, not a limit, sent it.
    pub scripted: bool,
}

impl RateLimited {
    /// OpenAI's error body for it, naming the limit, the model and the holder.
    pub fn body(&self, model: &str, caller: &Caller<'_>) -> ErrorBody {
        ErrorBody::rate_limit(
            &self.rejection,
            model,
            caller.organization,
            Some(caller.project),
        )
    }

    /// Which limit ran out, for metrics: `rpm`, `project_tpm`, `request_too_large`, ...
    pub fn exhausted(&self) -> String {
        if self.rejection.is_request_too_large() {
            return "request_too_large".to_owned();
        }
        let scope = match self.rejection.scope {
            Scope::Organization => "",
            Scope::Project => "project_",
        };
        format!(
            "{scope}{}",
            self.rejection.kind.abbreviation().to_lowercase()
        )
    }
}

/// A model's per-request limits from the catalog, which OpenAI enforces with a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub kind: ModelKind,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
}

/// One bucket holder: an organization's pool, or a project's pool inside it, by the ids the
/// model issues. Plain numbers rather than shared names: building a key per request then
/// touches no reference counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BucketKey {
    organization: u32,
    project: Option<u32>,
    pool: u32,
}

/// A limit set as written, with its compiled form over no base (projects' sets).
#[derive(Debug, Clone)]
struct Written {
    configured: ConfiguredLimits,
    compiled: quota::Limits,
}

#[derive(Debug, Clone, Default)]
struct Organization {
    bucket_id: u32,
    tier: Option<String>,
    budget_usd: Option<f64>,
    spent_usd: f64,
    /// Which 30-day spend period `spent_usd` belongs to.
    spend_period: u64,
    /// Limits by model that overlay the tier's for this organization.
    limits: HashMap<String, ConfiguredLimits>,
    projects: HashMap<String, Project>,
}

#[derive(Debug, Clone, Default)]
struct Project {
    bucket_id: u32,
    limits: HashMap<String, Written>,
}

/// Which enforced set a compiled-limits cache entry is: the organization's own (by bucket id)
/// or one shared by every organization of a tier, under the timeline's limits entry in force.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SetKey {
    organization: Option<u32>,
    tier: Option<String>,
    model: String,
    timeline_limits: Option<usize>,
}

/// A [`SetKey`] borrowing its names, for looking the cache up without allocating: every
/// request does, and only a miss needs an owned key. Its derived `Hash` hashes the same fields
/// in the same order (`&str` hashes as `String` does), so it finds the owned key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SetKeyRef<'a> {
    organization: Option<u32>,
    tier: Option<&'a str>,
    model: &'a str,
    timeline_limits: Option<usize>,
}

impl hashbrown::Equivalent<SetKey> for SetKeyRef<'_> {
    fn equivalent(&self, key: &SetKey) -> bool {
        self.organization == key.organization
            && self.tier == key.tier.as_deref()
            && self.model == key.model
            && self.timeline_limits == key.timeline_limits
    }
}

impl SetKeyRef<'_> {
    fn to_owned_key(self) -> SetKey {
        SetKey {
            organization: self.organization,
            tier: self.tier.map(str::to_owned),
            model: self.model.to_owned(),
            timeline_limits: self.timeline_limits,
        }
    }
}

/// The server model: limits, spend, faults, timeline and the policies for answers.
#[derive(Debug)]
pub struct ServerModel {
    catalog: Catalog,
    headers: HeaderPolicy,
    options: crate::config::LimiterOptions,
    /// The tier of organizations that name none (before the timeline), `None` for `custom`.
    default_tier: Option<String>,
    /// The scenario's model and the `limits` written for it.
    model: Option<String>,
    limits: Option<ConfiguredLimits>,
    latency: LatencyConfig,
    timeline: Timeline,
    faults: Faults,
    organizations: HashMap<String, Organization>,
    /// Compiled enforced sets (see [`SetKey`]).
    compiled: HashMap<SetKey, quota::Limits>,
    /// Each model's pool id: models that share a pool share the id.
    pools: HashMap<String, u32>,
    pool_ids: HashMap<String, u32>,
    bucket_ids_issued: u32,
    prices: PriceTable,
    limiter: Limiter<BucketKey>,
}

/// The built-in catalog with the config's `[catalog]` overrides applied.
pub fn build_catalog(config: &ServerConfig) -> Result<Catalog, String> {
    let mut catalog = Catalog::builtin();
    if let Some(overrides) = &config.catalog {
        let text = toml::to_string(overrides).map_err(|error| format!("catalog: {error}"))?;
        catalog
            .apply_overrides_toml(&text)
            .map_err(|error| format!("catalog: {error}"))?;
    }
    Ok(catalog)
}

impl ServerModel {
    /// Builds the model from a config, with errors naming the config field.
    pub fn new(config: &ServerConfig) -> Result<ServerModel, String> {
        let catalog = build_catalog(config)?;
        let tier_known = |tier: &str, place: &str| {
            catalog
                .tier(tier)
                .map(drop)
                .map_err(|error| format!("{place}: {error}"))
        };
        for (index, configured) in config.organizations.iter().enumerate() {
            if let Some(tier) = &configured.tier {
                tier_known(tier, &format!("organizations[{index}].tier"))?;
            }
        }
        if let Some(tier) = &config.tier {
            tier_known(tier, "tier")?;
        }
        for (index, tier) in config.compare_tiers.iter().enumerate() {
            tier_known(tier, &format!("compare_tiers[{index}]"))?;
        }
        for (index, entry) in config.timeline.iter().enumerate() {
            if let Some(tier) = &entry.tier {
                tier_known(tier, &format!("timeline[{index}].tier"))?;
            }
            if entry.limits.is_some() && config.model.is_none() {
                return Err(format!(
                    "timeline[{index}].limits: name the model they apply to with `model`"
                ));
            }
        }
        let mut model = ServerModel {
            catalog,
            headers: config.headers,
            options: config.limiter,
            default_tier: config.default_tier().map(str::to_owned),
            model: config.model.clone(),
            limits: config.limits.clone(),
            latency: config.latency,
            timeline: Timeline::new(&config.timeline),
            faults: Faults::new(&config.faults),
            organizations: HashMap::new(),
            compiled: HashMap::new(),
            pools: HashMap::new(),
            pool_ids: HashMap::new(),
            bucket_ids_issued: 0,
            prices: PriceTable::new(&config.prices),
            limiter: Limiter::new(),
        };
        if let Some(name) = &config.model {
            model.check_model(name, "model")?;
            if !model.knows_model(name) {
                return Err(format!(
                    "model: \"{name}\" is a pool of the catalog, not a model a request can name"
                ));
            }
        }
        for (org_index, configured) in config.organizations.iter().enumerate() {
            let place = format!("organizations[{org_index}]");
            let mut organization = Organization {
                bucket_id: model.issue_bucket_id(),
                tier: configured.tier.clone(),
                budget_usd: configured.budget_usd,
                ..Organization::default()
            };
            for (name, set) in &configured.limits {
                model.check_model(name, &format!("{place}.limits"))?;
                set.resolve(&model.options)
                    .compile()
                    .map_err(|error| format!("{place}.limits.{name}: {error}"))?;
                organization.limits.insert(name.clone(), set.clone());
            }
            for (project_index, project) in configured.projects.iter().enumerate() {
                let project_place = format!("{place}.projects[{project_index}].limits");
                let mut project_limits = HashMap::new();
                for (name, set) in &project.limits {
                    model.check_model(name, &project_place)?;
                    let written = model.written(set, &format!("{project_place}.{name}"))?;
                    project_limits.insert(name.clone(), written);
                }
                let entry = Project {
                    bucket_id: model.issue_bucket_id(),
                    limits: project_limits,
                };
                organization.projects.insert(project.id.clone(), entry);
            }
            model
                .organizations
                .insert(configured.id.clone(), organization);
        }
        // Every set the config can enforce must compile: check them now, at every change of
        // the timeline, so a bad figure is reported at start rather than at its first request.
        if let Some(name) = config.model.clone() {
            let mut times = vec![Duration::ZERO];
            times.extend(model.timeline.changes());
            for now in times {
                let caller = Caller::DEFAULT;
                model
                    .enforced_for(now, caller.organization, &name)
                    .map_err(|error| format!("limits: {error}"))?;
            }
        }
        Ok(model)
    }

    fn written(&self, set: &ConfiguredLimits, place: &str) -> Result<Written, String> {
        let compiled = set
            .resolve(&self.options)
            .compile()
            .map_err(|error| format!("{place}: {error}"))?;
        Ok(Written {
            configured: set.clone(),
            compiled,
        })
    }

    /// Config and admin changes may name any catalog entry, pools included: limits can be set
    /// for gpt-4.1's long-context pool.
    fn check_model(&self, model: &str, place: &str) -> Result<(), String> {
        if self.catalog.models.contains_key(model) {
            return Ok(());
        }
        let known: Vec<&str> = self.catalog.models.keys().map(String::as_str).collect();
        Err(format!(
            "{place}: unknown model \"{model}\" (expected one of: {}, or add it under [catalog.models])",
            known.join(", ")
        ))
    }

    /// The catalog in use, overrides applied.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The header policy.
    pub fn header_policy(&self) -> HeaderPolicy {
        self.headers
    }

    /// The models a request may name, for `/v1/models`: every catalog entry but the pools.
    pub fn model_ids(&self) -> Vec<String> {
        self.catalog
            .models
            .iter()
            .filter(|(_, entry)| entry.is_model())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The names of every model the catalog offers, pools included.
    pub fn model_names(&self) -> Vec<String> {
        self.catalog.models.keys().cloned().collect()
    }

    /// Whether a request may name `model`; a pool such as gpt-4.1's long-context one is
    /// answered as an unknown model would be.
    pub fn knows_model(&self, model: &str) -> bool {
        self.catalog
            .models
            .get(model)
            .is_some_and(quota::ModelEntry::is_model)
    }

    /// The per-request limits of a model a request may name.
    pub fn request_limits(&self, model: &str) -> Option<RequestLimits> {
        let entry = self
            .catalog
            .models
            .get(model)
            .filter(|entry| entry.is_model())?;
        Some(RequestLimits {
            kind: entry.kind(),
            context_window: entry.context_window,
            max_output_tokens: entry.max_output_tokens,
        })
    }

    /// The latency in force at `now`: the timeline's regime, else `[latency]`.
    pub fn latency_at(&self, now: Duration) -> &LatencyConfig {
        self.timeline.latency(now).unwrap_or(&self.latency)
    }

    /// The timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The live fault plan (rates and scripts), for the admin API.
    pub fn faults_mut(&mut self) -> &mut Faults {
        &mut self.faults
    }

    /// Whether [`ServerModel::decide`] can inject no fault at any time.
    pub fn faults_idle(&self) -> bool {
        self.faults.is_idle() && self.timeline.entries().iter().all(|e| e.fault.is_none())
    }

    fn issue_bucket_id(&mut self) -> u32 {
        // Wrapping would take four billion organizations and projects in one server.
        self.bucket_ids_issued = self.bucket_ids_issued.wrapping_add(1);
        self.bucket_ids_issued
    }

    fn organization(&mut self, id: &str) -> &mut Organization {
        // Look up before inserting so the common case allocates no key.
        if !self.organizations.contains_key(id) {
            let organization = Organization {
                bucket_id: self.issue_bucket_id(),
                ..Organization::default()
            };
            self.organizations.insert(id.to_owned(), organization);
        }
        self.organizations
            .get_mut(id)
            .unwrap_or_else(|| unreachable!("organization {id} was inserted above"))
    }

    /// The id of the pool `model` draws from.
    fn pool(&mut self, model: &str) -> Option<u32> {
        if let Some(&pool) = self.pools.get(model) {
            return Some(pool);
        }
        let name = self.catalog.pool(model).ok()?;
        let next = u32::try_from(self.pool_ids.len()).ok()?;
        let pool = *self.pool_ids.entry(name.to_owned()).or_insert(next);
        self.pools.insert(model.to_owned(), pool);
        Some(pool)
    }

    /// The limits `organization` enforces for `model` at `now`, compiled (cached), or an error
    /// saying why none apply.
    fn enforced_for(
        &mut self,
        now: Duration,
        organization: &str,
        model: &str,
    ) -> Result<quota::Limits, String> {
        self.organization(organization);
        let entry = &self.organizations[organization];
        let own = entry.limits.get(model);
        // The organization's own tier, else the timeline's, else the default; borrowed, as
        // the whole lookup is: a hit (nearly every request) allocates nothing.
        let tier = entry
            .tier
            .as_deref()
            .or_else(|| self.timeline.tier(now))
            .or(self.default_tier.as_deref());
        let scenario_model = self.model.as_deref() == Some(model);
        let timeline_limits = if own.is_none() && scenario_model {
            self.timeline.limits(now)
        } else {
            None
        };
        let key = SetKeyRef {
            organization: own.map(|_| entry.bucket_id),
            tier,
            model,
            timeline_limits: timeline_limits.map(|(index, _)| index),
        };
        if let Some(found) = self.compiled.get(&key) {
            return Ok(found.clone());
        }
        let own = own.cloned();
        let base: Option<LimitSet> = match tier {
            Some(tier) => match self.catalog.limits(tier, model) {
                Ok(limits) => Some(limits.limit_set()),
                Err(error) => {
                    if own.is_none() && !(scenario_model && self.limits.is_some()) {
                        return Err(error.to_string());
                    }
                    None
                }
            },
            None => None,
        };
        let written: Option<ConfiguredLimits> = match (own, scenario_model) {
            (Some(own), _) => Some(own),
            (None, true) => match (&self.limits, timeline_limits) {
                (Some(limits), Some((_, change))) => Some(merge(limits, change)),
                (Some(limits), None) => Some(limits.clone()),
                (None, Some((_, change))) => Some(change.clone()),
                (None, None) => None,
            },
            (None, false) => None,
        };
        let set = match (written, base) {
            (Some(written), base) => written.overlay(base.as_ref(), &self.options),
            (None, Some(base)) => LimitSet {
                algorithm: self.options.algorithm,
                quantum_ms: self.options.quantum_ms,
                rejected_requests: self.options.rejected_requests,
                token_charge: self.options.token_charge,
                ..base
            },
            (None, None) => {
                return Err(format!("no limits apply to {model} without a tier"));
            }
        };
        let compiled = set.compile().map_err(|error| error.to_string())?;
        self.compiled.insert(key.to_owned_key(), compiled.clone());
        Ok(compiled)
    }

    fn spend_cap_usd(&self, organization: &Organization) -> f64 {
        organization.budget_usd.unwrap_or_else(|| {
            organization
                .tier
                .as_deref()
                .or(self.default_tier.as_deref())
                .and_then(|tier| self.catalog.tier(tier).ok())
                .map_or(f64::INFINITY, |info| info.monthly_spend_cap_usd as f64)
        })
    }

    /// Decides a request's fate at server time `now`. `rng` is the stream fault draws come
    /// from. `report` asks for the limits' statuses (the `x-ratelimit-*` headers), which cost
    /// an allocation; the simulator skips them when no strategy reads them.
    pub fn decide(
        &mut self,
        now: Duration,
        caller: &Caller<'_>,
        cost: &Cost<'_>,
        rng: &mut impl Rng,
        report: bool,
    ) -> Reply {
        if !self.knows_model(cost.model) {
            return Reply::Refused(Refusal::ModelNotFound);
        }
        let window = self.timeline.fault(now);
        let late_fault = match self.faults.decide(caller.key, window, rng) {
            None => None,
            Some(Fault::ServerError) => return Reply::Refused(Refusal::ServerError),
            Some(Fault::Overloaded) => return Reply::Refused(Refusal::Overloaded),
            Some(Fault::SlowDown) => return Reply::Refused(Refusal::SlowDown),
            Some(Fault::InsufficientQuota) => return Reply::Refused(Refusal::InsufficientQuota),
            Some(Fault::Hang { duration }) => {
                return Reply::Refused(Refusal::Hang(duration.map_or(DEFAULT_HANG, |d| d.0)));
            }
            Some(Fault::RateLimited { retry_after }) => {
                let wait = retry_after.map_or(Duration::from_secs(1), |wait| wait.0);
                return Reply::Refused(self.scripted_rate_limit(now, caller, cost.model, wait));
            }
            Some(Fault::ConnectionReset) => Some(LateFault::ConnectionReset),
            Some(Fault::StreamError) => Some(LateFault::StreamError),
        };
        match self.admit(now, caller, cost, report) {
            Ok(statuses) => Reply::Admitted(Admission {
                statuses,
                late_fault,
            }),
            Err(refusal) => Reply::Refused(refusal),
        }
    }

    /// The spend check and the limiter.
    fn admit(
        &mut self,
        now: Duration,
        caller: &Caller<'_>,
        cost: &Cost<'_>,
        report: bool,
    ) -> Result<Vec<LimitStatus>, Refusal> {
        let period = now.as_secs() / SPEND_PERIOD.as_secs();
        let organization = self.organization(caller.organization);
        if organization.spend_period != period {
            organization.spend_period = period;
            organization.spent_usd = 0.0;
        }
        let spent = organization.spent_usd;
        if spent >= self.spend_cap_usd(&self.organizations[caller.organization]) {
            return Err(Refusal::InsufficientQuota);
        }
        let model = LONG_CONTEXT_MODELS
            .iter()
            .find(|(base, long)| {
                *base == cost.model
                    && cost.prompt_tokens > LONG_CONTEXT_THRESHOLD
                    && self.catalog.models.contains_key(*long)
            })
            .map_or(cost.model, |(_, long)| *long);
        let pool = self.pool(model).ok_or(Refusal::ModelNotFound)?;
        let organization_limits = self
            .enforced_for(now, caller.organization, model)
            .map_err(|_| Refusal::ModelNotFound)?;
        let organization = &self.organizations[caller.organization];
        let project = organization.projects.get(caller.project);
        let project_limits = project
            .and_then(|project| project.limits.get(model))
            .map(|found| found.compiled.clone());
        let organization_key = BucketKey {
            organization: organization.bucket_id,
            project: None,
            pool,
        };
        let project_key = BucketKey {
            project: project.map(|project| project.bucket_id),
            ..organization_key
        };
        let organization_scope = ScopedKey {
            scope: Scope::Organization,
            key: &organization_key,
            limits: &organization_limits,
        };
        // Both scopes live on the stack: no allocation for the usual one or two.
        let both_scopes;
        let scopes: &[ScopedKey<'_, BucketKey>] = match &project_limits {
            None => std::slice::from_ref(&organization_scope),
            Some(limits) => {
                both_scopes = [
                    organization_scope,
                    ScopedKey {
                        scope: Scope::Project,
                        key: &project_key,
                        limits,
                    },
                ];
                &both_scopes
            }
        };
        let instant = to_instant(now);
        // The organization's rule: `[limiter]`'s unless its limit set writes its own.
        let tokens = organization_limits.token_charge().tokens(&cost.size());
        let charge = quota::Charge::request(tokens);
        if !report {
            return self
                .limiter
                .try_acquire(instant, charge, scopes)
                .map(|()| Vec::new())
                .map_err(|rejection| self.limited(rejection, None));
        }
        match self.limiter.decide(instant, charge, scopes) {
            Ok(admitted) if self.headers.rate_limit.on_success() => Ok(admitted.statuses),
            Ok(_) => Ok(Vec::new()),
            Err(quota::Rejected {
                rejection,
                statuses,
            }) => Err(self.limited(rejection, Some(statuses))),
        }
    }

    /// The 429 of a rejection, with what the header policy lets it carry.
    fn limited(&self, rejection: Rejection, found: Option<Vec<LimitStatus>>) -> Refusal {
        let wait = rejection.retry_after;
        Refusal::RateLimited(Box::new(RateLimited {
            retry_after_seconds: wait
                .filter(|_| self.headers.retry_after)
                .map(quota::retry_after_seconds),
            retry_after_ms: wait
                .filter(|_| self.headers.retry_after_ms)
                .map(quota::retry_after_millis),
            statuses: found.filter(|_| self.headers.rate_limit.on_429()),
            rejection,
            scripted: false,
        }))
    }

    /// The 429 a scripted `rate_limited` fault sends: an RPM rejection at the organization's
    /// real RPM figure, waiting `retry_after`.
    fn scripted_rate_limit(
        &mut self,
        now: Duration,
        caller: &Caller<'_>,
        model: &str,
        retry_after: Duration,
    ) -> Refusal {
        let limit = self
            .enforced_for(now, caller.organization, model)
            .ok()
            .and_then(|limits| limits.rules().find(|rule| rule.kind == LimitKind::Rpm))
            .map_or(1, |rule| rule.limit);
        let rejection = Rejection {
            scope: Scope::Organization,
            kind: LimitKind::Rpm,
            limit,
            used: limit,
            requested: 1,
            retry_after: Some(retry_after),
        };
        match self.limited(rejection, None) {
            Refusal::RateLimited(mut limited) => {
                limited.scripted = true;
                Refusal::RateLimited(limited)
            }
            other => other,
        }
    }

    /// Records what a served request cost, for budgets and `insufficient_quota`.
    pub fn record_spend(&mut self, caller: &Caller<'_>, model: &str, input: u64, output: u64) {
        let cost = self.prices.cost_usd(model, input, output);
        self.organization(caller.organization).spent_usd += cost;
    }

    /// Changes the tier of one organization, or the default tier when `organization` is absent.
    pub fn set_tier(&mut self, organization: Option<&str>, tier: &str) -> Result<(), String> {
        self.catalog.tier(tier).map_err(|error| error.to_string())?;
        match organization {
            None => self.default_tier = Some(tier.to_owned()),
            Some(id) => self.organization(id).tier = Some(tier.to_owned()),
        }
        self.compiled.clear();
        Ok(())
    }

    /// Sets (or with `None` removes) the limits of `model` for an organization (the default one
    /// when absent) or one of its projects. Buckets whose limits change start afresh.
    pub fn set_limits(
        &mut self,
        organization: Option<&str>,
        project: Option<&str>,
        model: &str,
        set: Option<ConfiguredLimits>,
    ) -> Result<(), String> {
        self.check_model(model, "model")?;
        let organization_id = organization.unwrap_or(DEFAULT_ORGANIZATION);
        match project {
            None => {
                if let Some(set) = &set {
                    set.resolve(&self.options)
                        .compile()
                        .map_err(|error| format!("limits: {error}"))?;
                }
                let organization = self.organization(organization_id);
                match set {
                    Some(set) => organization.limits.insert(model.to_owned(), set),
                    None => organization.limits.remove(model),
                };
            }
            Some(project) => {
                let written = set
                    .as_ref()
                    .map(|set| self.written(set, "limits"))
                    .transpose()?;
                let new_project_id = if self
                    .organization(organization_id)
                    .projects
                    .contains_key(project)
                {
                    None
                } else {
                    Some(self.issue_bucket_id())
                };
                let entry = self
                    .organization(organization_id)
                    .projects
                    .entry(project.to_owned())
                    .or_insert_with(|| Project {
                        bucket_id: new_project_id.unwrap_or_default(),
                        limits: HashMap::new(),
                    });
                match written {
                    Some(written) => entry.limits.insert(model.to_owned(), written),
                    None => entry.limits.remove(model),
                };
            }
        }
        self.compiled.clear();
        Ok(())
    }

    /// Forgets all usage: every bucket full, every budget unspent.
    pub fn reset(&mut self) {
        self.limiter.clear();
        for organization in self.organizations.values_mut() {
            organization.spent_usd = 0.0;
        }
    }

    /// Tiers, limits and spend as JSON for `GET /_admin/state`. Each limit set written for an
    /// organization or project shows its figures with the limiter options it is enforced
    /// with: its own where it writes them, `[limiter]`'s elsewhere.
    pub fn snapshot(&self) -> serde_json::Value {
        let organizations: BTreeMap<&str, serde_json::Value> = self
            .organizations
            .iter()
            .map(|(id, organization)| {
                let limits: BTreeMap<&String, LimitSet> = organization
                    .limits
                    .iter()
                    .map(|(model, set)| (model, set.resolve(&self.options)))
                    .collect();
                let projects: BTreeMap<&str, BTreeMap<&String, LimitSet>> = organization
                    .projects
                    .iter()
                    .map(|(project, entry)| {
                        let sets = entry
                            .limits
                            .iter()
                            .map(|(model, written)| {
                                (model, written.configured.resolve(&self.options))
                            })
                            .collect();
                        (project.as_str(), sets)
                    })
                    .collect();
                let value = serde_json::json!({
                    "tier": organization.tier.as_deref().or(self.default_tier.as_deref()),
                    "spent_usd": organization.spent_usd,
                    "spend_cap_usd": self.spend_cap_usd(organization),
                    "limits": limits,
                    "projects": projects,
                });
                (id.as_str(), value)
            })
            .collect();
        serde_json::json!({
            "default_tier": self.default_tier,
            "catalog": { "version": self.catalog.version, "date": self.catalog.date },
            "limiter": self.options,
            "organizations": organizations,
        })
    }
}

/// `change` written over `base`: its figures and written options win.
fn merge(base: &ConfiguredLimits, change: &ConfiguredLimits) -> ConfiguredLimits {
    let mut merged = base.clone();
    for kind in LimitKind::ALL {
        if let Some(value) = change.set.get(kind) {
            merged.set.set(kind, Some(value));
        }
    }
    if change.written.algorithm {
        merged.set.algorithm = change.set.algorithm;
        merged.written.algorithm = true;
    }
    if change.written.quantum_ms {
        merged.set.quantum_ms = change.set.quantum_ms;
        merged.written.quantum_ms = true;
    }
    if change.written.rejected_requests {
        merged.set.rejected_requests = change.set.rejected_requests;
        merged.written.rejected_requests = true;
    }
    if change.written.token_charge {
        merged.set.token_charge = change.set.token_charge;
        merged.written.token_charge = true;
    }
    merged
}

fn to_instant(now: Duration) -> Instant {
    Instant::from_nanos(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
}
