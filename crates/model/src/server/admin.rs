//! What the admin API and the executors change on a running model: spend booked for served
//! requests, tiers and limits set at runtime, a reset, and the state as JSON.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use quota::LimitSet;

use crate::config::{ConfiguredLimits, DEFAULT_ORGANIZATION};
use crate::error::ModelError;
use crate::pricing::Price;

use super::*;

impl ServerModel {
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

    /// Whether spend may have decided a request: whether any decision so far found its
    /// organization's spend within [`SPEND_WATCH_MARGIN`] of its cap (or over it), or started a
    /// new 30-day spend period. While it is `false`, every decision found every organization
    /// comfortably under its cap, so booking a success's spend earlier or later (the simulator
    /// books it at admission when it merges the success's completion there) decided nothing
    /// differently.
    pub fn spend_may_have_bound(&self) -> bool {
        self.spend_watched
    }

    /// Hands back a reply's statuses once read, so the next reply that reports them fills
    /// this memory instead of allocating: the simulator does, for strategies that read the
    /// `x-ratelimit-*` headers. Optional; a caller that keeps its statuses loses nothing.
    pub fn recycle_statuses(&mut self, statuses: Vec<quota::LimitStatus>) {
        if statuses.capacity() > self.spare_statuses.capacity() {
            self.spare_statuses = statuses;
        }
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
