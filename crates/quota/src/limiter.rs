//! The keyed limiter: per-key state for organizations and projects, atomic multi-scope checks,
//! rejections as values, and bounded memory.

use std::hash::Hash;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::key_state::{CompactStates, GeneralStates, KeyState, LimitStorage};
use crate::limits::{Charge, LimitKind, Limits, Scope};
use crate::store::{Store, key_hash};
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
/// fits (OpenAI's "Request too large"). Every figure describes the limit as the request found
/// it, before any charge for the rejection itself (see
/// [`RejectedRequests`](crate::RejectedRequests)), so `used` never exceeds `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Which holder's limit forced the longest wait.
    pub scope: Scope,
    /// Which limit forced the longest wait.
    pub kind: LimitKind,
    /// The limit's nominal value.
    pub limit: u64,
    /// Units in use when the request arrived (at most the limit's capacity).
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

/// A rejected request, with every applicable limit's status as the request found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Why, and when the request would fit.
    pub rejection: Rejection,
    /// One status per limit, organization scope first, before the rejection's own charge.
    pub statuses: Vec<LimitStatus>,
}

/// The outcome of [`Limiter::decide`].
pub type Decision = Result<Admitted, Rejected>;

/// Keys below this count are never swept: sweeping a small map buys nothing.
const MINIMUM_SWEEP_LENGTH: usize = 1024;

/// Recorded limit sets below this count are never pruned.
const MINIMUM_PRUNE_LENGTH: usize = 64;

/// The limiter: per-key state for any number of organizations, projects and pools.
///
/// A request is admitted only when every limit of every [`ScopedKey`] has room; then all are
/// charged, otherwise none is (apart from the documented rejection charge). Memory stays bounded:
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
    /// Keys whose limits are compact (token buckets with 64-bit levels): the common case.
    compact: Store<K, CompactStates>,
    /// Keys with any other limits. A key lives in at most one of the two stores.
    general: Store<K, GeneralStates>,
    /// The limits behind every fingerprint in the stores, for sweeping: entries keep only the
    /// fingerprint. Pruned by every sweep, and whenever it doubles.
    limit_sets: FxHashMap<u64, Limits>,
    sweep_at_length: usize,
    prune_at_length: usize,
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
            compact: Store::new(),
            general: Store::new(),
            limit_sets: FxHashMap::default(),
            sweep_at_length: MINIMUM_SWEEP_LENGTH,
            prune_at_length: MINIMUM_PRUNE_LENGTH,
        }
    }

    /// The state of `key`, created fresh when missing or when its limits changed.
    fn state_mut(&mut self, key: &K, limits: &Limits, now: Instant) -> &mut dyn KeyState {
        if self.limit_sets.len() >= self.prune_at_length {
            // Keys whose limits keep changing would otherwise grow the record without bound.
            self.prune_limit_sets();
        }
        let hash = key_hash(key);
        if limits.compact {
            if let Some(index) = self.compact.find_index(hash, key) {
                return self.compact.state_at(index, limits, &mut self.limit_sets);
            }
        } else if let Some(index) = self.general.find_index(hash, key) {
            return self.general.state_at(index, limits, &mut self.limit_sets);
        }
        // A key whose limits moved to the other layout starts afresh, as any key whose limits
        // changed; only a key new to the limiter can grow it.
        let moved = if limits.compact {
            self.general.remove(hash, key)
        } else {
            self.compact.remove(hash, key)
        };
        if !moved && self.len() >= self.sweep_at_length {
            self.evict_idle(now);
            self.sweep_at_length = (self.len() * 2).max(MINIMUM_SWEEP_LENGTH);
        }
        if limits.compact {
            self.compact
                .insert_fresh(hash, key, limits, &mut self.limit_sets)
        } else {
            self.general
                .insert_fresh(hash, key, limits, &mut self.limit_sets)
        }
    }

    /// Admits `charge` at `now` if every limit of every scope has room, charging all of them;
    /// otherwise returns the rejection of the limit that forces the longest wait, as the request
    /// found it, and then charges the rejection where rejections count. This is the
    /// simulator's fast path: no statuses are computed.
    #[inline(always)]
    pub fn try_acquire(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, K>],
    ) -> Result<(), Rejection> {
        if self.try_admit_hot(now, charge, scopes) {
            return Ok(());
        }
        self.try_acquire_general(now, charge, scopes, None)
    }

    /// The hot path, in line: one lookup in the compact store, the rules read from the
    /// caller's limits, no pointer followed from the entry. Anything else (a new key, other
    /// limits, several scopes, no room) returns `false` for the general path, which decides
    /// exactly as if the hot path had not run: this changes nothing unless it admits.
    #[inline(always)]
    fn try_admit_hot(&mut self, now: Instant, charge: Charge, scopes: &[ScopedKey<'_, K>]) -> bool {
        if let [only] = scopes
            && only.limits.compact
            && let Some(state) = self
                .compact
                .get_mut(key_hash(only.key), only.key, only.limits)
        {
            return state.try_admit(&only.limits.rules, now, charge);
        }
        false
    }

    /// [`Limiter::try_acquire`] for every case, out of line. On a rejection, `statuses` (when
    /// given) receives every limit's status as the request found it, before its own charge.
    #[inline(never)]
    fn try_acquire_general(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, K>],
        statuses: Option<&mut Vec<LimitStatus>>,
    ) -> Result<(), Rejection> {
        if let [only] = scopes {
            // One lookup for the check and, when it fails, for the rejection.
            let rules = &only.limits.rules;
            let state = self.state_mut(only.key, only.limits, now);
            if state.try_acquire(rules, now, charge) {
                return Ok(());
            }
            if statuses.is_none() {
                return Err(state.reject(rules, now, charge, only.scope));
            }
        } else {
            let mut all_fit = true;
            for scoped in scopes {
                if !self.state_mut(scoped.key, scoped.limits, now).fits(
                    &scoped.limits.rules,
                    now,
                    charge,
                ) {
                    all_fit = false;
                    break;
                }
            }
            if all_fit {
                for scoped in scopes {
                    self.state_mut(scoped.key, scoped.limits, now).consume(
                        &scoped.limits.rules,
                        now,
                        charge,
                    );
                }
                return Ok(());
            }
        }
        Err(self.reject(now, charge, scopes, statuses))
    }

    /// Finds the limit forcing the longest wait and reports it (and, when asked, every
    /// status) as the request found it; then charges the rejection where rejections count.
    #[cold]
    fn reject(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, K>],
        statuses: Option<&mut Vec<LimitStatus>>,
    ) -> Rejection {
        let mut worst: Option<(Option<u64>, usize, &ScopedKey<'_, K>)> = None;
        for scoped in scopes {
            let (wait, index) = self.state_mut(scoped.key, scoped.limits, now).worst_wait(
                &scoped.limits.rules,
                now,
                charge,
            );
            let worse = match (&worst, wait) {
                (None, _) => true,
                (Some((None, ..)), _) => false,
                (Some((Some(_), ..)), None) => true,
                (Some((Some(worst_wait), ..)), Some(wait)) => wait > *worst_wait,
            };
            if worse {
                worst = Some((wait, index, scoped));
            }
        }
        let (wait, index, scoped) =
            worst.expect("a rejection comes from a check with at least one scope");
        let rejection = self.state_mut(scoped.key, scoped.limits, now).rejection(
            &scoped.limits.rules,
            now,
            charge,
            scoped.scope,
            (wait, index),
        );
        if let Some(statuses) = statuses {
            statuses.extend(self.status(now, scopes));
        }
        for scoped in scopes {
            self.state_mut(scoped.key, scoped.limits, now)
                .charge_rejection(&scoped.limits.rules, now, charge);
        }
        rejection
    }

    /// Like [`Limiter::try_acquire`], and also reports every limit's status, what the server
    /// copies into the `x-ratelimit-*` headers: after the charge on admission, and as the
    /// request found them (before any charge for the rejection) on rejection.
    pub fn decide(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, K>],
    ) -> Decision {
        if self.try_admit_hot(now, charge, scopes) {
            return Ok(Admitted {
                statuses: self.status(now, scopes),
            });
        }
        let mut found = Vec::new();
        match self.try_acquire_general(now, charge, scopes, Some(&mut found)) {
            Ok(()) => Ok(Admitted {
                statuses: self.status(now, scopes),
            }),
            Err(rejection) => Err(Rejected {
                rejection,
                statuses: found,
            }),
        }
    }

    /// Every limit's status at `now` without charging anything: the headers of a rejected
    /// request, or a dashboard.
    pub fn status(&mut self, now: Instant, scopes: &[ScopedKey<'_, K>]) -> Vec<LimitStatus> {
        let mut statuses = Vec::new();
        for scoped in scopes {
            self.state_mut(scoped.key, scoped.limits, now).statuses(
                &scoped.limits.rules,
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
        let before = self.len();
        let limit_sets = &self.limit_sets;
        // A fingerprint without recorded limits cannot occur; such a key would be kept.
        let is_idle = |fingerprint: u64, state: &dyn KeyState| {
            limit_sets
                .get(&fingerprint)
                .is_some_and(|limits| state.is_idle(&limits.rules, now))
        };
        self.compact
            .retain(|fingerprint, state| !is_idle(fingerprint, state));
        self.general
            .retain(|fingerprint, state| !is_idle(fingerprint, state));
        self.prune_limit_sets();
        before - self.len()
    }

    /// Forgets the recorded limits that no key uses any more.
    fn prune_limit_sets(&mut self) {
        let mut in_use = FxHashSet::default();
        let mut last = None;
        for fingerprint in self
            .compact
            .fingerprints()
            .chain(self.general.fingerprints())
        {
            if last != Some(fingerprint) {
                in_use.insert(fingerprint);
                last = Some(fingerprint);
            }
        }
        self.limit_sets
            .retain(|fingerprint, _| in_use.contains(fingerprint));
        self.prune_at_length = (self.limit_sets.len() * 2).max(MINIMUM_PRUNE_LENGTH);
    }

    /// Forgets one key (e.g. after its limits were changed by an admin).
    pub fn remove(&mut self, key: &K) {
        let hash = key_hash(key);
        self.compact.remove(hash, key);
        self.general.remove(hash, key);
    }

    /// Forgets every key: all buckets are full again.
    pub fn clear(&mut self) {
        self.compact.clear();
        self.general.clear();
        self.limit_sets.clear();
        self.sweep_at_length = MINIMUM_SWEEP_LENGTH;
        self.prune_at_length = MINIMUM_PRUNE_LENGTH;
    }

    /// Keys currently holding state.
    pub fn len(&self) -> usize {
        self.compact.len() + self.general.len()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
/// // Two per minute refill one every 30 s; the 429 reports the state it found.
/// assert_eq!((rejection.used, rejection.limit), (2, 2));
/// assert_eq!(rejection.retry_after, Some(std::time::Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone)]
pub struct DirectLimiter {
    limits: Limits,
    state: DirectState,
}

/// A direct limiter's state in the layout its limits call for.
#[derive(Debug, Clone)]
enum DirectState {
    Compact(CompactStates),
    General(GeneralStates),
}

impl DirectState {
    fn as_key_state(&mut self) -> &mut dyn KeyState {
        match self {
            DirectState::Compact(states) => states,
            DirectState::General(states) => states,
        }
    }
}

impl DirectLimiter {
    /// A limiter with nothing used.
    pub fn new(limits: &Limits) -> DirectLimiter {
        DirectLimiter {
            limits: limits.clone(),
            state: if limits.compact {
                DirectState::Compact(CompactStates::fresh(&limits.rules))
            } else {
                DirectState::General(GeneralStates::fresh(&limits.rules))
            },
        }
    }

    /// Admits `charge` at `now` if every limit has room, charging all of them; otherwise
    /// returns the limit forcing the longest wait, as the request found it, and charges the
    /// rejection where rejections count.
    #[inline(always)]
    pub fn try_acquire(&mut self, now: Instant, charge: Charge) -> Result<(), Rejection> {
        self.try_acquire_reporting(now, charge, None)
    }

    /// [`DirectLimiter::try_acquire`] that, on a rejection, also appends every limit's status
    /// as the request found it (before any charge for the rejection) to `statuses`: the
    /// `x-ratelimit-*` headers of the 429.
    #[inline(always)]
    pub fn try_acquire_reporting(
        &mut self,
        now: Instant,
        charge: Charge,
        statuses: Option<&mut Vec<LimitStatus>>,
    ) -> Result<(), Rejection> {
        let rules = &self.limits.rules;
        let admitted = match &mut self.state {
            DirectState::Compact(states) => states.try_admit(rules, now, charge),
            DirectState::General(states) => states.try_acquire(rules, now, charge),
        };
        if admitted {
            Ok(())
        } else {
            Err(self.reject(now, charge, statuses))
        }
    }

    #[cold]
    #[inline(never)]
    fn reject(
        &mut self,
        now: Instant,
        charge: Charge,
        statuses: Option<&mut Vec<LimitStatus>>,
    ) -> Rejection {
        let rules = &self.limits.rules;
        if let DirectState::Compact(states) = &mut self.state {
            // `try_admit` left the buckets untouched: bring them forward exactly as the
            // general check does when it fails, as `Limiter` does by running it.
            let fits = KeyState::fits(states, rules, now, charge);
            debug_assert!(!fits, "both checks decide alike");
        }
        let state = self.state.as_key_state();
        let worst = state.worst_wait(rules, now, charge);
        let rejection = state.rejection(rules, now, charge, Scope::Organization, worst);
        if let Some(statuses) = statuses {
            state.statuses(rules, now, Scope::Organization, statuses);
        }
        state.charge_rejection(rules, now, charge);
        rejection
    }

    /// Every limit's status at `now`, for the `x-ratelimit-*` headers.
    pub fn status(&mut self, now: Instant) -> Vec<LimitStatus> {
        let mut statuses = Vec::new();
        self.state.as_key_state().statuses(
            &self.limits.rules,
            now,
            Scope::Organization,
            &mut statuses,
        );
        statuses
    }
}
