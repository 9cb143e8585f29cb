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
    Catalog, ErrorBody, HolderSlot, Instant, LimitKind, LimitSet, LimitStatus, ModelKind,
    Rejection, Scope, ScopedKey, SlotLimiter,
};
use rand::Rng;

use crate::config::{ConfiguredLimits, DEFAULT_ORGANIZATION, HeaderPolicy, ServerConfig};
use crate::error::{ModelError, ModelErrorKind};
use crate::faults::{DEFAULT_HANG, Fault, Faults};
use crate::latency::{LatencyConfig, LatencyNanos};
use crate::pricing::{Price, PriceTable};
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
    #[inline]
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
    RateLimited(RateLimited),
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
/// model issues. Resolved once per route to the holder's slot in the limiter.
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
    /// Index of this organization's spend in `ServerModel::spends`, which routes keep.
    spend: usize,
    /// Limits by model that overlay the tier's for this organization.
    limits: HashMap<String, ConfiguredLimits>,
    projects: HashMap<String, Project>,
}

#[derive(Debug, Clone, Default)]
struct Project {
    bucket_id: u32,
    limits: HashMap<String, Written>,
}

/// What an organization has spent in the current 30-day period.
#[derive(Debug, Clone, Copy)]
struct Spend {
    spent_usd: f64,
    /// The last instant of the period of `spent_usd`, compared per request rather than
    /// dividing the time. The first period, from 0, holds nothing spent: a first request in
    /// it finds what starting a period would give. The period a `u64` of nanoseconds ends in
    /// never ends.
    period_last: Instant,
}

/// [`SPEND_PERIOD`] in nanoseconds.
const SPEND_PERIOD_NANOS: u64 = SPEND_PERIOD.as_secs() * 1_000_000_000;

impl Default for Spend {
    fn default() -> Spend {
        Spend {
            spent_usd: 0.0,
            period_last: Instant::from_nanos(SPEND_PERIOD_NANOS - 1),
        }
    }
}

impl Spend {
    /// Whether the spend of the period holding `now` has reached `cap_usd`; a new period
    /// starts from zero.
    #[inline]
    fn cap_reached(&mut self, now: Instant, cap_usd: f64) -> bool {
        if now > self.period_last {
            self.start_period(now);
        }
        self.spent_usd >= cap_usd
    }

    #[cold]
    fn start_period(&mut self, now: Instant) {
        let period = now.as_nanos() / SPEND_PERIOD_NANOS;
        let end = (period + 1).checked_mul(SPEND_PERIOD_NANOS);
        self.period_last = Instant::from_nanos(end.map_or(u64::MAX, |end| end - 1));
        self.spent_usd = 0.0;
    }
}

/// A resolved (organization, project, model), so that [`ServerModel::decide_routed`] finds
/// what a request needs without looking names up: issued by [`ServerModel::route`], valid for
/// the model's lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RouteId(u32);

#[derive(Debug)]
struct Route {
    organization: String,
    project: String,
    model: String,
    spend: usize,
    /// What the route enforces, for one (admin generation, timeline epoch).
    cache: Option<RouteCache>,
}

#[derive(Debug)]
struct RouteCache {
    stamp: (u64, usize),
    organization_slot: HolderSlot,
    project_slot: HolderSlot,
    organization_limits: quota::Limits,
    project_limits: Option<quota::Limits>,
    spend_cap_usd: f64,
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
    /// `latency` in nanoseconds, for [`ServerModel::latency_nanos_at`].
    latency_nanos: LatencyNanos,
    timeline: Timeline,
    faults: Faults,
    organizations: HashMap<String, Organization>,
    spends: Vec<Spend>,
    routes: Vec<Route>,
    /// Route ids by organization, project and model.
    route_ids: HashMap<String, HashMap<String, HashMap<String, RouteId>>>,
    /// Bumped by every admin change, so routes recompute what they enforce.
    generation: u64,
    /// Compiled enforced sets (see [`SetKey`]).
    compiled: HashMap<SetKey, quota::Limits>,
    /// Each model's pool id: models that share a pool share the id.
    pools: HashMap<String, u32>,
    pool_ids: HashMap<String, u32>,
    bucket_ids_issued: u32,
    prices: PriceTable,
    /// Every bucket holder's state, by the slot `holder_slots` gives it.
    limiter: SlotLimiter,
    /// The slot of each bucket holder a route has named: issued in order, never reused, so
    /// the limiter's memory follows the holders that exist, not the requests.
    holder_slots: HashMap<BucketKey, HolderSlot>,
}

/// The built-in catalog with the config's `[catalog]` overrides applied.
pub fn build_catalog(config: &ServerConfig) -> Result<Catalog, ModelError> {
    let mut catalog = Catalog::builtin();
    if let Some(overrides) = &config.catalog {
        // A table read from TOML always writes back as TOML.
        let text = toml::to_string(overrides).unwrap_or_default();
        catalog
            .apply_overrides_toml(&text)
            .map_err(|error| ModelError::at("catalog", error))?;
    }
    Ok(catalog)
}

impl ServerModel {
    /// Builds the model from a config, with errors naming the config field.
    pub fn new(config: &ServerConfig) -> Result<ServerModel, ModelError> {
        let catalog = build_catalog(config)?;
        let tier_known = |tier: &str, place: &str| {
            catalog
                .tier(tier)
                .map(drop)
                .map_err(|error| ModelError::at(place, error))
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
                return Err(ModelError::at(
                    format!("timeline[{index}].limits"),
                    ModelErrorKind::LimitsNeedModel,
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
            latency_nanos: config.latency.nanos(),
            timeline: Timeline::new(&config.timeline),
            faults: Faults::new(&config.faults),
            organizations: HashMap::new(),
            spends: Vec::new(),
            routes: Vec::new(),
            route_ids: HashMap::new(),
            generation: 0,
            compiled: HashMap::new(),
            pools: HashMap::new(),
            pool_ids: HashMap::new(),
            bucket_ids_issued: 0,
            prices: PriceTable::new(&config.prices),
            limiter: SlotLimiter::new(),
            holder_slots: HashMap::new(),
        };
        if let Some(name) = &config.model {
            model.check_model(name, "model")?;
            if !model.knows_model(name) {
                return Err(ModelError::at(
                    "model",
                    ModelErrorKind::PoolNotModel {
                        model: name.clone(),
                    },
                ));
            }
        }
        for (org_index, configured) in config.organizations.iter().enumerate() {
            let place = format!("organizations[{org_index}]");
            let mut organization = Organization {
                bucket_id: model.issue_bucket_id(),
                tier: configured.tier.clone(),
                budget_usd: configured.budget_usd,
                spend: model.spends.len(),
                ..Organization::default()
            };
            model.spends.push(Spend::default());
            for (name, set) in &configured.limits {
                model.check_model(name, &format!("{place}.limits"))?;
                set.resolve(&model.options)
                    .compile()
                    .map_err(|error| ModelError::at(format!("{place}.limits.{name}"), error))?;
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
                    .map_err(|error| ModelError::at("limits", error))?;
            }
        }
        Ok(model)
    }

    fn written(&self, set: &ConfiguredLimits, place: &str) -> Result<Written, ModelError> {
        let compiled = set
            .resolve(&self.options)
            .compile()
            .map_err(|error| ModelError::at(place, error))?;
        Ok(Written {
            configured: set.clone(),
            compiled,
        })
    }

    /// Config and admin changes may name any catalog entry, pools included: limits can be set
    /// for gpt-4.1's long-context pool.
    fn check_model(&self, model: &str, place: &str) -> Result<(), ModelError> {
        if self.catalog.models.contains_key(model) {
            return Ok(());
        }
        Err(ModelError::at(
            place,
            ModelErrorKind::UnknownModel {
                model: model.to_owned(),
                known: self.catalog.models.keys().cloned().collect(),
            },
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
    #[inline]
    pub fn latency_at(&self, now: Duration) -> &LatencyConfig {
        self.timeline.latency(now).unwrap_or(&self.latency)
    }

    /// [`ServerModel::latency_at`] in nanoseconds, at the limiter's instant: the simulator's
    /// per-attempt call, which converts nothing unless the timeline has entries.
    #[inline]
    pub fn latency_nanos_at(&self, now: Instant) -> LatencyNanos {
        if self.timeline.is_empty() {
            self.latency_nanos
        } else {
            self.latency_at(since_start(now)).nanos()
        }
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
                spend: self.spends.len(),
                ..Organization::default()
            };
            self.spends.push(Spend::default());
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
    ) -> Result<quota::Limits, ModelErrorKind> {
        let key = self.set_key(now, organization, model);
        if let Some(found) = self.compiled.get(&key) {
            return Ok(found.clone());
        }
        let set = self.enforced_set(now, organization, model)?;
        let compiled = set.compile()?;
        self.compiled.insert(key, compiled.clone());
        Ok(compiled)
    }

    fn set_key(&mut self, now: Duration, organization: &str, model: &str) -> SetKey {
        self.organization(organization);
        let entry = &self.organizations[organization];
        let own = entry.limits.contains_key(model);
        let scenario_model = self.model.as_deref() == Some(model);
        SetKey {
            organization: own.then_some(entry.bucket_id),
            tier: entry
                .tier
                .clone()
                .or_else(|| self.timeline.tier(now).map(str::to_owned))
                .or_else(|| self.default_tier.clone()),
            model: model.to_owned(),
            timeline_limits: (!own && scenario_model)
                .then(|| self.timeline.limits(now).map(|(index, _)| index))
                .flatten(),
        }
    }

    /// The limit set of `model` that organizations naming no tier or limits of their own
    /// enforce at `now`: the tier's figures under `limits` and the timeline, with the
    /// limiter's options. What a report prints as a server variant's limits.
    pub fn limits_at(&mut self, now: Duration, model: &str) -> Result<LimitSet, ModelErrorKind> {
        self.enforced_set(now, DEFAULT_ORGANIZATION, model)
    }

    fn enforced_set(
        &mut self,
        now: Duration,
        organization: &str,
        model: &str,
    ) -> Result<LimitSet, ModelErrorKind> {
        self.organization(organization);
        let entry = &self.organizations[organization];
        let own = entry.limits.get(model);
        // The organization's own tier, else the timeline's, else the default.
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
        let base: Option<LimitSet> = match tier {
            Some(tier) => match self.catalog.limits(tier, model) {
                Ok(limits) => Some(limits.limit_set()),
                Err(error) => {
                    if own.is_none() && !(scenario_model && self.limits.is_some()) {
                        return Err(error.into());
                    }
                    None
                }
            },
            None => None,
        };
        let written: Option<ConfiguredLimits> = match (own, scenario_model) {
            (Some(own), _) => Some(own.clone()),
            (None, true) => match (&self.limits, timeline_limits) {
                (Some(limits), Some((_, change))) => Some(merge(limits, change)),
                (Some(limits), None) => Some(limits.clone()),
                (None, Some((_, change))) => Some(change.clone()),
                (None, None) => None,
            },
            (None, false) => None,
        };
        match (written, base) {
            (Some(written), base) => Ok(written.overlay(base.as_ref(), &self.options)),
            (None, Some(base)) => Ok(LimitSet {
                algorithm: self.options.algorithm,
                quantum_ms: self.options.quantum_ms,
                rejected_requests: self.options.rejected_requests,
                token_charge: self.options.token_charge,
                ..base
            }),
            (None, None) => Err(ModelErrorKind::NoLimits {
                model: model.to_owned(),
            }),
        }
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

    /// The route of `caller`'s requests to `model`, or `None` when no request may name the
    /// model. Resolve it once per caller and model, then decide with
    /// [`ServerModel::decide_routed`]: the simulator's fast path.
    pub fn route(&mut self, caller: &Caller<'_>, model: &str) -> Option<RouteId> {
        if !self.knows_model(model) {
            return None;
        }
        Some(self.route_unchecked(caller.organization, caller.project, model))
    }

    fn route_unchecked(&mut self, organization: &str, project: &str, model: &str) -> RouteId {
        if let Some(found) = self
            .route_ids
            .get(organization)
            .and_then(|projects| projects.get(project))
            .and_then(|models| models.get(model))
        {
            return *found;
        }
        let spend = self.organization(organization).spend;
        let id = RouteId(u32::try_from(self.routes.len()).unwrap_or(u32::MAX));
        self.routes.push(Route {
            organization: organization.to_owned(),
            project: project.to_owned(),
            model: model.to_owned(),
            spend,
            cache: None,
        });
        self.route_ids
            .entry(organization.to_owned())
            .or_default()
            .entry(project.to_owned())
            .or_default()
            .insert(model.to_owned(), id);
        id
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
        match self.route(caller, cost.model) {
            Some(route) => self.decide_routed(to_instant(now), route, caller, cost, rng, report),
            None => Reply::Refused(Refusal::ModelNotFound),
        }
    }

    /// [`ServerModel::decide`] for a request on `route` (from [`ServerModel::route`] with the
    /// same caller and `cost.model`): the same decision, without the name lookups. `now` is
    /// the server time as the limiter's instant, nanoseconds since the start, which is what
    /// the simulator keeps.
    #[inline]
    pub fn decide_routed(
        &mut self,
        now: Instant,
        route: RouteId,
        caller: &Caller<'_>,
        cost: &Cost<'_>,
        rng: &mut impl Rng,
        report: bool,
    ) -> Reply {
        let window = self.timeline.fault(since_start(now));
        // Checked in line: most requests of most runs meet no source of faults at all.
        let fault = if window.is_none() && self.faults.is_idle() {
            None
        } else {
            self.faults.decide(caller.key, window, rng)
        };
        let late_fault = match fault {
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
                let refusal = self.scripted_rate_limit(since_start(now), caller, cost.model, wait);
                return Reply::Refused(refusal);
            }
            Some(Fault::ConnectionReset) => Some(LateFault::ConnectionReset),
            Some(Fault::StreamError) => Some(LateFault::StreamError),
        };
        self.admit(now, route, cost, report, late_fault)
    }

    #[cold]
    #[inline(never)]
    fn recompute(
        &mut self,
        route: RouteId,
        now: Duration,
        stamp: (u64, usize),
    ) -> Result<(), Refusal> {
        let entry = &self.routes[route.0 as usize];
        let (organization, project, model) = (
            entry.organization.clone(),
            entry.project.clone(),
            entry.model.clone(),
        );
        let pool = self.pool(&model).ok_or(Refusal::ModelNotFound)?;
        let organization_limits = self
            .enforced_for(now, &organization, &model)
            .map_err(|_| Refusal::ModelNotFound)?;
        let holder = &self.organizations[organization.as_str()];
        let found = holder.projects.get(&project);
        let project_limits = found
            .and_then(|project| project.limits.get(&model))
            .map(|written| written.compiled.clone());
        let organization_key = BucketKey {
            organization: holder.bucket_id,
            project: None,
            pool,
        };
        let project_key = BucketKey {
            project: found.map(|project| project.bucket_id),
            ..organization_key
        };
        let spend_cap_usd = self.spend_cap_usd(holder);
        let organization_slot = self.holder_slot(organization_key);
        let project_slot = self.holder_slot(project_key);
        self.routes[route.0 as usize].cache = Some(RouteCache {
            stamp,
            organization_slot,
            project_slot,
            organization_limits,
            project_limits,
            spend_cap_usd,
        });
        Ok(())
    }

    /// The limiter's slot of a bucket holder, issued on first sight.
    fn holder_slot(&mut self, key: BucketKey) -> HolderSlot {
        let issued = self.holder_slots.len();
        *self
            .holder_slots
            .entry(key)
            .or_insert_with(|| HolderSlot(u32::try_from(issued).unwrap_or(u32::MAX)))
    }

    /// The spend check and the limiter. In line, with everything uncommon out of line: this is
    /// the simulator's per-attempt path.
    #[inline]
    fn admit(
        &mut self,
        now: Instant,
        route: RouteId,
        cost: &Cost<'_>,
        report: bool,
        late_fault: Option<LateFault>,
    ) -> Reply {
        let route = if cost.prompt_tokens > LONG_CONTEXT_THRESHOLD {
            self.long_context_route(route)
        } else {
            route
        };
        if let Err(refusal) = self.refresh(route, now) {
            return Reply::Refused(refusal);
        }
        let ServerModel {
            routes,
            spends,
            limiter,
            ..
        } = self;
        let entry = &routes[route.0 as usize];
        let Some(cache) = &entry.cache else {
            unreachable!("refresh filled the cache")
        };
        if spends[entry.spend].cap_reached(now, cache.spend_cap_usd) {
            return Reply::Refused(Refusal::InsufficientQuota);
        }
        let organization_scope = ScopedKey {
            scope: Scope::Organization,
            key: &cache.organization_slot,
            limits: &cache.organization_limits,
        };
        // Both scopes live on the stack: no allocation for the usual one or two.
        let both_scopes;
        let scopes: &[ScopedKey<'_, HolderSlot>] = match &cache.project_limits {
            None => std::slice::from_ref(&organization_scope),
            Some(limits) => {
                both_scopes = [
                    organization_scope,
                    ScopedKey {
                        scope: Scope::Project,
                        key: &cache.project_slot,
                        limits,
                    },
                ];
                &both_scopes
            }
        };
        // The organization's rule: `[limiter]`'s unless its limit set writes its own.
        let tokens = cache
            .organization_limits
            .token_charge()
            .tokens(&cost.size());
        let charge = quota::Charge::request(tokens);
        if report {
            return admit_reporting(limiter, self.headers, now, charge, scopes, late_fault);
        }
        match limiter.try_acquire(now, charge, scopes) {
            Ok(()) => Reply::Admitted(Admission {
                statuses: Vec::new(),
                late_fault,
            }),
            Err(rejection) => Reply::Refused(limited(self.headers, rejection, None)),
        }
    }

    /// Brings the route's cache to what it enforces at `now`: what a route enforces is cached
    /// per (admin generation, timeline epoch).
    #[inline]
    fn refresh(&mut self, route: RouteId, now: Instant) -> Result<(), Refusal> {
        let stamp = (self.generation, self.timeline.epoch(since_start(now)));
        let entry = &self.routes[route.0 as usize];
        if entry
            .cache
            .as_ref()
            .is_some_and(|cache| cache.stamp == stamp)
        {
            return Ok(());
        }
        self.recompute(route, since_start(now), stamp)
    }

    /// The route of the long-context pool's model for a prompt over the threshold on `route`,
    /// when its model has one; else `route`.
    #[cold]
    #[inline(never)]
    fn long_context_route(&mut self, route: RouteId) -> RouteId {
        let entry = &self.routes[route.0 as usize];
        match LONG_CONTEXT_MODELS
            .iter()
            .find(|(base, long)| *base == entry.model && self.catalog.models.contains_key(*long))
        {
            Some((_, long)) => {
                let (organization, project) = (entry.organization.clone(), entry.project.clone());
                self.route_unchecked(&organization, &project, long)
            }
            None => route,
        }
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
        match limited(self.headers, rejection, None) {
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
        let spend = self.organization(caller.organization).spend;
        self.spends[spend].spent_usd += cost;
    }

    /// [`ServerModel::record_spend`] for a request on `route`, with the price of a million
    /// input and output tokens (from [`ServerModel::price`]) looked up once by the caller.
    pub fn record_spend_routed(&mut self, route: RouteId, price: Price, input: u64, output: u64) {
        let spend = self.routes[route.0 as usize].spend;
        self.spends[spend].spent_usd += price.cost_usd(input, output);
    }

    /// The list price of `model`.
    pub fn price(&self, model: &str) -> Price {
        self.prices.price(model)
    }

    /// Changes the tier of one organization, or the default tier when `organization` is absent.
    pub fn set_tier(&mut self, organization: Option<&str>, tier: &str) -> Result<(), ModelError> {
        self.catalog
            .tier(tier)
            .map_err(|error| ModelError::at("tier", error))?;
        match organization {
            None => self.default_tier = Some(tier.to_owned()),
            Some(id) => self.organization(id).tier = Some(tier.to_owned()),
        }
        self.compiled.clear();
        self.generation += 1;
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
    ) -> Result<(), ModelError> {
        self.check_model(model, "model")?;
        let organization_id = organization.unwrap_or(DEFAULT_ORGANIZATION);
        match project {
            None => {
                if let Some(set) = &set {
                    set.resolve(&self.options)
                        .compile()
                        .map_err(|error| ModelError::at("limits", error))?;
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
        self.generation += 1;
        Ok(())
    }

    /// Forgets all usage: every bucket full, every budget unspent.
    pub fn reset(&mut self) {
        self.limiter.clear();
        for spend in &mut self.spends {
            spend.spent_usd = 0.0;
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
                    "spent_usd": self.spends[organization.spend].spent_usd,
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

/// [`ServerModel::admit`]'s limiter check when the caller asked for the limits' statuses.
#[inline(never)]
fn admit_reporting(
    limiter: &mut SlotLimiter,
    headers: HeaderPolicy,
    now: Instant,
    charge: quota::Charge,
    scopes: &[ScopedKey<'_, HolderSlot>],
    late_fault: Option<LateFault>,
) -> Reply {
    let mut found = Vec::new();
    match limiter.try_acquire_reporting(now, charge, scopes, Some(&mut found)) {
        Ok(()) => Reply::Admitted(Admission {
            // Read after the charge, and only when the policy sends them on successes.
            statuses: if headers.rate_limit.on_success() {
                limiter.status(now, scopes)
            } else {
                Vec::new()
            },
            late_fault,
        }),
        Err(rejection) => Reply::Refused(limited(headers, rejection, Some(found))),
    }
}

/// The 429 of a rejection, with what the header policy lets it carry.
fn limited(
    headers: HeaderPolicy,
    rejection: Rejection,
    found: Option<Vec<LimitStatus>>,
) -> Refusal {
    let wait = rejection.retry_after;
    Refusal::RateLimited(RateLimited {
        retry_after_seconds: wait
            .filter(|_| headers.retry_after)
            .map(quota::retry_after_seconds),
        retry_after_ms: wait
            .filter(|_| headers.retry_after_ms)
            .map(quota::retry_after_millis),
        statuses: found.filter(|_| headers.rate_limit.on_429()),
        rejection,
        scripted: false,
    })
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

/// Server time as the limiter's instant, saturating at 584 years.
fn to_instant(now: Duration) -> Instant {
    Instant::from_nanos(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
}

/// The limiter's instant as server time: for the timeline, whose checks come first in line
/// and return at once when it is empty, so the conversion is only paid where it is read.
#[inline]
fn since_start(now: Instant) -> Duration {
    Duration::from_nanos(now.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_starts_from_zero_every_thirty_days_and_the_last_period_never_ends() {
        let day = 86_400_000_000_000u64;
        let at = Instant::from_nanos;
        let mut spend = Spend::default();
        assert!(!spend.cap_reached(at(0), 10.0));
        spend.spent_usd = 10.0;
        assert!(spend.cap_reached(at(30 * day - 1), 10.0));
        assert!(!spend.cap_reached(at(30 * day), 10.0), "a new period");
        spend.spent_usd = 10.0;
        assert!(spend.cap_reached(at(59 * day), 10.0));
        // A first request late in time starts its own period, as one at zero does.
        let mut late = Spend::default();
        assert!(!late.cap_reached(at(100 * day), 10.0));
        assert_eq!(late.period_last, at(120 * day - 1));
        // The period holding u64::MAX nanoseconds ends past them: spend there is never reset.
        assert!(
            !late.cap_reached(at(u64::MAX - day), 10.0),
            "the last period"
        );
        assert_eq!(late.period_last, at(u64::MAX));
        late.spent_usd = 10.0;
        assert!(late.cap_reached(at(u64::MAX), 10.0));
    }
}
