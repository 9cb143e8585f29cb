//! Limiters without a key store: holders as numbered slots in a vector ([`SlotLimiter`]), for
//! an owner that numbers its holders once (the server model's routes), and the single holder
//! of [`DirectLimiter`]. They check through the same admission code as the keyed
//! [`Limiter`](crate::Limiter) (`crate::admission`), so they decide exactly as it does; only
//! the lookup differs: an index instead of a hash probe.

use crate::admission::{self, HolderStates};
use crate::key_state::{CompactStates, GeneralStates, KeyState, LimitStorage};
use crate::limiter::{Decision, LimitStatus, Rejection, ScopedKey};
use crate::limits::{Charge, Limits, Scope};
use crate::time::Instant;

/// The number of a holder in a [`SlotLimiter`]: its index in the limiter's vector. The owner
/// numbers its holders densely from 0; the limiter grows to the highest number used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HolderSlot(pub u32);

/// The limiter over numbered holders: the keyed [`Limiter`](crate::Limiter)'s decisions with
/// an index for a lookup, for an owner that resolves its holders once (the server model
/// resolves each route's organization and project to slots) and decides many requests on
/// them.
///
/// A slot keeps state built for the limits it was last checked with; checked with other limits
/// it starts afresh, as a key of the keyed limiter does. Slots are never evicted: memory
/// follows the number of holders, which the owner bounds.
///
/// ```
/// use quota::{Charge, HolderSlot, Instant, LimitKind, LimitSet, Scope, ScopedKey, SlotLimiter};
///
/// let organization = LimitSet { rpm: Some(500), ..LimitSet::default() }.compile().unwrap();
/// let project = LimitSet { rpm: Some(1), ..LimitSet::default() }.compile().unwrap();
/// let mut limiter = SlotLimiter::new();
/// let scopes = [
///     ScopedKey { scope: Scope::Organization, key: &HolderSlot(0), limits: &organization },
///     ScopedKey { scope: Scope::Project, key: &HolderSlot(1), limits: &project },
/// ];
/// let now = Instant::ZERO;
/// assert!(limiter.try_acquire(now, Charge::request(10), &scopes).is_ok());
/// // The project's one request a minute is spent; the organization's 500 are not.
/// let rejection = limiter.try_acquire(now, Charge::request(10), &scopes).unwrap_err();
/// assert_eq!((rejection.scope, rejection.kind), (Scope::Project, LimitKind::Rpm));
/// // Atomic: the rejected request charged neither scope.
/// assert!(limiter.try_acquire(now, Charge::request(10), &scopes[..1]).is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SlotLimiter {
    slots: Vec<SlotState>,
}

/// One holder's state in the layout its limits call for, with the fingerprint of those limits.
#[derive(Debug, Clone)]
enum SlotState {
    /// Never checked, or cleared: a fresh state for any limits.
    Empty,
    Compact {
        fingerprint: u64,
        states: CompactStates,
    },
    General {
        fingerprint: u64,
        states: GeneralStates,
    },
}

impl SlotLimiter {
    /// A limiter with no holder yet.
    pub fn new() -> SlotLimiter {
        SlotLimiter::default()
    }

    /// Admits `charge` at `now` if every limit of every scope has room, charging all of them;
    /// otherwise returns the rejection of the limit that forces the longest wait, as the request
    /// found it, and then charges the rejection where rejections count. No statuses are
    /// computed: the simulator's fast path.
    #[inline(always)]
    pub fn try_acquire(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, HolderSlot>],
    ) -> Result<(), Rejection> {
        admission::try_acquire(self, now, charge, scopes, None)
    }

    /// [`SlotLimiter::try_acquire`] that, on a rejection, also appends every limit's status as
    /// the request found it (before any charge for the rejection) to `statuses`: the
    /// `x-ratelimit-*` headers of a 429, for a caller that reads the statuses of an admission
    /// ([`SlotLimiter::status`]) only when it sends them.
    #[inline]
    pub fn try_acquire_reporting(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, HolderSlot>],
        statuses: Option<&mut Vec<LimitStatus>>,
    ) -> Result<(), Rejection> {
        admission::try_acquire(self, now, charge, scopes, statuses)
    }

    /// Like [`SlotLimiter::try_acquire`], and also reports every limit's status (the
    /// `x-ratelimit-*` headers): after the charge on admission, and as the request found them
    /// on rejection.
    pub fn decide(
        &mut self,
        now: Instant,
        charge: Charge,
        scopes: &[ScopedKey<'_, HolderSlot>],
    ) -> Decision {
        admission::decide(self, now, charge, scopes)
    }

    /// Every limit's status at `now` without charging anything.
    pub fn status(
        &mut self,
        now: Instant,
        scopes: &[ScopedKey<'_, HolderSlot>],
    ) -> Vec<LimitStatus> {
        admission::status(self, now, scopes)
    }

    /// [`SlotLimiter::status`] appended to `statuses`, whose memory a caller may reuse.
    pub fn status_into(
        &mut self,
        now: Instant,
        scopes: &[ScopedKey<'_, HolderSlot>],
        statuses: &mut Vec<LimitStatus>,
    ) {
        admission::append_statuses(self, now, scopes, statuses);
    }

    /// Forgets all use: every holder's limits are full again. Slot numbers stay valid.
    pub fn clear(&mut self) {
        self.slots.fill(SlotState::Empty);
    }

    /// How many slots the limiter holds: one more than the highest number checked.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no slot was ever checked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl HolderStates<HolderSlot> for SlotLimiter {
    #[inline(always)]
    fn compact_mut(&mut self, key: &HolderSlot, limits: &Limits) -> Option<&mut CompactStates> {
        match self.slots.get_mut(key.0 as usize) {
            Some(SlotState::Compact {
                fingerprint,
                states,
            }) if *fingerprint == limits.fingerprint => Some(states),
            _ => None,
        }
    }

    fn state_mut(&mut self, key: &HolderSlot, limits: &Limits, _now: Instant) -> &mut dyn KeyState {
        let index = key.0 as usize;
        if index >= self.slots.len() {
            self.slots.resize(index + 1, SlotState::Empty);
        }
        let slot = &mut self.slots[index];
        // As in the keyed store: state built for other limits, or in the other layout, starts
        // afresh.
        let current = match slot {
            SlotState::Empty => false,
            SlotState::Compact { fingerprint, .. } => {
                limits.compact && *fingerprint == limits.fingerprint
            }
            SlotState::General {
                fingerprint,
                states,
            } => {
                !limits.compact && *fingerprint == limits.fingerprint && states.holds(&limits.rules)
            }
        };
        if !current {
            *slot = fresh(limits);
        }
        match slot {
            SlotState::Compact { states, .. } => states,
            SlotState::General { states, .. } => states,
            SlotState::Empty => unreachable!("the slot was made fresh above"),
        }
    }
}

/// A fresh state for `limits`.
fn fresh(limits: &Limits) -> SlotState {
    if limits.compact {
        SlotState::Compact {
            fingerprint: limits.fingerprint,
            states: CompactStates::fresh(&limits.rules),
        }
    } else {
        SlotState::General {
            fingerprint: limits.fingerprint,
            states: GeneralStates::fresh(&limits.rules),
        }
    }
}

/// The limits of one holder without a key store: a [`SlotLimiter`] of one slot that keeps its
/// limits. Rejections report [`Scope::Organization`]; for atomic organization-plus-project
/// checks use [`SlotLimiter`] or [`Limiter`](crate::Limiter).
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
    slots: SlotLimiter,
}

/// The one holder of a [`DirectLimiter`].
const ONLY: HolderSlot = HolderSlot(0);

impl DirectLimiter {
    /// A limiter with nothing used.
    pub fn new(limits: &Limits) -> DirectLimiter {
        DirectLimiter {
            limits: limits.clone(),
            slots: SlotLimiter {
                slots: vec![fresh(limits)],
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
        let scopes = [only_scope(&self.limits)];
        admission::try_acquire(&mut self.slots, now, charge, &scopes, statuses)
    }

    /// Every limit's status at `now`, for the `x-ratelimit-*` headers.
    pub fn status(&mut self, now: Instant) -> Vec<LimitStatus> {
        let scopes = [only_scope(&self.limits)];
        admission::status(&mut self.slots, now, &scopes)
    }
}

/// The scope of a [`DirectLimiter`]'s one holder.
fn only_scope(limits: &Limits) -> ScopedKey<'_, HolderSlot> {
    ScopedKey {
        scope: Scope::Organization,
        key: &ONLY,
        limits,
    }
}
