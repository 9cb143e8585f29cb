//! Accounts: organizations, projects and their ids, the pools models draw from, spend per
//! 30-day period, and the limit set each organization enforces for a model at a time (its own,
//! else its tier's under `limits` and the timeline), compiled and cached; the models an
//! organization is offered are those that have one.

use std::time::Duration;

use hashbrown::HashMap;
use quota::{Instant, LimitKind, LimitSet};

use crate::config::{ConfiguredLimits, DEFAULT_ORGANIZATION};
use crate::error::ModelErrorKind;

use super::*;

/// Spend caps are monthly: spend starts again from zero every 30 days of server time.
pub(super) const SPEND_PERIOD: Duration = Duration::from_secs(30 * 86_400);

/// One bucket holder: an organization's pool, or a project's pool inside it, by the ids the
/// model issues. Resolved once per route to the holder's slot in the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct BucketKey {
    pub(super) organization: u32,
    pub(super) project: Option<u32>,
    pub(super) pool: u32,
}

/// A limit set as written, with its compiled form over no base (projects' sets).
#[derive(Debug, Clone)]
pub(super) struct Written {
    pub(super) configured: ConfiguredLimits,
    pub(super) compiled: quota::Limits,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Organization {
    pub(super) bucket_id: u32,
    pub(super) tier: Option<String>,
    pub(super) budget_usd: Option<f64>,
    /// Index of this organization's spend in `ServerModel::spends`, which routes keep.
    pub(super) spend: usize,
    /// Limits by model that overlay the tier's for this organization.
    pub(super) limits: HashMap<String, ConfiguredLimits>,
    pub(super) projects: HashMap<String, Project>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Project {
    pub(super) bucket_id: u32,
    pub(super) limits: HashMap<String, Written>,
}

/// What an organization has spent in the current 30-day period.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spend {
    pub(super) spent_usd: f64,
    /// The last instant of the period of `spent_usd`, compared per request rather than
    /// dividing the time. The first period, from 0, holds nothing spent: a first request in
    /// it finds what starting a period would give. The period a `u64` of nanoseconds ends in
    /// never ends.
    pub(super) period_last: Instant,
}

/// [`SPEND_PERIOD`] in nanoseconds.
pub(super) const SPEND_PERIOD_NANOS: u64 = SPEND_PERIOD.as_secs() * 1_000_000_000;

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
    pub(super) fn cap_reached(&mut self, now: Instant, cap_usd: f64) -> bool {
        if now > self.period_last {
            self.start_period(now);
        }
        self.spent_usd >= cap_usd
    }

    #[cold]
    pub(super) fn start_period(&mut self, now: Instant) {
        let period = now.as_nanos() / SPEND_PERIOD_NANOS;
        let end = (period + 1).checked_mul(SPEND_PERIOD_NANOS);
        self.period_last = Instant::from_nanos(end.map_or(u64::MAX, |end| end - 1));
        self.spent_usd = 0.0;
    }
}

/// Which enforced set a compiled-limits cache entry is: the organization's own (by bucket id)
/// or one shared by every organization of a tier, under the timeline's limits entry in force.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct SetKey {
    pub(super) organization: Option<u32>,
    pub(super) tier: Option<String>,
    pub(super) model: String,
    pub(super) timeline_limits: Option<usize>,
}

impl ServerModel {
    pub(super) fn issue_bucket_id(&mut self) -> u32 {
        // Wrapping would take four billion organizations and projects in one server.
        self.bucket_ids_issued = self.bucket_ids_issued.wrapping_add(1);
        self.bucket_ids_issued
    }

    pub(super) fn organization(&mut self, id: &str) -> &mut Organization {
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
    pub(super) fn pool(&mut self, model: &str) -> Option<u32> {
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
    pub(super) fn enforced_for(
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

    pub(super) fn set_key(&mut self, now: Duration, organization: &str, model: &str) -> SetKey {
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

    pub(super) fn enforced_set(
        &mut self,
        now: Duration,
        organization: &str,
        model: &str,
    ) -> Result<LimitSet, ModelErrorKind> {
        self.organization(organization);
        self.enforced_set_of(now, &self.organizations[organization], model)
    }

    /// The models `organization`'s requests may name at `now`, for `/v1/models`: those its
    /// tier offers (its own tier, else the timeline's, else the server's default), those it
    /// or the server writes limits for (a `custom` server's configured `model`), never the
    /// pools. Exactly the models [`ServerModel::decide`] does not answer with
    /// `model_not_found`: both read the same enforced set. An organization the model has not
    /// seen yet reads as it will on its first request, with no tier or limits of its own.
    pub fn offered_models(&self, now: Duration, organization: &str) -> Vec<String> {
        let mut models = self.model_ids();
        models.retain(|model| self.offers_model(now, organization, model));
        models
    }

    /// Whether `organization`'s requests may name `model` at `now`: one of
    /// [`ServerModel::offered_models`].
    pub fn offers_model(&self, now: Duration, organization: &str, model: &str) -> bool {
        let unseen = Organization::default();
        let entry = self.organizations.get(organization).unwrap_or(&unseen);
        self.knows_model(model) && self.enforced_set_of(now, entry, model).is_ok()
    }

    /// [`ServerModel::enforced_set`] of an organization's entry, read only.
    fn enforced_set_of(
        &self,
        now: Duration,
        entry: &Organization,
        model: &str,
    ) -> Result<LimitSet, ModelErrorKind> {
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

    pub(super) fn spend_cap_usd(&self, organization: &Organization) -> f64 {
        organization.budget_usd.unwrap_or_else(|| {
            organization
                .tier
                .as_deref()
                .or(self.default_tier.as_deref())
                .and_then(|tier| self.catalog.tier(tier).ok())
                .map_or(f64::INFINITY, |info| info.monthly_spend_cap_usd as f64)
        })
    }
}

/// `change` written over `base`: its figures and written options win.
pub(super) fn merge(base: &ConfiguredLimits, change: &ConfiguredLimits) -> ConfiguredLimits {
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::config::ServerConfig;

    fn model_of(toml: &str) -> ServerModel {
        let config = ServerConfig::from_toml_str(toml, "serve.toml").unwrap();
        ServerModel::new(&config).unwrap()
    }

    #[track_caller]
    fn check_offered(model: &ServerModel, now_s: u64, organization: &str, expect: &[&str]) {
        let offered = model.offered_models(Duration::from_secs(now_s), organization);
        assert_eq!(offered, expect, "{organization} at {now_s}s");
    }

    const FREE: [&str; 4] = [
        "gpt-3.5-turbo",
        "text-embedding-3-large",
        "text-embedding-3-small",
        "text-embedding-ada-002",
    ];

    #[test]
    fn the_models_offered_are_those_of_the_callers_tier_at_the_time() {
        let model = model_of(
            r#"
            tier = "free"
            [[timeline]]
            at = "10m"
            tier = "tier-1"
            [[organizations]]
            id = "org-paid"
            tier = "tier-1"
            projects = [{ id = "p", keys = ["sk-paid"] }]
            [[organizations]]
            id = "org-own"
            tier = "free"
            limits = { gpt-4o = { rpm = 10 } }
            projects = [{ id = "p", keys = ["sk-own"] }]
            "#,
        );
        // The server's default tier, for the default organization and one not seen yet.
        check_offered(&model, 0, DEFAULT_ORGANIZATION, &FREE);
        check_offered(&model, 0, "org-unseen", &FREE);
        // An organization's own tier, and limits an organization writes for a model.
        let paid = model.offered_models(Duration::ZERO, "org-paid");
        assert!(paid.iter().any(|id| id == "gpt-4o"), "{paid:?}");
        assert!(
            !paid.iter().any(|id| id == "gpt-4.1-long-context"),
            "{paid:?}"
        );
        let mut own = FREE.to_vec();
        own.insert(1, "gpt-4o");
        check_offered(&model, 0, "org-own", &own);
        // The timeline's upgrade, for organizations that name no tier.
        assert_eq!(
            model.offered_models(Duration::from_secs(600), "org-unseen"),
            paid
        );
        assert!(model.offers_model(Duration::from_secs(600), DEFAULT_ORGANIZATION, "gpt-4o"));
        assert!(!model.offers_model(Duration::ZERO, DEFAULT_ORGANIZATION, "gpt-4o"));
        assert!(!model.offers_model(Duration::ZERO, "org-paid", "gpt-4.1-long-context"));
    }

    #[test]
    fn a_custom_server_offers_its_configured_model() {
        let model = model_of("model = \"gpt-4o-mini\"\nlimits = { rpm = 60 }\n");
        check_offered(&model, 0, DEFAULT_ORGANIZATION, &["gpt-4o-mini"]);
    }

    #[test]
    fn a_model_not_offered_is_the_one_decide_answers_model_not_found() {
        let mut model = model_of("tier = \"free\"\n");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for name in model.model_ids() {
            let cost = Cost {
                model: &name,
                prompt_tokens: 10,
                prompt_characters: None,
                max_output_tokens: Some(10),
                choices: 1,
            };
            let reply = model.decide(Duration::ZERO, &Caller::DEFAULT, &cost, &mut rng, false);
            let not_found = matches!(reply, Reply::Refused(Refusal::ModelNotFound));
            let offered = model.offers_model(Duration::ZERO, DEFAULT_ORGANIZATION, &name);
            assert_eq!(offered, !not_found, "{name}: {reply:?}");
        }
    }

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
