//! The seam to the `quota` crate. Admission, the `x-ratelimit-*` and retry headers, the 429
//! bodies, token counting and the tier catalog all come from `quota`; this file only maps
//! organizations, projects and models onto limiter keys, applies the header switches, and
//! tracks spend for `insufficient_quota`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::HeaderMap;
use hashbrown::HashMap;
use quota::{
    Catalog, ErrorBody, Instant, LimitKind, LimitSet, LimitStatus, Limiter, ModelKind, Rejection,
    Scope, ScopedKey,
};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::config::{ConfiguredLimits, DEFAULT_ORGANIZATION, HeaderSwitches, ServerConfig};
use crate::error::{ApiError, LimitedResponse};
use crate::pricing::PriceTable;
use crate::wire::chat::ChatMessage;

/// The `[limiter]` options: applied to every limit set, the catalog's and those written per
/// organization or project, except where such a set writes the option itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimiterOptions {
    pub algorithm: quota::Algorithm,
    /// Enforce limits over this shorter period (OpenAI's quantization), e.g. 1000.
    pub quantum_ms: Option<u64>,
    pub rejected_requests: quota::RejectedRequests,
    /// How many tokens a request is charged at admission.
    pub token_charge: quota::TokenChargeRule,
}

/// gpt-4.1 inputs above this many tokens draw from the separate long-context pool.
const LONG_CONTEXT_THRESHOLD: u64 = 128_000;
const LONG_CONTEXT_MODELS: [(&str, &str); 1] = [("gpt-4.1", "gpt-4.1-long-context")];

/// Spend caps are monthly: spend starts again from zero every 30 days of server time.
const SPEND_PERIOD: Duration = Duration::from_secs(30 * 86_400);

/// Tokens of a piece of text in `model`'s encoding.
pub fn count_text(model: &str, text: &str) -> u64 {
    crate::tokenizer::count_text_tokens(model, text)
}

/// Loads the tokenizer of every model in `models` now. A tokenizer is built on first use,
/// which takes on the order of 100 ms per encoding: doing it at start keeps that pause off the
/// first request.
pub fn load_tokenizers(models: &[String]) {
    for model in models {
        count_text(model, "");
    }
}

/// Prompt tokens of a chat request, by OpenAI's counting rule.
pub fn count_chat(model: &str, messages: &[ChatMessage]) -> u64 {
    let texts: Vec<String> = messages
        .iter()
        .map(|message| {
            message
                .content
                .as_ref()
                .map(|content| content.text())
                .unwrap_or_default()
        })
        .collect();
    let counted: Vec<crate::tokenizer::CountedMessage<'_>> = messages
        .iter()
        .zip(&texts)
        .map(|(message, text)| crate::tokenizer::CountedMessage {
            role: &message.role,
            content: text,
            name: message.name.as_deref(),
        })
        .collect();
    crate::tokenizer::count_chat_prompt_tokens(model, &counted)
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

/// A model's per-request limits from the catalog, which OpenAI enforces with a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub kind: ModelKind,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
}

/// What a request asks the limiter for.
#[derive(Debug, Clone)]
pub struct Charge<'a> {
    pub model: &'a str,
    pub prompt_tokens: u64,
    /// Characters of the prompt text, the token charge's estimate; `None` where the request
    /// has no text to estimate from (token arrays, embeddings), and the count stands in.
    pub prompt_characters: Option<u64>,
    /// `max_tokens` per choice, when the request sets it.
    pub max_output_tokens: Option<u64>,
    /// `n`, at least 1.
    pub choices: u64,
}

/// One bucket holder: an organization's pool, or a project's pool inside it, by the ids
/// `Limits` issues. Plain numbers rather than shared names: building a key per request then
/// touches no reference counts, which both runtime workers would otherwise bounce between
/// their caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BucketKey {
    organization: u32,
    project: Option<u32>,
    pool: u32,
}

/// A limit set as enforced (its own options and `[limiter]`'s), with its compiled form.
#[derive(Debug, Clone)]
struct Override {
    set: LimitSet,
    compiled: quota::Limits,
}

fn compile(
    configured: &ConfiguredLimits,
    options: &LimiterOptions,
    place: &str,
) -> Result<Override, String> {
    let set = configured.resolve(options);
    let compiled = set.compile().map_err(|error| format!("{place}: {error}"))?;
    Ok(Override { set, compiled })
}

#[derive(Debug, Clone, Default)]
struct Organization {
    /// This organization's part of its bucket keys.
    bucket_id: u32,
    tier: Option<String>,
    budget_usd: Option<f64>,
    spent_usd: f64,
    /// Which 30-day spend period `spent_usd` belongs to.
    spend_period: u64,
    limits: HashMap<String, Override>,
    projects: HashMap<String, Project>,
}

/// A project with limits of its own.
#[derive(Debug, Clone, Default)]
struct Project {
    /// This project's part of its bucket keys.
    bucket_id: u32,
    limits: HashMap<String, Override>,
}

/// The limiter state of every organization and project, plus spend.
#[derive(Debug)]
pub struct Limits {
    catalog: Catalog,
    switches: HeaderSwitches,
    options: LimiterOptions,
    default_tier: String,
    organizations: HashMap<String, Organization>,
    /// Compiled catalog limits by tier, then model (nested so lookups borrow, not allocate).
    compiled: HashMap<String, HashMap<String, quota::Limits>>,
    /// Each model's pool, by id: models that share a pool share the id.
    pools: HashMap<String, u32>,
    /// The id of each pool name.
    pool_ids: HashMap<String, u32>,
    /// Bucket ids handed out to organizations and projects so far.
    bucket_ids_issued: u32,
    prices: PriceTable,
    limiter: Limiter<BucketKey>,
}

impl Limits {
    /// Builds the limiter from a config, with errors naming the config field.
    pub fn from_config(config: &ServerConfig) -> Result<Limits, String> {
        let catalog = build_catalog(config)?;
        catalog
            .tier(&config.tier)
            .map_err(|error| format!("tier: {error}"))?;
        let mut limits = Limits {
            catalog,
            switches: config.headers,
            options: config.limiter,
            default_tier: config.tier.clone(),
            organizations: HashMap::new(),
            compiled: HashMap::new(),
            pools: HashMap::new(),
            pool_ids: HashMap::new(),
            bucket_ids_issued: 0,
            prices: PriceTable::new(&config.prices),
            limiter: Limiter::new(),
        };
        for (org_index, configured) in config.organizations.iter().enumerate() {
            let place = format!("organizations[{org_index}]");
            if let Some(tier) = &configured.tier {
                limits
                    .catalog
                    .tier(tier)
                    .map_err(|error| format!("{place}.tier: {error}"))?;
            }
            let mut organization = Organization {
                bucket_id: limits.issue_bucket_id(),
                tier: configured.tier.clone(),
                budget_usd: configured.budget_usd,
                ..Organization::default()
            };
            for (model, set) in &configured.limits {
                limits.check_model(model, &format!("{place}.limits"))?;
                let compiled = compile(set, &config.limiter, &format!("{place}.limits.{model}"))?;
                organization.limits.insert(model.clone(), compiled);
            }
            for (project_index, project) in configured.projects.iter().enumerate() {
                let project_place = format!("{place}.projects[{project_index}].limits");
                let mut project_limits = HashMap::new();
                for (model, set) in &project.limits {
                    limits.check_model(model, &project_place)?;
                    let compiled =
                        compile(set, &config.limiter, &format!("{project_place}.{model}"))?;
                    project_limits.insert(model.clone(), compiled);
                }
                let entry = Project {
                    bucket_id: limits.issue_bucket_id(),
                    limits: project_limits,
                };
                organization.projects.insert(project.id.clone(), entry);
            }
            limits
                .organizations
                .insert(configured.id.clone(), organization);
        }
        Ok(limits)
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

    /// The models a request may name, for `/v1/models`: every catalog entry but the pools.
    pub fn model_ids(&self) -> Vec<String> {
        self.catalog
            .models
            .iter()
            .filter(|(_, entry)| entry.is_model())
            .map(|(name, _)| name.clone())
            .collect()
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

    /// The names of every model the catalog offers.
    pub fn model_names(&self) -> Vec<String> {
        self.catalog.models.keys().cloned().collect()
    }

    /// A fresh organization or project id for bucket keys.
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

    /// The organization's limits for `model` in its tier, or `None` when the tier does not
    /// offer the model.
    fn organization_limits(&mut self, organization: &str, model: &str) -> Option<quota::Limits> {
        let options = self.options;
        self.organization(organization);
        let entry = &self.organizations[organization];
        if let Some(found) = entry.limits.get(model) {
            return Some(found.compiled.clone());
        }
        let tier = entry.tier.as_deref().unwrap_or(&self.default_tier);
        if let Some(found) = self.compiled.get(tier).and_then(|models| models.get(model)) {
            return Some(found.clone());
        }
        let tier = tier.to_owned();
        let set = LimitSet {
            algorithm: options.algorithm,
            quantum_ms: options.quantum_ms,
            rejected_requests: options.rejected_requests,
            token_charge: options.token_charge,
            ..self.catalog.limits(&tier, model).ok()?.limit_set()
        };
        // Catalog figures are positive and small, so compiling can only fail on a bad
        // `[limiter]` quantum, which config validation already rejected.
        let compiled = set.compile().ok()?;
        self.compiled
            .entry(tier)
            .or_default()
            .insert(model.to_owned(), compiled.clone());
        Some(compiled)
    }

    fn spend_cap_usd(&self, organization: &Organization) -> f64 {
        let tier = organization.tier.as_deref().unwrap_or(&self.default_tier);
        organization.budget_usd.unwrap_or_else(|| {
            self.catalog
                .tier(tier)
                .map_or(f64::INFINITY, |info| info.monthly_spend_cap_usd as f64)
        })
    }

    /// Admits the request and returns the status of every limit it was charged to (what the
    /// `x-ratelimit-*` headers report), or the error to send:
    /// 404 when the tier does not offer the model, 429 when a limit or the budget is exhausted.
    pub fn admit(
        &mut self,
        now: Duration,
        principal: &Principal,
        charge: &Charge<'_>,
    ) -> Result<Vec<LimitStatus>, ApiError> {
        let organization_id: &str = &principal.organization;
        let period = now.as_secs() / SPEND_PERIOD.as_secs();
        let organization = self.organization(organization_id);
        if organization.spend_period != period {
            organization.spend_period = period;
            organization.spent_usd = 0.0;
        }
        let spent = organization.spent_usd;
        let cap = self.spend_cap_usd(&self.organizations[organization_id]);
        if spent >= cap {
            return Err(self.insufficient_quota());
        }
        let model = LONG_CONTEXT_MODELS
            .iter()
            .find(|(base, long)| {
                *base == charge.model
                    && charge.prompt_tokens > LONG_CONTEXT_THRESHOLD
                    && self.catalog.models.contains_key(*long)
            })
            .map_or(charge.model, |(_, long)| *long);
        let not_found = || ApiError::ModelNotFound {
            model: charge.model.to_owned(),
        };
        let pool = self.pool(model).ok_or_else(not_found)?;
        let organization_limits = self
            .organization_limits(organization_id, model)
            .ok_or_else(not_found)?;
        let organization = &self.organizations[organization_id];
        let project = organization.projects.get(&*principal.project);
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
        let now = to_instant(now);
        // The organization's rule: `[limiter]`'s unless its limit set writes its own.
        let tokens = organization_limits
            .token_charge()
            .tokens(&quota::RequestSize {
                prompt_characters: charge.prompt_characters,
                prompt_tokens: Some(charge.prompt_tokens),
                max_output_tokens: charge.max_output_tokens,
                choices: charge.choices,
            });
        match self
            .limiter
            .decide(now, quota::Charge::request(tokens), scopes)
        {
            Ok(admitted) => Ok(admitted.statuses),
            Err(quota::Rejected {
                rejection,
                statuses,
            }) => {
                // The headers describe the limits as the request found them, as the body does.
                let statuses = self.switches.rate_limit_headers_on_429.then_some(statuses);
                Err(self.limited(&rejection, charge.model, principal, statuses.as_deref()))
            }
        }
    }

    /// The 429 for a rejection, with the headers the switches allow.
    fn limited(
        &self,
        rejection: &Rejection,
        model: &str,
        principal: &Principal,
        statuses: Option<&[LimitStatus]>,
    ) -> ApiError {
        let body = ErrorBody::rate_limit(
            rejection,
            model,
            &principal.organization,
            Some(&principal.project),
        );
        let mut headers = HeaderMap::new();
        for (name, value) in quota::retry_headers(rejection) {
            let wanted = match name {
                quota::header_names::RETRY_AFTER => self.switches.retry_after,
                quota::header_names::RETRY_AFTER_MS => self.switches.retry_after_ms,
                _ => true,
            };
            if wanted {
                crate::headers::insert_header(&mut headers, name, value);
            }
        }
        if let Some(statuses) = statuses {
            crate::headers::insert_rate_limit_headers(&mut headers, statuses);
        }
        let exhausted = if rejection.is_request_too_large() {
            "request_too_large".to_owned()
        } else {
            let scope = match rejection.scope {
                Scope::Organization => "",
                Scope::Project => "project_",
            };
            format!("{scope}{}", rejection.kind.abbreviation().to_lowercase())
        };
        ApiError::Limited(Box::new(LimitedResponse {
            error: body.error,
            headers,
            exhausted,
        }))
    }

    /// Records what a served request cost, for budgets and `insufficient_quota`.
    pub fn record_spend(&mut self, principal: &Principal, model: &str, input: u64, output: u64) {
        let cost = self.prices.cost_usd(model, input, output);
        self.organization(&principal.organization).spent_usd += cost;
    }

    /// The 429 a scripted `rate_limited` fault sends: an RPM rejection at the organization's
    /// real RPM figure, waiting `retry_after`.
    pub fn scripted_rate_limit(
        &mut self,
        principal: &Principal,
        model: &str,
        retry_after: Duration,
    ) -> ApiError {
        let limit = self
            .organization_limits(&principal.organization, model)
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
        self.limited(&rejection, model, principal, None)
    }

    /// The `insufficient_quota` 429; it carries no retry headers because waiting never helps.
    pub fn insufficient_quota(&self) -> ApiError {
        ApiError::Limited(Box::new(LimitedResponse {
            error: ErrorBody::insufficient_quota().error,
            headers: HeaderMap::new(),
            exhausted: "insufficient_quota".to_owned(),
        }))
    }

    /// Changes the tier of one organization, or the default tier when `organization` is absent.
    pub fn set_tier(&mut self, organization: Option<&str>, tier: &str) -> Result<(), String> {
        self.catalog.tier(tier).map_err(|error| error.to_string())?;
        match organization {
            None => self.default_tier = tier.to_owned(),
            Some(id) => self.organization(id).tier = Some(tier.to_owned()),
        }
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
        let options = self.options;
        let compiled = set
            .map(|set| compile(&set, &options, "limits"))
            .transpose()?;
        let organization_id = organization.unwrap_or(DEFAULT_ORGANIZATION);
        let new_project_id = match project {
            Some(project)
                if !self
                    .organization(organization_id)
                    .projects
                    .contains_key(project) =>
            {
                Some(self.issue_bucket_id())
            }
            _ => None,
        };
        let organization = self.organization(organization_id);
        let models = match project {
            None => &mut organization.limits,
            Some(project) => {
                let entry = organization
                    .projects
                    .entry(project.to_owned())
                    .or_insert_with(|| Project {
                        bucket_id: new_project_id.unwrap_or_default(),
                        limits: HashMap::new(),
                    });
                &mut entry.limits
            }
        };
        match compiled {
            Some(compiled) => models.insert(model.to_owned(), compiled),
            None => models.remove(model),
        };
        Ok(())
    }

    /// Forgets all usage: every bucket full, every budget unspent.
    pub fn reset(&mut self) {
        self.limiter.clear();
        for organization in self.organizations.values_mut() {
            organization.spent_usd = 0.0;
        }
    }

    /// Tiers, overrides and spend as JSON for `GET /_admin/state`.
    pub fn snapshot(&self) -> serde_json::Value {
        let sets = |models: &HashMap<String, Override>| -> BTreeMap<String, LimitSet> {
            models
                .iter()
                .map(|(model, found)| (model.clone(), found.set.clone()))
                .collect()
        };
        let organizations: BTreeMap<&str, serde_json::Value> = self
            .organizations
            .iter()
            .map(|(id, organization)| {
                let projects: BTreeMap<&str, BTreeMap<String, LimitSet>> = organization
                    .projects
                    .iter()
                    .map(|(project, entry)| (project.as_str(), sets(&entry.limits)))
                    .collect();
                let value = serde_json::json!({
                    "tier": organization.tier.as_deref().unwrap_or(&self.default_tier),
                    "spent_usd": organization.spent_usd,
                    "spend_cap_usd": self.spend_cap_usd(organization),
                    "limits": sets(&organization.limits),
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

fn to_instant(now: Duration) -> Instant {
    Instant::from_nanos(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
}
