//! The keyed limiter: per-key state for organizations and projects, atomic multi-scope checks,
//! rejections as values, and bounded memory.

use std::hash::Hash;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::algorithm::LimitState;
use crate::limits::{Charge, LimitKind, Limits, Scope};
use crate::time::Instant;

/// One holder of limits that a request must fit: a key in the limiter's store, the scope it
/// stands for and the limits it enforces.
///
/// Keys are the caller's: e.g. `(organization, pool)` for the organization scope and
/// `(organization, project, pool)` for the project scope. Several models sharing one pool use
/// the pool's name in the key, so they share one bucket.
#[derive(Debug, Clone, Copy)]
pub struct ScopedKey<'a, K> {
    /// Whose limit this is, reported in rejections.
    pub scope: Scope,
    /// The state key.
    pub key: &'a K,
    /// The limits that apply to this holder.
    pub limits: &'a Limits,
}

/// Why a request was not admitted, and when it would be.
///
/// `retry_after` is `None` when the request is larger than the limit's whole capacity: it never
/// fits (OpenAI's "Request too large"). `used` is the use at the decision, including the
/// rejected request's own debt when rejected requests count (see
/// [`RejectedRequests`](crate::RejectedRequests)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Which holder's limit forced the longest wait.
    pub scope: Scope,
    /// Which limit forced the longest wait.
    pub kind: LimitKind,
    /// The limit's nominal value.
    pub limit: u64,
    /// Units in use now (may exceed the limit while a rejection debt is outstanding).
    pub used: u64,
    /// Units the request asked for.
    pub requested: u64,
    /// How long until the request would fit if nothing else is consumed meanwhile, or `None`
    /// when it never fits.
    pub retry_after: Option<Duration>,
}

impl Rejection {
    /// Whether the request can never fit: it exceeds the limit's whole capacity.
    pub fn is_request_too_large(&self) -> bool {
        self.retry_after.is_none()
    }
}

/// The state of one limit after a decision, what the `x-ratelimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitStatus {
    /// The holder.
    pub scope: Scope,
    /// The limit.
    pub kind: LimitKind,
    /// The nominal limit.
    pub limit: u64,
    /// Units that fit now (under quantization, within the current quantum's burst).
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset: Duration,
}

/// An admitted request, with every applicable limit's status after its charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// One status per limit, organization scope first, in [`LimitKind::ALL`] order.
    pub statuses: Vec<LimitStatus>,
}

/// The outcome of [`Limiter::decide`].
pub type Decision = Result<Admitted, Rejection>;

/// Per-key state for one set of limits: inline for up to two limits (e.g. RPM and TPM), so a
/// key lookup touches one allocation.
#[derive(Debug, Clone)]
struct KeyState {
    limits: Limits,
    states: SmallVec<[LimitState; 2]>,
}

impl KeyState {
    fn fresh(limits: &Limits) -> KeyState {
        KeyState {
            limits: limits.clone(),
            states: limits.rules.iter().map(LimitState::fresh).collect(),
        }
    }

    /// The longest wait over this key's limits for `charge`: `Some(0)` when everything fits,
    /// `None` when some limit can never fit it, with the index of the deciding limit.
    #[inline]
    fn worst_wait(&mut self, now: Instant, charge: Charge) -> (Option<u64>, usize) {
        let mut worst = (Some(0), 0);
        for (index, (rule, state)) in self.limits.rules.iter().zip(&mut self.states).enumerate() {
            let wait = state.wait_nanos(rule, now, rule.kind.amount(charge));
            let worse = match (wait, worst.0) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(wait), Some(worst_wait)) => wait > worst_wait,
            };
            if worse {
                worst = (wait, index);
            }
        }
        worst
    }

    #[inline]
    fn consume(&mut self, now: Instant, charge: Charge) {
        for (rule, state) in self.limits.rules.iter().zip(&mut self.states) {
            state.consume(rule, now, rule.kind.amount(charge), false);
        }
    }

    fn charge_rejection(&mut self, now: Instant, charge: Charge) {
        for (rule, state) in self.limits.rules.iter().zip(&mut self.states) {
            if rule.counts_rejections {
                state.consume(rule, now, rule.kind.amount(charge), true);
            }
        }
    }

    /// Whether every limit has room for `charge` now.
    #[inline]
    fn fits(&mut self, now: Instant, charge: Charge) -> bool {
        self.limits
            .rules
            .iter()
            .zip(&mut self.states)
            .all(|(rule, state)| state.fits(rule, now, rule.kind.amount(charge)))
    }

    /// Admits and charges `charge` if every limit has room; else reports the deciding limit.
    #[inline]
    fn try_acquire(&mut self, now: Instant, charge: Charge) -> Result<(), (Option<u64>, usize)> {
        if self.fits(now, charge) {
            for (rule, state) in self.limits.rules.iter().zip(&mut self.states) {
                state.admit(rule, now, rule.kind.amount(charge));
            }
            Ok(())
        } else {
            Err(self.worst_wait(now, charge))
        }
    }

    /// The rejection by limit `index` with the given wait, after any debt was charged.
    fn rejection(
        &mut self,
        now: Instant,
        charge: Charge,
        scope: Scope,
        (wait, index): (Option<u64>, usize),
    ) -> Rejection {
        let rule = &self.limits.rules[index];
        Rejection {
            scope,
            kind: rule.kind,
            limit: rule.limit,
            used: self.states[index].used(rule, now),
            requested: rule.kind.amount(charge),
            retry_after: wait.map(Duration::from_nanos),
        }
    }

    fn statuses(&mut self, now: Instant, scope: Scope, statuses: &mut Vec<LimitStatus>) {
        for (rule, limit_state) in self.limits.rules.iter().zip(&mut self.states) {
            let used = limit_state.used(rule, now);
            statuses.push(LimitStatus {
                scope,
                kind: rule.kind,
                limit: rule.limit,
                remaining: rule.capacity.saturating_sub(used),
                reset: Duration::from_nanos(limit_state.reset_nanos(rule, now)),
            });
        }
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.limits
            .rules
            .iter()
            .zip(&self.states)
            .all(|(rule, state)| state.is_idle(rule, now))
    }
}

/// Keys below this count are never swept: sweeping a small map buys nothing.
const MINIMUM_SWEEP_LENGTH: usize = 1024;

/// The limiter: per-key state for any number of organizations, projects and pools.
///
/// A request is admitted only when every limit of every [`ScopedKey`] has room; then all are
/// charged, otherwise none is (apart from the documented rejection debt). Memory stays bounded:
/// when the store doubles past its last size, keys whose buckets have refilled to full are
/// dropped; a dropped key behaves exactly like a fresh one.
///
/// ```
/// use std::time::Duration;
/// use quota::{Charge, Instant, LimitKind, LimitSet, Limiter, Scope, ScopedKey};
///
/// let limits = LimitSet { rpm: Some(500), tpm: Some(30_000), ..LimitSet::default() }
///     .compile()
///     .unwrap();
/// let mut limiter = Limiter::new();
/// let org = "org-1";
/// let scopes = [ScopedKey { scope: Scope::Organization, key: &org, limits: &limits }];
/// let now = Instant::ZERO;
///
/// limiter.try_acquire(now, Charge::request(29_937), &scopes).unwrap();
/// let rejection = limiter.try_acquire(now, Charge::request(385), &scopes).unwrap_err();
/// assert_eq!(rejection.kind, LimitKind::Tpm);
/// assert_eq!((rejection.used, rejection.requested), (29_937, 385));
/// assert_eq!(rejection.retry_after, Some(Duration::from_millis(644)));
///
/// // Retrying after exactly the returned wait succeeds.
/// let later = now + rejection.retry_after.unwrap();
/// assert!(limiter.try_acquire(later, Charge::request(385), &scopes).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Limiter<K> {
    states: FxHashMap<K, KeyState>,
    sweep_at_length: usize,
}

impl<K: Hash + Eq + Clone> Default for Limiter<K> {
    fn default() -> Self {
        Limiter::new()
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// An empty limiter.
    pub fn new() -> Limiter<K> {
        Limiter {
            states: FxHashMap::default(),
            sweep_at_length: MINIMUM_SWEEP_LENGTH,
        }
    }

    /// The state of `key`, created fresh when missing or when its limits changed.
    fn state_mut(&mut self, key: &K, limits: &Limits, now: Instant) -> &mut KeyState {
        if !self.states.contains_key(key) {
            if self.states.len() >= self.sweep_at_length {
                self.evict_idle(now);
                self.sweep_at_length = (self.states.len() * 2).max(MINIMUM_SWEEP_LENGTH);
            }
            self.states.insert(key.clone(), KeyState::fresh(limits));
        }
        let state = self
            .states
            .get_mut(key)
            .expect("the key was inserted above");
        if state.limits.fingerprint != limits.fingerprint {
            *state = KeyState::fresh(limits);
        }
        state
    }

    /// Admits `charge` at `now` if every limit of every scope has room, charging all of them;
    /// otherwise returns the rejection of the limit that forces the longest wait. This is the
    /// simulator's fast path: no statuses are computed.
    #[inline]
    pub fn try_acquire(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, K>],
    ) -> Result<(), Rejection> {
        if let [only] = scopes {
            // One lookup on the hot path; the borrow checker needs the miss handled apart.
            if let Some(state) = self.states.get_mut(only.key)
                && state.limits.fingerprint == only.limits.fingerprint
            {
                return match state.try_acquire(now, charge) {
                    Ok(()) => Ok(()),
                    Err(_) => Err(self.reject(now, charge, scopes)),
                };
            }
            if self
                .state_mut(only.key, only.limits, now)
                .try_acquire(now, charge)
                .is_ok()
            {
                return Ok(());
            }
        } else {
            let mut all_fit = true;
            for scoped in scopes {
                if !self
                    .state_mut(scoped.key, scoped.limits, now)
                    .fits(now, charge)
                {
                    all_fit = false;
                    break;
                }
            }
            if all_fit {
                for scoped in scopes {
                    self.state_mut(scoped.key, scoped.limits, now)
                        .consume(now, charge);
                }
                return Ok(());
            }
        }
        Err(self.reject(now, charge, scopes))
    }

    /// Charges the rejection debt, then finds the limit forcing the longest wait.
    fn reject(&mut self, now: Instant, charge: Charge, scopes: &[ScopedKey<'_, K>]) -> Rejection {
        for scoped in scopes {
            self.state_mut(scoped.key, scoped.limits, now)
                .charge_rejection(now, charge);
        }
        let mut worst: Option<(Option<u64>, Scope, usize, &K, &Limits)> = None;
        for scoped in scopes {
            let (wait, index) = self
                .state_mut(scoped.key, scoped.limits, now)
                .worst_wait(now, charge);
            let worse = match (&worst, wait) {
                (None, _) => true,
                (Some((None, ..)), _) => false,
                (Some((Some(_), ..)), None) => true,
                (Some((Some(worst_wait), ..)), Some(wait)) => wait > *worst_wait,
            };
            if worse {
                worst = Some((wait, scoped.scope, index, scoped.key, scoped.limits));
            }
        }
        let (wait, scope, index, key, limits) =
            worst.expect("a rejection comes from a check with at least one scope");
        self.state_mut(key, limits, now)
            .rejection(now, charge, scope, (wait, index))
    }

    /// Like [`Limiter::try_acquire`], and on admission also reports every limit's status after
    /// the charge: what the server copies into the `x-ratelimit-*` headers.
    pub fn decide(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, K>],
    ) -> Decision {
        self.try_acquire(now, charge, scopes)?;
        Ok(Admitted {
            statuses: self.status(now, scopes),
        })
    }

    /// Every limit's status at `now` without charging anything: the headers of a rejected
    /// request, or a dashboard.
    pub fn status(&mut self, now: Instant, scopes: &[ScopedKey<'_, K>]) -> Vec<LimitStatus> {
        let mut statuses = Vec::new();
        for scoped in scopes {
            self.state_mut(scoped.key, scoped.limits, now).statuses(
                now,
                scoped.scope,
                &mut statuses,
            );
        }
        statuses
    }

    /// Drops every key whose buckets are full at `now`; returns how many were dropped. Runs by
    /// itself whenever the store doubles, so calling it is optional.
    pub fn evict_idle(&mut self, now: Instant) -> usize {
        let before = self.states.len();
        self.states.retain(|_, state| !state.is_idle(now));
        before - self.states.len()
    }

    /// Forgets one key (e.g. after its limits were changed by an admin).
    pub fn remove(&mut self, key: &K) {
        self.states.remove(key);
    }

    /// Forgets every key: all buckets are full again.
    pub fn clear(&mut self) {
        self.states.clear();
        self.sweep_at_length = MINIMUM_SWEEP_LENGTH;
    }

    /// Keys currently holding state.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

/// The limits of one holder without a key store: the fastest path, for a simulator that keeps
/// its holders in its own arrays. Rejections report [`Scope::Organization`]; for atomic
/// organization-plus-project checks use [`Limiter`].
///
/// ```
/// use quota::{Charge, DirectLimiter, Instant, LimitSet};
///
/// let limits = LimitSet { rpm: Some(2), ..LimitSet::default() }.compile().unwrap();
/// let mut limiter = DirectLimiter::new(&limits);
/// assert!(limiter.try_acquire(Instant::ZERO, Charge::request(10)).is_ok());
/// assert!(limiter.try_acquire(Instant::ZERO, Charge::request(10)).is_ok());
/// let rejection = limiter.try_acquire(Instant::ZERO, Charge::request(10)).unwrap_err();
/// // Two per minute refill one every 30 s; the rejected request is charged too.
/// assert_eq!(rejection.retry_after, Some(std::time::Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone)]
pub struct DirectLimiter {
    state: KeyState,
}

impl DirectLimiter {
    /// A limiter with nothing used.
    pub fn new(limits: &Limits) -> DirectLimiter {
        DirectLimiter {
            state: KeyState::fresh(limits),
        }
    }

    /// Admits `charge` at `now` if every limit has room, charging all of them; otherwise
    /// charges the rejection debt and returns the limit forcing the longest wait.
    #[inline]
    pub fn try_acquire(&mut self, now: Instant, charge: Charge) -> Result<(), Rejection> {
        self.state.try_acquire(now, charge).map_err(|_| {
            self.state.charge_rejection(now, charge);
            let worst = self.state.worst_wait(now, charge);
            self.state
                .rejection(now, charge, Scope::Organization, worst)
        })
    }

    /// Every limit's status at `now`, for the `x-ratelimit-*` headers.
    pub fn status(&mut self, now: Instant) -> Vec<LimitStatus> {
        let mut statuses = Vec::new();
        self.state.statuses(now, Scope::Organization, &mut statuses);
        statuses
    }
}
