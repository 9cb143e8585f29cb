//! One holder's state for every limit of its [`Limits`](crate::Limits), in two layouts behind
//! one interface: compact token buckets in line for the common case, general per-limit states
//! for everything else. The whole-key operations (check, charge, worst wait, statuses) are
//! written once over both.
//!
//! A key's state does not hold its rules: every operation takes the rules of the caller's
//! `Limits`, which the keyed store has matched by fingerprint. That keeps an entry small and
//! saves the hot path a dependent load through a per-key pointer.

use std::time::Duration;

use smallvec::SmallVec;

use crate::algorithm::{LimitState, debt_ceiling};
use crate::limiter::{LimitStatus, Rejection};
use crate::limits::{COMPACT_RULES, Charge, Rule, Scope};
use crate::time::Instant;
use crate::token_bucket::Bucket;

/// The operations on the state of one limit that the whole-key operations need.
pub(crate) trait LimitOps {
    /// Whether `amount` fits now; brings the state forward to `now`.
    fn fits(&mut self, rule: &Rule, now: Instant, amount: u64) -> bool;
    /// Charges an amount that `fits` just accepted at the same `now`.
    fn admit(&mut self, rule: &Rule, now: Instant, amount: u64);
    /// Charges `amount`, up to the capacity with `cap_at_debt`.
    fn consume(&mut self, rule: &Rule, now: Instant, amount: u64, cap_at_debt: bool);
    /// Nanoseconds until `amount` fits, `None` when it never does.
    fn wait_nanos(&mut self, rule: &Rule, now: Instant, amount: u64) -> Option<u64>;
    /// Units in use at `now`.
    fn used(&mut self, rule: &Rule, now: Instant) -> u64;
    /// Nanoseconds until nothing is in use.
    fn reset_nanos(&mut self, rule: &Rule, now: Instant) -> u64;
    /// Whether the state equals a fresh one at `now`.
    fn is_idle(&self, rule: &Rule, now: Instant) -> bool;
}

impl LimitOps for LimitState {
    #[inline(always)]
    fn fits(&mut self, rule: &Rule, now: Instant, amount: u64) -> bool {
        LimitState::fits(self, rule, now, amount)
    }

    #[inline(always)]
    fn admit(&mut self, rule: &Rule, now: Instant, amount: u64) {
        LimitState::admit(self, rule, now, amount);
    }

    fn consume(&mut self, rule: &Rule, now: Instant, amount: u64, cap_at_debt: bool) {
        LimitState::consume(self, rule, now, amount, cap_at_debt);
    }

    fn wait_nanos(&mut self, rule: &Rule, now: Instant, amount: u64) -> Option<u64> {
        LimitState::wait_nanos(self, rule, now, amount)
    }

    fn used(&mut self, rule: &Rule, now: Instant) -> u64 {
        LimitState::used(self, rule, now)
    }

    fn reset_nanos(&mut self, rule: &Rule, now: Instant) -> u64 {
        LimitState::reset_nanos(self, rule, now)
    }

    fn is_idle(&self, rule: &Rule, now: Instant) -> bool {
        LimitState::is_idle(self, rule, now)
    }
}

/// A compact token bucket: the same decisions as [`LimitState::TokenBucket`], with a 64-bit
/// level (see [`Limits::compact`](crate::Limits) for when that is exact).
impl LimitOps for Bucket<u64> {
    #[inline(always)]
    fn fits(&mut self, rule: &Rule, now: Instant, amount: u64) -> bool {
        Bucket::fits(self, rule, now, amount)
    }

    #[inline(always)]
    fn admit(&mut self, rule: &Rule, _now: Instant, amount: u64) {
        Bucket::admit(self, rule, amount);
    }

    fn consume(&mut self, rule: &Rule, now: Instant, amount: u64, cap_at_debt: bool) {
        Bucket::consume(self, rule, now, amount, debt_ceiling(rule, cap_at_debt));
    }

    fn wait_nanos(&mut self, rule: &Rule, now: Instant, amount: u64) -> Option<u64> {
        // The same order of checks as the general state: a request that never fits or costs
        // nothing leaves the bucket where it was.
        if amount > rule.capacity {
            return None;
        }
        if amount == 0 {
            return Some(0);
        }
        self.refill(rule, now);
        Some(self.wait_after_refill(rule, amount))
    }

    fn used(&mut self, rule: &Rule, now: Instant) -> u64 {
        Bucket::used(self, rule, now)
    }

    fn reset_nanos(&mut self, rule: &Rule, now: Instant) -> u64 {
        Bucket::reset_nanos(self, rule, now)
    }

    fn is_idle(&self, rule: &Rule, now: Instant) -> bool {
        Bucket::is_idle(self, rule, now)
    }
}

/// Per-limit states in one of the two layouts, one per rule in rule order.
pub(crate) trait LimitStorage {
    type Limit: LimitOps;
    /// Fresh states for `rules`.
    fn fresh(rules: &[Rule]) -> Self;
    /// Whether these states were built for as many rules as `rules` has.
    fn holds(&self, rules: &[Rule]) -> bool;
    fn limits(&self) -> &[Self::Limit];
    fn limits_mut(&mut self) -> &mut [Self::Limit];
}

/// Any algorithm and any number of limits: inline for up to two, so a key lookup touches one
/// allocation.
pub(crate) type GeneralStates = SmallVec<[LimitState; 2]>;

impl LimitStorage for GeneralStates {
    type Limit = LimitState;

    fn fresh(rules: &[Rule]) -> GeneralStates {
        rules.iter().map(LimitState::fresh).collect()
    }

    #[inline]
    fn holds(&self, rules: &[Rule]) -> bool {
        self.len() == rules.len()
    }

    #[inline]
    fn limits(&self) -> &[LimitState] {
        self
    }

    #[inline]
    fn limits_mut(&mut self) -> &mut [LimitState] {
        self
    }
}

/// Up to [`COMPACT_RULES`] token buckets with 64-bit levels, in line: 48 bytes, so an entry
/// keyed by a `u64` is one cache line. Slots past the rule count stay fresh and unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactStates([Bucket<u64>; COMPACT_RULES]);

impl LimitStorage for CompactStates {
    type Limit = Bucket<u64>;

    fn fresh(_rules: &[Rule]) -> CompactStates {
        CompactStates([Bucket::FRESH; COMPACT_RULES])
    }

    /// Always: compact limits have at most [`COMPACT_RULES`] rules, and every operation zips
    /// the rules with the buckets, so a longer list could not index out of bounds anyway.
    #[inline(always)]
    fn holds(&self, _rules: &[Rule]) -> bool {
        true
    }

    #[inline(always)]
    fn limits(&self) -> &[Bucket<u64>] {
        &self.0
    }

    #[inline(always)]
    fn limits_mut(&mut self) -> &mut [Bucket<u64>] {
        &mut self.0
    }
}

impl CompactStates {
    /// Admits and charges `charge` if every limit has room, like [`KeyState::try_acquire`];
    /// when some limit has no room, returns `false` and leaves the state untouched, so the
    /// caller can take the general path as if this was never called. The keyed hot path: the
    /// new levels are computed apart and stored only on admission, in a short, branch-light
    /// sequence the CPU can overlap with the next decision's cache miss.
    #[inline(always)]
    pub(crate) fn try_admit(&mut self, rules: &[Rule], now: Instant, charge: Charge) -> bool {
        let mut next = self.0;
        for (rule, bucket) in rules.iter().zip(&mut next) {
            match bucket.after_admission(rule, now, rule.unit.amount(charge)) {
                Some(admitted) => *bucket = admitted,
                None => return false,
            }
        }
        self.0 = next;
        true
    }
}

/// The whole-key operations, for either layout; object safe, so the limiter can handle the
/// scopes of one check whatever their layouts.
pub(crate) trait KeyState {
    /// Whether every limit has room for `charge` now.
    fn fits(&mut self, rules: &[Rule], now: Instant, charge: Charge) -> bool;
    /// Admits and charges `charge` if every limit has room; returns whether it did.
    fn try_acquire(&mut self, rules: &[Rule], now: Instant, charge: Charge) -> bool;
    /// Charges `charge` to every limit (after every scope was found to fit).
    fn consume(&mut self, rules: &[Rule], now: Instant, charge: Charge);
    /// Charges a rejected request's debt to the limits that count rejections.
    fn charge_rejection(&mut self, rules: &[Rule], now: Instant, charge: Charge);
    /// The longest wait over the limits for `charge` (`Some(0)`: everything fits; `None`:
    /// some limit never fits it), with the index of the deciding limit.
    fn worst_wait(&mut self, rules: &[Rule], now: Instant, charge: Charge) -> (Option<u64>, usize);
    /// The rejection by limit `index` with the given wait, from the state before the rejected
    /// request's own charge.
    fn rejection(
        &mut self,
        rules: &[Rule],
        now: Instant,
        charge: Charge,
        scope: Scope,
        worst: (Option<u64>, usize),
    ) -> Rejection;
    /// The rejection of `charge` by this holder alone: reports the limit forcing the longest
    /// wait as the request found it (and, when asked, every limit's status), then charges the
    /// rejection (see [`RejectedRequests`](crate::RejectedRequests)). Out of line: the hot
    /// path calls it when a request finds no room.
    #[inline(never)]
    fn reject(
        &mut self,
        rules: &[Rule],
        now: Instant,
        charge: Charge,
        scope: Scope,
        statuses: Option<&mut Vec<LimitStatus>>,
    ) -> Rejection {
        let worst = self.worst_wait(rules, now, charge);
        let rejection = self.rejection(rules, now, charge, scope, worst);
        if let Some(statuses) = statuses {
            self.statuses(rules, now, scope, statuses);
        }
        self.charge_rejection(rules, now, charge);
        rejection
    }
    /// Appends every limit's status at `now`.
    fn statuses(
        &mut self,
        rules: &[Rule],
        now: Instant,
        scope: Scope,
        statuses: &mut Vec<LimitStatus>,
    );
    /// Whether every limit is as a fresh one at `now`, so the key can be dropped.
    fn is_idle(&self, rules: &[Rule], now: Instant) -> bool;
}

impl<Storage: LimitStorage> KeyState for Storage {
    #[inline(always)]
    fn fits(&mut self, rules: &[Rule], now: Instant, charge: Charge) -> bool {
        rules
            .iter()
            .zip(self.limits_mut())
            .all(|(rule, state)| state.fits(rule, now, rule.kind.amount(charge)))
    }

    #[inline(always)]
    fn try_acquire(&mut self, rules: &[Rule], now: Instant, charge: Charge) -> bool {
        if !KeyState::fits(self, rules, now, charge) {
            return false;
        }
        for (rule, state) in rules.iter().zip(self.limits_mut()) {
            state.admit(rule, now, rule.kind.amount(charge));
        }
        true
    }

    fn consume(&mut self, rules: &[Rule], now: Instant, charge: Charge) {
        for (rule, state) in rules.iter().zip(self.limits_mut()) {
            state.consume(rule, now, rule.kind.amount(charge), false);
        }
    }

    fn charge_rejection(&mut self, rules: &[Rule], now: Instant, charge: Charge) {
        for (rule, state) in rules.iter().zip(self.limits_mut()) {
            if rule.counts_rejections {
                state.consume(rule, now, rule.kind.amount(charge), true);
            }
        }
    }

    fn worst_wait(&mut self, rules: &[Rule], now: Instant, charge: Charge) -> (Option<u64>, usize) {
        let mut worst = (Some(0), 0);
        for (index, (rule, state)) in rules.iter().zip(self.limits_mut()).enumerate() {
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

    fn rejection(
        &mut self,
        rules: &[Rule],
        now: Instant,
        charge: Charge,
        scope: Scope,
        (wait, index): (Option<u64>, usize),
    ) -> Rejection {
        let rule = &rules[index];
        Rejection {
            scope,
            kind: rule.kind,
            limit: rule.limit,
            used: self.limits_mut()[index].used(rule, now),
            requested: rule.kind.amount(charge),
            retry_after: wait.map(Duration::from_nanos),
        }
    }

    fn statuses(
        &mut self,
        rules: &[Rule],
        now: Instant,
        scope: Scope,
        statuses: &mut Vec<LimitStatus>,
    ) {
        for (rule, state) in rules.iter().zip(self.limits_mut()) {
            let used = state.used(rule, now);
            statuses.push(LimitStatus {
                scope,
                kind: rule.kind,
                limit: rule.limit,
                remaining: rule.capacity.saturating_sub(used),
                reset: Duration::from_nanos(state.reset_nanos(rule, now)),
            });
        }
    }

    fn is_idle(&self, rules: &[Rule], now: Instant) -> bool {
        rules
            .iter()
            .zip(self.limits())
            .all(|(rule, state)| state.is_idle(rule, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_states_leave_room_for_two_words_in_a_cache_line() {
        assert_eq!(std::mem::size_of::<CompactStates>(), 48);
    }
}
