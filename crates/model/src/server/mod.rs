//! `ServerModel`: the fate of one request, decided from (config, server time, caller, cost,
//! RNG) with no clock and no I/O. The simulator's event loop and the mock server's handlers
//! both call [`ServerModel::decide`]; the server only parses HTTP around it and writes bytes.
//!
//! In order, a request meets: a fault (a script step for its key, the timeline's window in
//! force, then the rates), its organization's spend cap, then admission by quota's limiter
//! over the organization's and (when it has limits) the project's scope, in the pool of its
//! model (gpt-4.1 prompts over 128k tokens draw from the long-context pool).

mod accounts;
mod admin;
mod admission;
mod reply;

use std::time::Duration;

use hashbrown::HashMap;
use quota::{Catalog, HolderSlot, Instant, SlotLimiter};

use crate::config::{ConfiguredLimits, HeaderPolicy, ServerConfig};
use crate::error::{ModelError, ModelErrorKind};
use crate::faults::Faults;
use crate::latency::{LatencyConfig, LatencyNanos};
use crate::pricing::PriceTable;
use crate::timeline::Timeline;

use accounts::*;
use admission::*;
pub use admission::{RouteId, SPEND_WATCH_MARGIN};
pub use reply::*;

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
    /// Whether a decision found an organization's spend near its cap or started a new spend
    /// period: see [`ServerModel::spend_may_have_bound`].
    spend_watched: bool,
    /// Memory for the next reply's statuses, handed back by [`ServerModel::recycle_statuses`].
    spare_statuses: Vec<quota::LimitStatus>,
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
            spend_watched: false,
            spare_statuses: Vec::new(),
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

    /// The models a request may name in some tier: every catalog entry but the pools. What one
    /// organization may name at a time is [`ServerModel::offered_models`].
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
