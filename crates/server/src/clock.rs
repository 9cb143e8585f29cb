//! The server's notion of time: the real clock, or a manual clock that only moves when told.
//!
//! Everything time-dependent in the server (the `now` the server model decides at, so limiter
//! refill and the timeline's changes; latency waits, hangs, `created` timestamps) reads this
//! clock, so a test on the manual clock decides outcomes by advancing time instead of sleeping.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::ClockKind;
use tokio::sync::watch;

/// Unix time at which a manual clock starts, so manual runs are reproducible: 2023-11-14.
pub const MANUAL_CLOCK_UNIX_START: u64 = 1_700_000_000;

/// A cheap, cloneable handle on the server clock.
#[derive(Debug, Clone)]
pub enum Clock {
    Real {
        started: tokio::time::Instant,
        unix_start: Duration,
    },
    Manual {
        elapsed: Arc<watch::Sender<Duration>>,
    },
}

/// The latest time a manual clock can read: 2^64 - 1 nanoseconds (about 584 years) after the
/// start, the range of the limiter's integer-nanosecond time. Within it, every sum the server
/// forms from a reading (a latency deadline, a retry time, a Unix timestamp) fits its type.
pub const MANUAL_CLOCK_MAX: Duration = Duration::from_nanos(u64::MAX);

/// Why the clock did not move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdvanceError {
    /// Advancing the real clock is meaningless; the admin API reports this as a 409.
    #[error("the server runs on the real clock; start it with `--clock manual` to advance time")]
    NotManualClock,
    /// The advance would take the clock past [`MANUAL_CLOCK_MAX`]; the admin API reports this
    /// as a 400 and the clock stays where it was.
    #[error(
        "cannot advance the clock by {by_ms} ms: it reads {now_ms} ms and stops at {max_ms} ms \
         (about 584 years); advance by at most {left_ms} ms"
    )]
    PastRange {
        by_ms: u128,
        now_ms: u128,
        max_ms: u128,
        left_ms: u128,
    },
}

impl Clock {
    pub fn new(kind: ClockKind) -> Clock {
        match kind {
            ClockKind::Real => Clock::Real {
                started: tokio::time::Instant::now(),
                unix_start: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default(),
            },
            ClockKind::Manual => Clock::Manual {
                elapsed: Arc::new(watch::Sender::new(Duration::ZERO)),
            },
        }
    }

    pub fn kind(&self) -> ClockKind {
        match self {
            Clock::Real { .. } => ClockKind::Real,
            Clock::Manual { .. } => ClockKind::Manual,
        }
    }

    /// Time since the server started: the limiter's `now`.
    pub fn now(&self) -> Duration {
        match self {
            Clock::Real { started, .. } => started.elapsed(),
            Clock::Manual { elapsed } => *elapsed.borrow(),
        }
    }

    /// Unix seconds now, for `created` fields.
    pub fn unix_seconds(&self) -> u64 {
        self.unix_seconds_at(self.now())
    }

    /// Unix seconds at server time `at` (a reading of [`Clock::now`]), so a request can stamp
    /// `created` from the reading it was admitted at rather than read the clock again.
    pub fn unix_seconds_at(&self, at: Duration) -> u64 {
        match self {
            Clock::Real { unix_start, .. } => (*unix_start + at).as_secs(),
            Clock::Manual { .. } => MANUAL_CLOCK_UNIX_START + at.as_secs(),
        }
    }

    /// Moves a manual clock forward and wakes everything waiting on it; returns the new time.
    /// An advance past [`MANUAL_CLOCK_MAX`] leaves the clock where it was.
    pub fn advance(&self, by: Duration) -> Result<Duration, AdvanceError> {
        match self {
            Clock::Real { .. } => Err(AdvanceError::NotManualClock),
            Clock::Manual { elapsed } => {
                let mut outcome = Err(AdvanceError::NotManualClock);
                // Checked and moved under the sender's lock, so concurrent advances cannot
                // both pass the check and overflow together.
                elapsed.send_if_modified(|now| {
                    match now.checked_add(by).filter(|&next| next <= MANUAL_CLOCK_MAX) {
                        Some(next) => {
                            *now = next;
                            outcome = Ok(next);
                            !by.is_zero()
                        }
                        None => {
                            outcome = Err(AdvanceError::PastRange {
                                by_ms: by.as_millis(),
                                now_ms: now.as_millis(),
                                max_ms: MANUAL_CLOCK_MAX.as_millis(),
                                left_ms: MANUAL_CLOCK_MAX.saturating_sub(*now).as_millis(),
                            });
                            false
                        }
                    }
                });
                outcome
            }
        }
    }

    /// Waits until the server clock reads `deadline` (time since start). On the manual clock
    /// this resolves only once the clock has been advanced that far.
    pub async fn sleep_until(&self, deadline: Duration) {
        match self {
            Clock::Real { started, .. } => tokio::time::sleep_until(*started + deadline).await,
            Clock::Manual { elapsed } => {
                let mut receiver = elapsed.subscribe();
                // The sender lives as long as this clock handle, so `wait_for` cannot fail here.
                let _ = receiver.wait_for(|now| *now >= deadline).await;
            }
        }
    }
}
