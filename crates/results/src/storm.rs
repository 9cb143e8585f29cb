//! The storm share: the largest share of retries among the attempts sent in any one-second
//! window holding at least [`STORM_MIN_ATTEMPTS`] attempts. Defined once, here, for every
//! executor (the simulator's reports, and the mock server grading real clients), over a stream
//! of `(send time, is retry)` pairs.
//!
//! "Any one-second window" is read literally: a window `[t, t + 1s)` may start at any
//! nanosecond, not only at aligned one-second bins, so a storm that straddles a bin boundary
//! is not halved, and windows are not cut at the run's start or end (the definition does not
//! depend on where time 0 lies). The windows are swept exactly: as the window slides, its contents change
//! only when an attempt enters (the window's end passes its send time) or leaves (its start
//! passes it), so evaluating the contents after every such change covers every window.
//!
//! The sweep runs online over sends in time order: it keeps the attempts of the last second
//! only, so memory follows the peak attempts per second, never the length of the run, and each
//! attempt costs O(1) (amortized; it enters and leaves once).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Length of a storm window: one second, in nanoseconds.
pub const STORM_WINDOW_NS: u64 = 1_000_000_000;

/// The fewest attempts a window must hold to count: a handful of sends is no storm, whatever
/// its share of retries.
pub const STORM_MIN_ATTEMPTS: u64 = 10;

/// The stormiest window of a run: the one-second window, among those holding at least
/// [`STORM_MIN_ATTEMPTS`] attempts, with the largest share of retries; of equal shares, the one
/// with the most attempts, then the earliest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StormWindow {
    /// Send time of the window's first attempt, in milliseconds since the scenario start.
    pub start_ms: u64,
    /// Send time of its last attempt, in milliseconds (less than a second after the first in
    /// nanoseconds, so at most 1000 after `start_ms` once both are floored to milliseconds).
    pub end_ms: u64,
    /// Attempts sent in the window.
    pub attempts: u64,
    /// Of those, retries (attempts after a request's first).
    pub retries: u64,
}

impl StormWindow {
    /// `retries / attempts`, from 0 to 1.
    ///
    /// ```
    /// let window = results::StormWindow { start_ms: 0, end_ms: 900, attempts: 10, retries: 6 };
    /// assert_eq!(window.share(), 0.6);
    /// ```
    pub fn share(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.retries as f64 / self.attempts as f64
        }
    }
}

/// The stormiest window of a stream of sends, `(send time in nanoseconds, is retry)` in
/// non-decreasing time order (a time earlier than the one before counts as the one before);
/// `None` when no one-second window holds [`STORM_MIN_ATTEMPTS`] attempts.
///
/// ```
/// use results::storm_share;
/// const MS: u64 = 1_000_000;
/// // Ten attempts within 900 ms, six of them retries.
/// let sends = (0..10).map(|i| (i * 100 * MS, i >= 4));
/// let window = storm_share(sends).unwrap();
/// assert_eq!((window.attempts, window.retries, window.share()), (10, 6, 0.6));
/// // Nine attempts are too few to count.
/// assert_eq!(storm_share((0..9).map(|i| (i * 100 * MS, true))), None);
/// ```
pub fn storm_share(sends: impl IntoIterator<Item = (u64, bool)>) -> Option<StormWindow> {
    let mut tracker = StormTracker::default();
    for (sent_ns, is_retry) in sends {
        tracker.record(sent_ns, is_retry);
    }
    tracker.finish()
}

/// The online form of [`storm_share`]: feed sends as they happen with [`StormTracker::record`],
/// then read the stormiest window with [`StormTracker::finish`].
///
/// Windows are tracked by their exclusive end `e`, holding the sends at `e - 1s <= t < e`: a
/// send at `t` enters at `e = t + 1` and leaves at `e = t + 1s + 1`. Events are applied in
/// order of `e`; the contents are evaluated just before `e` moves on, so several sends at the
/// same instant enter together.
#[derive(Debug, Clone, Default)]
pub struct StormTracker {
    /// Sends in the window now, oldest first: `(send time, is retry)`.
    window: VecDeque<(u64, bool)>,
    /// Retries among `window`.
    retries: u64,
    /// The window end of the last event applied; `None` before the first send.
    end_ns: Option<u64>,
    /// The latest send time seen, so an out-of-order time is clamped to it.
    latest_ns: u64,
    /// The stormiest contents so far, in nanoseconds; no attempts before the first window of
    /// [`STORM_MIN_ATTEMPTS`], which any such window beats.
    best: Best,
}

#[derive(Debug, Clone, Copy, Default)]
struct Best {
    start_ns: u64,
    end_ns: u64,
    attempts: u64,
    retries: u64,
}

impl StormTracker {
    /// A tracker with no sends.
    pub fn new() -> Self {
        StormTracker::default()
    }

    /// Counts one attempt sent at `sent_ns`; `is_retry` when it is not its request's first.
    #[inline]
    pub fn record(&mut self, sent_ns: u64, is_retry: bool) {
        let sent_ns = sent_ns.max(self.latest_ns);
        self.latest_ns = sent_ns;
        let enters_at = sent_ns.saturating_add(1);
        while let Some(&(oldest_ns, _)) = self.window.front() {
            let leaves_at = oldest_ns.saturating_add(STORM_WINDOW_NS + 1);
            if leaves_at > enters_at {
                break;
            }
            self.move_to(leaves_at);
            self.leave();
        }
        self.move_to(enters_at);
        self.window.push_back((sent_ns, is_retry));
        self.retries += u64::from(is_retry);
    }

    /// The stormiest window of every send recorded; `None` when no one-second window held
    /// [`STORM_MIN_ATTEMPTS`] attempts.
    pub fn finish(mut self) -> Option<StormWindow> {
        // The remaining sends leave one by one; each smaller window is a window too.
        while let Some(&(oldest_ns, _)) = self.window.front() {
            self.move_to(oldest_ns.saturating_add(STORM_WINDOW_NS + 1));
            self.leave();
        }
        let best = self.best;
        (best.attempts > 0).then_some(StormWindow {
            start_ms: best.start_ns / 1_000_000,
            end_ms: best.end_ns / 1_000_000,
            attempts: best.attempts,
            retries: best.retries,
        })
    }

    #[inline]
    fn leave(&mut self) {
        if let Some((_, was_retry)) = self.window.pop_front() {
            self.retries -= u64::from(was_retry);
        }
    }

    /// Moves the window's end to `end_ns`, first evaluating the contents the window held since
    /// the last event when the end moves on.
    #[inline]
    fn move_to(&mut self, end_ns: u64) {
        if self.end_ns.is_some_and(|last| end_ns > last) {
            self.evaluate();
        }
        self.end_ns = Some(end_ns);
    }

    #[inline]
    fn evaluate(&mut self) {
        let attempts = self.window.len() as u64;
        if attempts < STORM_MIN_ATTEMPTS {
            return;
        }
        // Shares compared exactly, as cross products. Of equal shares the window with more
        // attempts wins (the storm's full extent rather than its first ten sends), then the
        // earliest. Before the first window the best holds no attempts: both products are zero
        // and any window has more attempts, so it wins without a branch of its own (an
        // `Option` here cost 7 instructions per attempt on issue 16's workload).
        let best = self.best;
        let ours = u128::from(self.retries) * u128::from(best.attempts);
        let theirs = u128::from(best.retries) * u128::from(attempts);
        if ours > theirs || (ours == theirs && attempts > best.attempts) {
            let (Some(&(start_ns, _)), Some(&(end_ns, _))) =
                (self.window.front(), self.window.back())
            else {
                return;
            };
            self.best = Best {
                start_ns,
                end_ns,
                attempts,
                retries: self.retries,
            };
        }
    }
}
