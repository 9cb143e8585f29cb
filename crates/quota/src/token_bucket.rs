//! The continuous-refill token bucket, written once over its level's width: 128 bits in the
//! general per-limit state, 64 bits in the compact per-key state of the keyed hot path.
//!
//! Use is kept in scaled units (see `Rule::unit_scaled` and `Rule::refill_scaled`), so a
//! refill of `limit / window` per nanosecond is exact integer arithmetic. The 64-bit level is
//! used only for limits whose scaled capacity leaves room to spare (`Limits::compact`), so both
//! widths give the same results; saturating operations make overflow impossible either way.

use crate::limits::Rule;
use crate::time::Instant;

/// An unsigned level in scaled units: `u64`, `u128`, or [`Wide`].
pub(crate) trait Level: Copy + Ord {
    /// No use.
    const ZERO: Self;
    /// `a x b`, saturating at the maximum.
    fn product(a: u64, b: u64) -> Self;
    /// The rule's capacity in scaled units.
    fn full(rule: &Rule) -> Self;
    fn saturating_add(self, other: Self) -> Self;
    fn saturating_sub(self, other: Self) -> Self;
    /// Ceiling of `self / divisor` for a non-zero divisor, saturating at `u64::MAX`.
    fn div_ceil_to_u64(self, divisor: u64) -> u64;
}

impl Level for u64 {
    const ZERO: u64 = 0;

    #[inline(always)]
    fn product(a: u64, b: u64) -> u64 {
        a.saturating_mul(b)
    }

    /// Precomputed: exact for the compact limits that use 64-bit levels.
    #[inline(always)]
    fn full(rule: &Rule) -> u64 {
        rule.capacity_scaled
    }

    #[inline(always)]
    fn saturating_add(self, other: u64) -> u64 {
        u64::saturating_add(self, other)
    }

    #[inline(always)]
    fn saturating_sub(self, other: u64) -> u64 {
        u64::saturating_sub(self, other)
    }

    #[inline]
    fn div_ceil_to_u64(self, divisor: u64) -> u64 {
        self.div_ceil(divisor)
    }
}

/// A `u128` stored as two `u64` halves, high first: 8-byte alignment keeps the general
/// per-limit state at 32 bytes. The derived order compares the high half first, which is the
/// numeric order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Wide([u64; 2]);

impl Wide {
    #[inline(always)]
    fn get(self) -> u128 {
        (u128::from(self.0[0]) << 64) | u128::from(self.0[1])
    }

    #[inline(always)]
    fn new(value: u128) -> Wide {
        Wide([(value >> 64) as u64, value as u64])
    }
}

impl Level for Wide {
    const ZERO: Wide = Wide([0, 0]);

    #[inline(always)]
    fn product(a: u64, b: u64) -> Wide {
        Wide::new(u128::from(a) * u128::from(b))
    }

    #[inline(always)]
    fn full(rule: &Rule) -> Wide {
        Wide::product(rule.capacity, rule.unit_scaled)
    }

    #[inline(always)]
    fn saturating_add(self, other: Wide) -> Wide {
        Wide::new(self.get().saturating_add(other.get()))
    }

    #[inline(always)]
    fn saturating_sub(self, other: Wide) -> Wide {
        Wide::new(self.get().saturating_sub(other.get()))
    }

    #[inline]
    fn div_ceil_to_u64(self, divisor: u64) -> u64 {
        u64::try_from(self.get().div_ceil(u128::from(divisor))).unwrap_or(u64::MAX)
    }
}

/// One token bucket: `used` scaled units as of `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket<L> {
    pub(crate) used: L,
    pub(crate) at: Instant,
}

impl<L: Level> Bucket<L> {
    /// A bucket with nothing used.
    pub(crate) const FRESH: Bucket<L> = Bucket {
        used: L::ZERO,
        at: Instant::ZERO,
    };

    /// Refills up to `now`. Never moves time backwards: a `now` earlier than the last update
    /// is treated as the last update.
    #[inline(always)]
    pub(crate) fn refill(&mut self, rule: &Rule, now: Instant) {
        if now > self.at {
            let refill = L::product(now.nanos_since(self.at), rule.refill_scaled);
            self.used = self.used.saturating_sub(refill);
            self.at = now;
        }
    }

    /// Whether `amount` fits now; refills first.
    #[inline(always)]
    pub(crate) fn fits(&mut self, rule: &Rule, now: Instant, amount: u64) -> bool {
        self.refill(rule, now);
        amount == 0
            || self
                .used
                .saturating_add(L::product(amount, rule.unit_scaled))
                <= L::full(rule)
    }

    /// The bucket after admitting `amount` at `now`, or `None` when it does not fit: the same
    /// as [`Bucket::fits`] then [`Bucket::admit`], computed without branches on the level so
    /// the CPU can run ahead while the bucket's cache line is on its way.
    #[inline(always)]
    pub(crate) fn after_admission(&self, rule: &Rule, now: Instant, amount: u64) -> Option<Self> {
        // `nanos_since` is 0 when `now` is not later, which refills nothing, as `refill` does.
        let refill = L::product(now.nanos_since(self.at), rule.refill_scaled);
        let needed = self
            .used
            .saturating_sub(refill)
            .saturating_add(L::product(amount, rule.unit_scaled));
        (amount == 0 || needed <= L::full(rule)).then_some(Bucket {
            used: needed,
            at: self.at.max(now),
        })
    }

    /// Charges an amount that [`Bucket::fits`] just accepted at the same `now`.
    #[inline(always)]
    pub(crate) fn admit(&mut self, rule: &Rule, amount: u64) {
        self.used = self
            .used
            .saturating_add(L::product(amount, rule.unit_scaled));
    }

    /// Charges `amount` at `now`, up to `ceiling` units in use.
    #[inline]
    pub(crate) fn consume(&mut self, rule: &Rule, now: Instant, amount: u64, ceiling: u64) {
        self.refill(rule, now);
        let added = L::product(amount, rule.unit_scaled);
        self.used = self
            .used
            .saturating_add(added)
            .min(L::product(ceiling, rule.unit_scaled));
    }

    /// Nanoseconds until `amount` fits, for a bucket already refilled to `now`.
    #[inline]
    pub(crate) fn wait_after_refill(&self, rule: &Rule, amount: u64) -> u64 {
        let full = L::full(rule);
        let needed = self
            .used
            .saturating_add(L::product(amount, rule.unit_scaled));
        if needed <= full {
            0
        } else {
            needed
                .saturating_sub(full)
                .div_ceil_to_u64(rule.refill_scaled)
        }
    }

    /// Units in use, rounded up; refills first.
    #[inline]
    pub(crate) fn used(&mut self, rule: &Rule, now: Instant) -> u64 {
        self.refill(rule, now);
        self.used.div_ceil_to_u64(rule.unit_scaled)
    }

    /// Nanoseconds until the bucket is full again; refills first.
    #[inline]
    pub(crate) fn reset_nanos(&mut self, rule: &Rule, now: Instant) -> u64 {
        self.refill(rule, now);
        self.used.div_ceil_to_u64(rule.refill_scaled)
    }

    /// Whether the bucket has refilled to full by `now`.
    #[inline]
    pub(crate) fn is_idle(&self, rule: &Rule, now: Instant) -> bool {
        self.used <= L::product(now.nanos_since(self.at), rule.refill_scaled)
    }
}
