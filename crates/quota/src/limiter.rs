//! The keyed limiter: per-key state for organizations and projects in a hash store with bounded
//! memory; and what every limiter takes and returns: scoped keys, rejections as values, limit
//! statuses. The checks themselves are `crate::admission`'s.

use std::hash::Hash;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::admission::{self, HolderStates};
use crate::key_state::{CompactStates, GeneralStates, KeyState};
use crate::limits::{Charge, LimitKind, Limits, Scope};
use crate::store::{Store, key_hash};
use crate::time::Instant;

/// One holder of limits that a request must fit: a key in the limiter's store (a
/// [`HolderSlot`](crate::HolderSlot) for a [`SlotLimiter`](crate::SlotLimiter)), the scope it
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
        admission::try_acquire(self, now, charge, scopes, None)
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
        admission::decide(self, now, charge, scopes)
    }

    /// Every limit's status at `now` without charging anything: the headers of a rejected
    /// request, or a dashboard.
    pub fn status(&mut self, now: Instant, scopes: &[ScopedKey<'_, K>]) -> Vec<LimitStatus> {
        admission::status(self, now, scopes)
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

/// The keyed store: one hash lookup per holder, state created on first use, idle keys swept
/// as the store grows.
impl<K: Hash + Eq + Clone> HolderStates<K> for Limiter<K> {
    #[inline(always)]
    fn compact_mut(&mut self, key: &K, limits: &Limits) -> Option<&mut CompactStates> {
        self.compact.get_mut(key_hash(key), key, limits)
    }

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
}
