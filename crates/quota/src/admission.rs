//! The admission of one request over its scopes, written once for every place holders keep
//! their state: the keyed [`Limiter`](crate::Limiter)'s hash store and the numbered slots of
//! [`SlotLimiter`](crate::SlotLimiter) (and so [`DirectLimiter`](crate::DirectLimiter)).
//!
//! A request is admitted only when every limit of every scope has room; then all are charged,
//! otherwise none is, apart from the documented rejection charge. The stores only say where a
//! holder's state is ([`HolderStates`]); what a check does with it lives here alone, so the
//! stores cannot decide differently.

use crate::key_state::{CompactStates, KeyState};
use crate::limiter::{Admitted, Decision, LimitStatus, Rejected, Rejection, ScopedKey};
use crate::limits::{Charge, Limits};
use crate::time::Instant;

/// Where the holders named by keys of type `K` keep their state.
pub(crate) trait HolderStates<K> {
    /// The compact state of `key`, if it holds one built for `limits`: the hot path's lookup,
    /// which never creates, resets or evicts anything.
    fn compact_mut(&mut self, key: &K, limits: &Limits) -> Option<&mut CompactStates>;

    /// The state of `key`, made fresh when it holds none or holds one built for other limits
    /// (a holder whose limits changed starts afresh).
    fn state_mut(&mut self, key: &K, limits: &Limits, now: Instant) -> &mut dyn KeyState;
}

/// Admits `charge` at `now` if every limit of every scope has room, charging all of them;
/// otherwise returns the rejection of the limit that forces the longest wait, as the request
/// found it, and then charges the rejection where rejections count. On a rejection,
/// `statuses` (when given) receives every limit's status as the request found it.
#[inline(always)]
pub(crate) fn try_acquire<K, S: HolderStates<K>>(
    states: &mut S,
    now: Instant,
    charge: Charge,
    scopes: &[ScopedKey<'_, K>],
    statuses: Option<&mut Vec<LimitStatus>>,
) -> Result<(), Rejection> {
    // The hot path, in line: one lookup, the rules read from the caller's limits, no pointer
    // followed from the state. A compact state that has no room is rejected from where it
    // is; anything else (a holder without compact state for these limits, several scopes)
    // takes the general path.
    if let [only] = scopes
        && only.limits.compact
        && let Some(state) = states.compact_mut(only.key, only.limits)
    {
        let rules = &only.limits.rules;
        if state.try_admit(rules, now, charge) {
            return Ok(());
        }
        // `try_admit` left the state as it was; the rejection reads it as the general path's
        // failed check would have left it (bringing a state forward to `now` is the same
        // however many times it is done).
        return Err(state.reject(rules, now, charge, only.scope, statuses));
    }
    try_acquire_general(states, now, charge, scopes, statuses)
}

/// [`try_acquire`] for every case, out of line.
#[inline(never)]
fn try_acquire_general<K, S: HolderStates<K>>(
    states: &mut S,
    now: Instant,
    charge: Charge,
    scopes: &[ScopedKey<'_, K>],
    statuses: Option<&mut Vec<LimitStatus>>,
) -> Result<(), Rejection> {
    if let [only] = scopes {
        // One lookup for the check and, when it fails, for the rejection.
        let rules = &only.limits.rules;
        let state = states.state_mut(only.key, only.limits, now);
        if state.try_acquire(rules, now, charge) {
            return Ok(());
        }
        return Err(state.reject(rules, now, charge, only.scope, statuses));
    } else {
        let mut all_fit = true;
        for scoped in scopes {
            if !states.state_mut(scoped.key, scoped.limits, now).fits(
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
                states.state_mut(scoped.key, scoped.limits, now).consume(
                    &scoped.limits.rules,
                    now,
                    charge,
                );
            }
            return Ok(());
        }
    }
    Err(reject(states, now, charge, scopes, statuses))
}

/// Finds the limit forcing the longest wait and reports it (and, when asked, every status) as
/// the request found it; then charges the rejection where rejections count.
#[cold]
fn reject<K, S: HolderStates<K>>(
    states: &mut S,
    now: Instant,
    charge: Charge,
    scopes: &[ScopedKey<'_, K>],
    statuses: Option<&mut Vec<LimitStatus>>,
) -> Rejection {
    let mut worst: Option<(Option<u64>, usize, &ScopedKey<'_, K>)> = None;
    for scoped in scopes {
        let (wait, index) = states.state_mut(scoped.key, scoped.limits, now).worst_wait(
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
    let rejection = states.state_mut(scoped.key, scoped.limits, now).rejection(
        &scoped.limits.rules,
        now,
        charge,
        scoped.scope,
        (wait, index),
    );
    if let Some(statuses) = statuses {
        append_statuses(states, now, scopes, statuses);
    }
    for scoped in scopes {
        states
            .state_mut(scoped.key, scoped.limits, now)
            .charge_rejection(&scoped.limits.rules, now, charge);
    }
    rejection
}

/// [`try_acquire`] that also reports every limit's status: after the charge on admission, and
/// as the request found them (before any charge for the rejection) on rejection.
pub(crate) fn decide<K, S: HolderStates<K>>(
    states: &mut S,
    now: Instant,
    charge: Charge,
    scopes: &[ScopedKey<'_, K>],
) -> Decision {
    let mut found = Vec::new();
    match try_acquire(states, now, charge, scopes, Some(&mut found)) {
        Ok(()) => Ok(Admitted {
            statuses: status(states, now, scopes),
        }),
        Err(rejection) => Err(Rejected {
            rejection,
            statuses: found,
        }),
    }
}

/// Every limit's status at `now`, organization scope first, without charging anything.
pub(crate) fn status<K, S: HolderStates<K>>(
    states: &mut S,
    now: Instant,
    scopes: &[ScopedKey<'_, K>],
) -> Vec<LimitStatus> {
    let mut statuses = Vec::new();
    append_statuses(states, now, scopes, &mut statuses);
    statuses
}

pub(crate) fn append_statuses<K, S: HolderStates<K>>(
    states: &mut S,
    now: Instant,
    scopes: &[ScopedKey<'_, K>],
    statuses: &mut Vec<LimitStatus>,
) {
    for scoped in scopes {
        let rules = &scoped.limits.rules;
        // A compact state is read where the hot path finds it: what `state_mut` would return,
        // without its checks and the dynamic call.
        if scoped.limits.compact
            && let Some(state) = states.compact_mut(scoped.key, scoped.limits)
        {
            state.statuses(rules, now, scoped.scope, statuses);
        } else {
            states.state_mut(scoped.key, scoped.limits, now).statuses(
                rules,
                now,
                scoped.scope,
                statuses,
            );
        }
    }
}
