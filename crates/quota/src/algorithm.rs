//! The per-limit state machines, one per [`Algorithm`], behind one small interface.
//!
//! All arithmetic is integer. The token bucket's arithmetic lives in [`crate::token_bucket`],
//! shared with the compact per-key state; here it is stored with a 128-bit level.

use std::collections::VecDeque;

use crate::limits::{Algorithm, Rule};
use crate::time::Instant;
use crate::token_bucket::{Bucket, Wide};

/// The state of one limit of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitState {
    /// A token bucket with a 128-bit level, for any limit.
    TokenBucket(Bucket<Wide>),
    /// Theoretical arrival time: the instant the bucket is empty of use again.
    Gcra { tat: Instant },
    /// Use within the window with index `window` (start = index x window length).
    FixedWindow { window: u64, used: u64 },
    /// Admissions (time, amount) inside the trailing window and their running sum. Boxed so
    /// the other, far more common states stay small enough to store inline per key.
    #[allow(clippy::box_collection, reason = "keeps LimitState at 32 bytes")]
    SlidingWindowLog {
        entries: Box<VecDeque<(Instant, u64)>>,
        used: u64,
    },
    /// Counts of the current window (index `window`) and the one before.
    SlidingWindowCounter {
        window: u64,
        previous: u64,
        current: u64,
    },
}

/// Ceiling of `numerator / denominator` for a non-zero denominator.
fn div_ceil(numerator: u128, denominator: u128) -> u128 {
    numerator.div_ceil(denominator)
}

fn to_u64(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

impl Rule {
    /// The window windowed algorithms count in: the quantum when quantized, else the window.
    fn count_window(&self) -> u64 {
        self.quantum.unwrap_or(self.window)
    }

    /// GCRA's emission interval: nanoseconds per unit, rounded to nearest, at least 1.
    fn emission_interval(&self) -> u64 {
        ((self.window + self.limit / 2) / self.limit).max(1)
    }
}

impl LimitState {
    /// A state with nothing used.
    pub(crate) fn fresh(rule: &Rule) -> LimitState {
        match rule.algorithm {
            Algorithm::TokenBucket => LimitState::TokenBucket(Bucket::FRESH),
            Algorithm::Gcra => LimitState::Gcra { tat: Instant::ZERO },
            Algorithm::FixedWindow => LimitState::FixedWindow { window: 0, used: 0 },
            Algorithm::SlidingWindowLog => LimitState::SlidingWindowLog {
                entries: Box::default(),
                used: 0,
            },
            Algorithm::SlidingWindowCounter => LimitState::SlidingWindowCounter {
                window: 0,
                previous: 0,
                current: 0,
            },
        }
    }

    /// Brings the state forward to `now` (refill, window roll-over, log expiry). Never moves
    /// time backwards: a `now` earlier than the last update is treated as the last update.
    #[inline]
    fn advance(&mut self, rule: &Rule, now: Instant) {
        match self {
            LimitState::TokenBucket(bucket) => bucket.refill(rule, now),
            LimitState::Gcra { .. } => {}
            LimitState::FixedWindow { window, used } => {
                let index = now.as_nanos() / rule.count_window();
                if index > *window {
                    *window = index;
                    *used = 0;
                }
            }
            LimitState::SlidingWindowLog { entries, used } => {
                let window = rule.count_window();
                while let Some(&(time, amount)) = entries.front() {
                    if time.as_nanos().saturating_add(window) > now.as_nanos() {
                        break;
                    }
                    entries.pop_front();
                    *used -= amount;
                }
            }
            LimitState::SlidingWindowCounter {
                window,
                previous,
                current,
            } => {
                let index = now.as_nanos() / rule.count_window();
                if index > *window {
                    *previous = if index == *window + 1 { *current } else { 0 };
                    *current = 0;
                    *window = index;
                }
            }
        }
    }

    /// Whether `amount` fits now: the admission fast path, computing no wait. Brings the
    /// state forward to `now`; agrees with `wait_nanos(..) == Some(0)`.
    #[inline(always)]
    pub(crate) fn fits(&mut self, rule: &Rule, now: Instant, amount: u64) -> bool {
        // The default algorithm is refilled and checked here in line: this is the hottest code
        // of every simulation.
        if let LimitState::TokenBucket(bucket) = self {
            return bucket.fits(rule, now, amount);
        }
        if amount == 0 {
            return true;
        }
        self.advance(rule, now);
        match self {
            LimitState::FixedWindow { used, .. } => used.saturating_add(amount) <= rule.capacity,
            _ => amount <= rule.capacity && self.wait_after_advance(rule, now, amount) == 0,
        }
    }

    /// Charges an amount that [`LimitState::fits`] just accepted at the same `now`.
    #[inline(always)]
    pub(crate) fn admit(&mut self, rule: &Rule, now: Instant, amount: u64) {
        match self {
            LimitState::TokenBucket(bucket) => bucket.admit(rule, amount),
            _ => self.consume(rule, now, amount, false),
        }
    }

    /// Nanoseconds from `now` until `amount` fits (0: fits now), or `None` when it never fits
    /// because it exceeds the capacity. Only brings the state forward to `now`.
    #[inline]
    pub(crate) fn wait_nanos(&mut self, rule: &Rule, now: Instant, amount: u64) -> Option<u64> {
        if amount > rule.capacity {
            return None;
        }
        if amount == 0 {
            return Some(0);
        }
        self.advance(rule, now);
        Some(self.wait_after_advance(rule, now, amount))
    }

    #[inline]
    fn wait_after_advance(&self, rule: &Rule, now: Instant, amount: u64) -> u64 {
        let capacity = rule.capacity;
        match self {
            LimitState::TokenBucket(bucket) => bucket.wait_after_refill(rule, amount),
            LimitState::Gcra { tat } => {
                let interval = u128::from(rule.emission_interval());
                let start = u128::from((*tat).max(now).as_nanos());
                let new_tat = start + u128::from(amount) * interval;
                let earliest = new_tat.saturating_sub(u128::from(capacity) * interval);
                to_u64(earliest.saturating_sub(u128::from(now.as_nanos())))
            }
            LimitState::FixedWindow { window, used } => {
                if used.saturating_add(amount) <= capacity {
                    0
                } else {
                    let next_start = (window + 1) * rule.count_window();
                    next_start.saturating_sub(now.as_nanos())
                }
            }
            LimitState::SlidingWindowLog { entries, used } => {
                let mut remaining_use = *used;
                for &(time, entry_amount) in entries.iter() {
                    if remaining_use + amount <= capacity {
                        break;
                    }
                    remaining_use -= entry_amount;
                    let expires = time.as_nanos() + rule.count_window();
                    if remaining_use + amount <= capacity {
                        return expires.saturating_sub(now.as_nanos());
                    }
                }
                0
            }
            LimitState::SlidingWindowCounter {
                window,
                previous,
                current,
            } => {
                let length = u128::from(rule.count_window());
                let start = u128::from(*window) * length;
                let elapsed = u128::from(now.as_nanos()).saturating_sub(start);
                counter_wait(length, elapsed, *previous, *current, amount, capacity)
            }
        }
    }

    /// Charges `amount` at `now`. Callers admit only after `wait_nanos` returned `Some(0)`;
    /// with `cap_at_debt` (a rejection's charge) the use stops at the capacity.
    #[inline]
    pub(crate) fn consume(&mut self, rule: &Rule, now: Instant, amount: u64, cap_at_debt: bool) {
        self.advance(rule, now);
        let ceiling = debt_ceiling(rule, cap_at_debt);
        match self {
            LimitState::TokenBucket(bucket) => bucket.consume(rule, now, amount, ceiling),
            LimitState::Gcra { tat } => {
                let interval = rule.emission_interval();
                let new_tat = (*tat).max(now).plus_nanos(amount.saturating_mul(interval));
                let ceiling_tat = now.plus_nanos(ceiling.saturating_mul(interval));
                *tat = new_tat.min(ceiling_tat);
            }
            LimitState::FixedWindow { used, .. } => {
                *used = used.saturating_add(amount).min(ceiling)
            }
            LimitState::SlidingWindowLog { entries, used } => {
                let added = amount.min(ceiling.saturating_sub(*used));
                if added > 0 {
                    entries.push_back((now, added));
                    *used += added;
                }
            }
            LimitState::SlidingWindowCounter {
                window,
                previous,
                current,
            } => {
                // The debt ceiling bounds the estimate, which includes the weighted previous
                // window, not the current count alone.
                let weighted_previous = weighted_previous(rule, now, *window, *previous);
                let room = ceiling.saturating_sub(weighted_previous);
                *current = current.saturating_add(amount).min(room.max(*current));
            }
        }
    }

    /// Units in use at `now` (rounded up for fractional token-bucket and counter use).
    pub(crate) fn used(&mut self, rule: &Rule, now: Instant) -> u64 {
        self.advance(rule, now);
        match self {
            LimitState::TokenBucket(bucket) => bucket.used(rule, now),
            LimitState::Gcra { tat } => {
                let ahead = tat.nanos_since(now);
                ahead.div_ceil(rule.emission_interval())
            }
            LimitState::FixedWindow { used, .. } | LimitState::SlidingWindowLog { used, .. } => {
                *used
            }
            LimitState::SlidingWindowCounter {
                window,
                previous,
                current,
            } => weighted_previous(rule, now, *window, *previous) + *current,
        }
    }

    /// Nanoseconds from `now` until nothing is in use any more (the bucket is full again).
    pub(crate) fn reset_nanos(&mut self, rule: &Rule, now: Instant) -> u64 {
        self.advance(rule, now);
        match self {
            LimitState::TokenBucket(bucket) => bucket.reset_nanos(rule, now),
            LimitState::Gcra { tat } => tat.nanos_since(now),
            LimitState::FixedWindow { window, used } => {
                if *used == 0 {
                    0
                } else {
                    ((*window + 1) * rule.count_window()).saturating_sub(now.as_nanos())
                }
            }
            LimitState::SlidingWindowLog { entries, .. } => {
                entries.back().map_or(0, |&(time, _)| {
                    (time.as_nanos() + rule.count_window()).saturating_sub(now.as_nanos())
                })
            }
            LimitState::SlidingWindowCounter {
                window,
                previous,
                current,
            } => {
                let next_start = (*window + 1) * rule.count_window();
                let until_next = next_start.saturating_sub(now.as_nanos());
                if *current > 0 {
                    until_next + rule.count_window()
                } else if *previous > 0 {
                    until_next
                } else {
                    0
                }
            }
        }
    }

    /// Whether nothing is in use at `now`, so the state can be dropped and rebuilt fresh later
    /// without changing any decision.
    pub(crate) fn is_idle(&self, rule: &Rule, now: Instant) -> bool {
        match self {
            LimitState::TokenBucket(bucket) => bucket.is_idle(rule, now),
            LimitState::Gcra { tat } => *tat <= now,
            _ => self.clone().reset_nanos(rule, now) == 0,
        }
    }
}

/// The most units a charge may leave in use: the capacity when charging a rejection, so a
/// rejection takes at most what has refilled and never puts the limit in debt; else unbounded
/// (admissions are checked against the capacity before they are charged).
#[inline]
pub(crate) fn debt_ceiling(rule: &Rule, cap_at_debt: bool) -> u64 {
    if cap_at_debt { rule.capacity } else { u64::MAX }
}

/// The sliding-window counter's previous count weighted by how much of the previous window
/// still overlaps the trailing window at `now`, rounded up.
fn weighted_previous(rule: &Rule, now: Instant, window: u64, previous: u64) -> u64 {
    let length = u128::from(rule.count_window());
    let elapsed = u128::from(now.as_nanos()).saturating_sub(u128::from(window) * length);
    to_u64(div_ceil(
        u128::from(previous) * length.saturating_sub(elapsed),
        length,
    ))
}

/// The sliding-window-counter wait: the estimate is `previous x (length - elapsed) / length +
/// current`, compared exactly as `previous x (length - elapsed) + (current + amount) x length <=
/// capacity x length`.
fn counter_wait(
    length: u128,
    elapsed: u128,
    previous: u64,
    current: u64,
    amount: u64,
    capacity: u64,
) -> u64 {
    let (previous, current, amount, capacity) = (
        u128::from(previous),
        u128::from(current),
        u128::from(amount),
        u128::from(capacity),
    );
    // The elapsed time within a window at which `previous` weighs little enough, or None if the
    // current count alone leaves no room in this window.
    let fits_from = |previous: u128, current: u128| -> Option<u128> {
        if current + amount > capacity {
            return None;
        }
        let room = (capacity - current - amount) * length;
        if previous * length <= room {
            return Some(0);
        }
        // previous x (length - e) <= room  <=>  e >= length - room / previous
        Some(length - room / previous)
    };
    match fits_from(previous, current) {
        Some(from) if from <= elapsed => 0,
        Some(from) if from < length => to_u64(from - elapsed),
        _ => {
            let until_next = length.saturating_sub(elapsed);
            // In the next window, today's count becomes the weighted previous one.
            match fits_from(current, 0) {
                Some(from) => to_u64(until_next + from.min(length)),
                None => to_u64(until_next + length),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_state_stays_small_enough_to_store_two_inline() {
        assert_eq!(std::mem::size_of::<LimitState>(), 32);
    }
}
