//! The breaking point of a tier: the largest growth factor it sustains, found by bisection
//! between the grid's points to a stated precision.
//!
//! A value that holds the two factors known so far (the largest that meets, the smallest that
//! fails) and names the next one to try; the planner runs the probes, so this stays a pure
//! function of the verdicts it is told.

use serde::Serialize;

use crate::growth::Growth;

/// Where a tier breaks, as far as the grid and the bisection tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BreakingPoint {
    /// The largest factor seen to meet the criterion with every smaller probe meeting it too;
    /// `None` when even the smallest probe fails.
    pub sustains: Option<Growth>,
    /// The smallest factor seen to fail above `sustains`; `None` when every probe met (the tier
    /// holds past the grid's largest factor).
    pub fails_at: Option<Growth>,
}

impl BreakingPoint {
    /// `1.75x` (`breaks between 1.75x and 1.8x`), `above 5x`, `below 0.05x`.
    pub fn describe(&self) -> String {
        match (self.sustains, self.fails_at) {
            (Some(sustains), Some(_)) => format!("{sustains}"),
            (Some(sustains), None) => format!("above {sustains}"),
            (None, Some(fails)) => format!("below {fails}"),
            (None, None) => "not probed".to_owned(),
        }
    }
}

/// A bisection in progress between `low` (meets; zero traffic trivially does) and `high`
/// (fails).
///
/// ```
/// use plan::{Bisection, Growth};
/// let g = Growth::from_thousandths;
/// // The grid met at 1x and failed at 1.5x; bisect to 0.1x.
/// let mut bisection = Bisection::new(Some(g(1_000)), g(1_500), g(100));
/// assert_eq!(bisection.next_probe(), Some(g(1_250)));
/// bisection.record(g(1_250), false);
/// assert_eq!(bisection.next_probe(), Some(g(1_125)));
/// bisection.record(g(1_125), true);
/// // 1.125x meets, 1.25x fails: 0.125x apart, still over 0.1x.
/// assert_eq!(bisection.next_probe(), Some(g(1_187)));
/// bisection.record(g(1_187), true);
/// assert_eq!(bisection.next_probe(), None);
/// assert_eq!(bisection.result().sustains, Some(g(1_187)));
/// assert_eq!(bisection.result().fails_at, Some(g(1_250)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bisection {
    low: Option<Growth>,
    high: Growth,
    precision: Growth,
}

impl Bisection {
    /// A bisection between `low` (the largest factor known to meet, `None` for none) and
    /// `high` (the smallest known to fail), to within `precision`.
    pub fn new(low: Option<Growth>, high: Growth, precision: Growth) -> Bisection {
        Bisection {
            low,
            high,
            precision,
        }
    }

    /// The factor to try next, or `None` when the two bounds are within the precision.
    pub fn next_probe(&self) -> Option<Growth> {
        let low = self.low.unwrap_or(Growth::from_thousandths(0));
        let gap = self.high.thousandths() - low.thousandths();
        let midpoint = low.midpoint(self.high);
        (gap > self.precision.thousandths().max(1)
            && midpoint > low
            && midpoint < self.high
            && midpoint.thousandths() > 0)
            .then_some(midpoint)
    }

    /// Records the verdict at `probe`: a factor that meets becomes the lower bound, one that
    /// fails the upper.
    pub fn record(&mut self, probe: Growth, meets: bool) {
        if meets {
            self.low = Some(probe);
        } else {
            self.high = probe;
        }
    }

    /// The bounds in thousandths: (largest known to meet or 0, smallest known to fail).
    pub fn bounds(&self) -> (u32, u32) {
        (
            self.low.map_or(0, Growth::thousandths),
            self.high.thousandths(),
        )
    }

    /// The breaking point as the bounds stand.
    pub fn result(&self) -> BreakingPoint {
        BreakingPoint {
            sustains: self.low,
            fails_at: Some(self.high),
        }
    }
}

/// Where to bisect on a grid whose verdicts are `meets` (in growth order): between the last
/// point of the leading run of points that meet and the first that fails after it. `Ok` holds
/// the breaking point when there is nothing to bisect (every point met), `Err` the bisection
/// to run.
///
/// A tier that fails at one factor and meets at a larger one (possible with noise or
/// closed-loop rounding) breaks at the first failure: what meets after it is not a factor the
/// tier can be trusted to grow into.
///
/// ```
/// use plan::{Growth, grid_bisection};
/// let g = Growth::from_thousandths;
/// let grid = [(g(1_000), true), (g(2_000), false), (g(3_000), true)];
/// let bisection = grid_bisection(&grid, g(50)).unwrap_err();
/// assert_eq!(bisection.next_probe(), Some(g(1_500)));
/// let all_met = [(g(1_000), true), (g(2_000), true)];
/// assert_eq!(grid_bisection(&all_met, g(50)).unwrap().describe(), "above 2x");
/// ```
pub fn grid_bisection(
    grid: &[(Growth, bool)],
    precision: Growth,
) -> Result<BreakingPoint, Bisection> {
    let mut low = None;
    for &(growth, meets) in grid {
        if meets {
            low = Some(growth);
        } else {
            return Err(Bisection::new(low, growth, precision));
        }
    }
    Ok(BreakingPoint {
        sustains: low,
        fails_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(thousandths: u32) -> Growth {
        Growth::from_thousandths(thousandths)
    }

    /// Bisects against a tier that meets exactly up to `truth`, returning the probes.
    fn bisect_to(truth: Growth, low: Option<Growth>, high: Growth) -> (BreakingPoint, Vec<u32>) {
        let mut bisection = Bisection::new(low, high, g(50));
        let mut probes = Vec::new();
        while let Some(probe) = bisection.next_probe() {
            probes.push(probe.thousandths());
            bisection.record(probe, probe <= truth);
        }
        (bisection.result(), probes)
    }

    #[test]
    fn the_bisection_brackets_the_truth_within_the_precision() {
        for truth in [1_000, 1_001, 1_333, 1_950, 2_999] {
            let (point, probes) = bisect_to(g(truth), Some(g(1_000)), g(3_000));
            let (low, high) = (point.sustains.unwrap(), point.fails_at.unwrap());
            assert!(low <= g(truth) && g(truth) < high, "{truth}: {point:?}");
            assert!(high.thousandths() - low.thousandths() <= 50);
            // 2x / 0.05x = 40 intervals: six halvings.
            assert_eq!(probes.len(), 6, "{truth}: {probes:?}");
        }
    }

    #[test]
    fn a_tier_that_fails_the_smallest_probe_bisects_down_towards_zero() {
        let (point, probes) = bisect_to(g(120), None, g(1_000));
        assert_eq!(probes[..3], [500, 250, 125]);
        assert!(point.sustains.unwrap() <= g(120) && g(120) < point.fails_at.unwrap());
        let (nothing, _) = bisect_to(g(0), None, g(1_000));
        assert_eq!(nothing.sustains, None);
        assert_eq!(
            nothing.describe(),
            format!("below {}", nothing.fails_at.unwrap())
        );
    }

    #[test]
    fn the_grid_bisects_after_its_first_failure() {
        let grid = [(g(1_000), false), (g(2_000), true)];
        let bisection = grid_bisection(&grid, g(50)).unwrap_err();
        assert_eq!(bisection.result().sustains, None);
        assert_eq!(bisection.next_probe(), Some(g(500)));
        assert_eq!(grid_bisection(&[], g(50)).unwrap().describe(), "not probed");
    }
}
