//! Virtual time: the [`Instant`] every limiter call takes as its `now`.

use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point in virtual time: nanoseconds since an arbitrary epoch chosen by the caller.
///
/// The limiter never reads a clock. The simulator advances an `Instant` itself; the server maps
/// its monotonic clock onto one (e.g. nanoseconds since it started). Only differences matter,
/// except for [`Algorithm::FixedWindow`](crate::Algorithm::FixedWindow), whose windows are
/// aligned to multiples of the window length since the epoch.
///
/// ```
/// use std::time::Duration;
/// use quota::Instant;
///
/// let start = Instant::from_nanos(1_000);
/// let later = start + Duration::from_millis(120);
/// assert_eq!(later.as_nanos(), 120_001_000);
/// assert_eq!(later.saturating_duration_since(start), Duration::from_millis(120));
/// assert_eq!(start.saturating_duration_since(later), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// The instant `nanos` nanoseconds after the epoch.
    #[inline]
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// Nanoseconds since the epoch.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    #[inline]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Nanoseconds from `earlier` to `self`, zero when `earlier` is later.
    #[inline]
    pub(crate) const fn nanos_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self` plus `nanos`, saturating at the end of time rather than wrapping.
    #[inline]
    pub(crate) const fn plus_nanos(self, nanos: u64) -> Instant {
        Instant(self.0.saturating_add(nanos))
    }
}

/// Adds a duration, saturating at about 584 years after the epoch rather than wrapping.
impl Add<Duration> for Instant {
    type Output = Instant;

    #[inline]
    fn add(self, duration: Duration) -> Instant {
        self.plus_nanos(duration_to_nanos(duration))
    }
}

impl AddAssign<Duration> for Instant {
    #[inline]
    fn add_assign(&mut self, duration: Duration) {
        *self = *self + duration;
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
#[inline]
pub(crate) fn duration_to_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
