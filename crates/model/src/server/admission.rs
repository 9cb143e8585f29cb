//! Admission: a request's route (organization, project, model, resolved once and cached per
//! admin generation and timeline epoch), the fault decision, the spend cap, and quota's limiter
//! over the organization's and the project's scope, into a `Reply`.

use std::time::Duration;

use quota::{
    HolderSlot, Instant, LimitKind, LimitStatus, Rejection, Scope, ScopedKey, SlotLimiter,
};
use rand::Rng;

use crate::config::HeaderPolicy;
use crate::faults::{DEFAULT_HANG, Fault};

use super::*;

/// gpt-4.1 inputs above this many tokens draw from the separate long-context pool.
pub(super) const LONG_CONTEXT_THRESHOLD: u64 = 128_000;

pub(super) const LONG_CONTEXT_MODELS: [(&str, &str); 1] = [("gpt-4.1", "gpt-4.1-long-context")];

/// A resolved (organization, project, model), so that [`ServerModel::decide_routed`] finds
/// what a request needs without looking names up: issued by [`ServerModel::route`], valid for
/// the model's lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RouteId(pub(super) u32);

#[derive(Debug)]
pub(super) struct Route {
    pub(super) organization: String,
    pub(super) project: String,
    pub(super) model: String,
    pub(super) spend: usize,
    /// What the route enforces, for one (admin generation, timeline epoch).
    pub(super) cache: Option<RouteCache>,
}

#[derive(Debug)]
pub(super) struct RouteCache {
    pub(super) stamp: (u64, usize),
    pub(super) organization_slot: HolderSlot,
    pub(super) project_slot: HolderSlot,
    pub(super) organization_limits: quota::Limits,
    pub(super) project_limits: Option<quota::Limits>,
    pub(super) spend_cap_usd: f64,
    /// `spend_cap_usd` less [`SPEND_WATCH_MARGIN`] of it: spend from here on sets
    /// `spend_watched`.
    pub(super) spend_watch_usd: f64,
}

/// How near its cap (as a fraction of it) an organization's spend sets the watch of
/// [`ServerModel::spend_may_have_bound`]: 1e-5 is above twice the worst relative rounding
/// error of a floating-point sum of up to 4.5e10 non-negative costs (about n x 2^-53), so
/// spend summed in another order, or without costs still to come, stays under the cap.
pub const SPEND_WATCH_MARGIN: f64 = 1e-5;

impl ServerModel {
    /// The route of `caller`'s requests to `model`, or `None` when no request may name the
    /// model. Resolve it once per caller and model, then decide with
    /// [`ServerModel::decide_routed`]: the simulator's fast path.
    pub fn route(&mut self, caller: &Caller<'_>, model: &str) -> Option<RouteId> {
        if !self.knows_model(model) {
            return None;
        }
        Some(self.route_unchecked(caller.organization, caller.project, model))
    }

    pub(super) fn route_unchecked(
        &mut self,
        organization: &str,
        project: &str,
        model: &str,
    ) -> RouteId {
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
    pub(super) fn recompute(
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
            spend_watch_usd: spend_cap_usd * (1.0 - SPEND_WATCH_MARGIN),
        });
        Ok(())
    }

    /// The limiter's slot of a bucket holder, issued on first sight.
    pub(super) fn holder_slot(&mut self, key: BucketKey) -> HolderSlot {
        let issued = self.holder_slots.len();
        *self
            .holder_slots
            .entry(key)
            .or_insert_with(|| HolderSlot(u32::try_from(issued).unwrap_or(u32::MAX)))
    }

    /// The spend check and the limiter. In line, with everything uncommon out of line: this is
    /// the simulator's per-attempt path.
    #[inline]
    pub(super) fn admit(
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
            spend_watched,
            ..
        } = self;
        let entry = &routes[route.0 as usize];
        let Some(cache) = &entry.cache else {
            unreachable!("refresh filled the cache")
        };
        let spend = &mut spends[entry.spend];
        // Spend under the watch mark (below the cap) in the current period: not reached, and
        // nothing to watch. A new period (which drops spend booked in the last one) or spend
        // near the cap is watched, then checked.
        if now > spend.period_last || spend.spent_usd >= cache.spend_watch_usd {
            *spend_watched = true;
            if spend.cap_reached(now, cache.spend_cap_usd) {
                return Reply::Refused(Refusal::InsufficientQuota);
            }
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
            let spare = std::mem::take(&mut self.spare_statuses);
            return admit_reporting(
                limiter,
                self.headers,
                now,
                charge,
                scopes,
                late_fault,
                spare,
            );
        }
        match limiter.try_acquire(now, charge, scopes) {
            Ok(()) => Reply::Admitted(Admission {
                statuses: Vec::new(),
                late_fault,
                charged_tokens: tokens,
            }),
            Err(rejection) => Reply::Refused(limited(self.headers, rejection, None)),
        }
    }

    /// Brings the route's cache to what it enforces at `now`: what a route enforces is cached
    /// per (admin generation, timeline epoch).
    #[inline]
    pub(super) fn refresh(&mut self, route: RouteId, now: Instant) -> Result<(), Refusal> {
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
    pub(super) fn long_context_route(&mut self, route: RouteId) -> RouteId {
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
    pub(super) fn scripted_rate_limit(
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
}

/// [`ServerModel::admit`]'s limiter check when the caller asked for the limits' statuses.
#[inline(never)]
pub(super) fn admit_reporting(
    limiter: &mut SlotLimiter,
    headers: HeaderPolicy,
    now: Instant,
    charge: quota::Charge,
    scopes: &[ScopedKey<'_, HolderSlot>],
    late_fault: Option<LateFault>,
    spare: Vec<LimitStatus>,
) -> Reply {
    // The statuses go into memory a caller handed back ([`ServerModel::recycle_statuses`]),
    // else into a new vector.
    let mut found = spare;
    found.clear();
    match limiter.try_acquire_reporting(now, charge, scopes, Some(&mut found)) {
        Ok(()) => Reply::Admitted(Admission {
            // Read after the charge, and only when the policy sends them on successes. An
            // admission leaves `found` empty.
            statuses: if headers.rate_limit.on_success() {
                limiter.status_into(now, scopes, &mut found);
                found
            } else {
                Vec::new()
            },
            late_fault,
            charged_tokens: charge.tokens,
        }),
        Err(rejection) => Reply::Refused(limited(headers, rejection, Some(found))),
    }
}

/// The 429 of a rejection, with what the header policy lets it carry.
pub(super) fn limited(
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
