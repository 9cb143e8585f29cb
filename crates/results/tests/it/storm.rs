//! The storm share on hand-built send sequences with known answers, against a brute force over
//! every window, and through `RunMetrics`.

use proptest::prelude::*;
use results::{RunMetrics, STORM_WINDOW_NS, StormWindow, storm_share};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

/// `(attempts, retries, start_ms)` of the stormiest window of `sends`.
#[track_caller]
fn check(sends: &[(u64, bool)], expected: Option<(u64, u64, u64)>) {
    let window = storm_share(sends.iter().copied());
    let actual = window.map(|window| (window.attempts, window.retries, window.start_ms));
    assert_eq!(actual, expected);
}

/// `count` sends `step_ms` apart from `from_ms`, all retries or none.
fn sends(from_ms: u64, count: u64, step_ms: u64, retry: bool) -> Vec<(u64, bool)> {
    (0..count)
        .map(|index| ((from_ms + index * step_ms) * MS, retry))
        .collect()
}

#[test]
fn ten_attempts_in_a_second_six_of_them_retries() {
    let mut sequence = sends(0, 4, 100, false);
    sequence.extend(sends(400, 6, 100, true));
    check(&sequence, Some((10, 6, 0)));
    assert_eq!(storm_share(sequence.iter().copied()).unwrap().share(), 0.6);
}

#[test]
fn nine_attempts_in_a_second_are_no_window() {
    check(&sends(0, 9, 100, true), None);
    // Nine a second for a minute: never ten in any one second.
    check(&sends(0, 540, 112, true), None);
    check(&[], None);
}

#[test]
fn a_window_is_one_second_half_open() {
    // The tenth send exactly one second after the first is in the next window...
    let mut sequence = sends(0, 9, 100, true);
    sequence.push((SECOND, true));
    check(&sequence, None);
    // ...and one nanosecond earlier in the same one.
    sequence[9].0 = SECOND - 1;
    check(&sequence, Some((10, 10, 0)));
}

#[test]
fn windows_slide_across_bin_boundaries() {
    // Five retries either side of the 1s mark: aligned one-second bins would see two windows
    // of five, neither counted.
    check(&sends(550, 10, 100, true), Some((10, 10, 550)));
}

#[test]
fn a_window_can_hold_the_retries_alone() {
    // Ten first attempts, then ten retries 900 ms later: the window holding all twenty is half
    // retries, but the one starting after the first attempts holds the retries alone.
    let mut sequence = sends(0, 10, 10, false);
    sequence.extend(sends(900, 10, 10, true));
    check(&sequence, Some((10, 10, 900)));
}

#[test]
fn sends_at_one_instant_enter_together() {
    let mut sequence = vec![(5 * SECOND, false); 5];
    sequence.extend(vec![(5 * SECOND, true); 5]);
    // Were the retries counted before the first attempts left... they never do: all ten are
    // one instant, so the only window holding ten holds all of them.
    check(&sequence, Some((10, 5, 5_000)));
}

#[test]
fn the_stormiest_window_wins_and_ties_keep_the_first() {
    let mut sequence = sends(0, 10, 50, true);
    sequence[0].1 = false; // 90% retries from 0s
    sequence.extend(sends(10_000, 10, 50, true)); // 100% from 10s
    sequence.extend(sends(20_000, 10, 50, true)); // 100% from 20s: a tie, the first stays
    check(&sequence, Some((10, 10, 10_000)));
}

#[test]
fn no_retries_is_a_share_of_zero() {
    let window = storm_share(sends(0, 20, 10, false)).unwrap();
    assert_eq!((window.share(), window.retries), (0.0, 0));
}

#[test]
fn an_earlier_time_counts_as_the_one_before() {
    // Live executors may hand over sends slightly out of order; the definition takes times in
    // order, and a late-reported send counts at the latest time seen.
    let mut sequence = sends(0, 9, 100, true);
    sequence.push((500 * MS, true));
    check(&sequence, Some((10, 10, 0)));
}

/// Every distinct window of `sends`: a window `[t, t + 1s)` changes contents only where a send
/// enters (`t = sent - 1s + 1`) or leaves (`t = sent + 1`), so these starts cover them all. A
/// window may start before 0: the definition does not depend on where time 0 lies.
fn brute_force(sends: &[(u64, bool)]) -> Option<(u64, u64)> {
    let width = i128::from(STORM_WINDOW_NS);
    let mut best: Option<(u64, u64)> = None;
    for &(sent, _) in sends {
        let sent = i128::from(sent);
        for start in [sent - width + 1, sent, sent + 1] {
            let inside = sends.iter().filter(|(time, _)| {
                let time = i128::from(*time);
                time >= start && time - start < width
            });
            let attempts = inside.clone().count() as u64;
            let retries = inside.filter(|(_, retry)| *retry).count() as u64;
            if attempts < 10 {
                continue;
            }
            if best.is_none_or(|(best_attempts, best_retries)| {
                retries * best_attempts > best_retries * attempts
            }) {
                best = Some((attempts, retries));
            }
        }
    }
    best
}

proptest! {
    #[test]
    fn the_sweep_finds_the_stormiest_of_all_windows(
        gaps in proptest::collection::vec((0u64..400, any::<bool>()), 0..80),
    ) {
        let mut time = 0;
        let sends: Vec<(u64, bool)> = gaps
            .into_iter()
            .map(|(gap_ms, retry)| {
                // Millisecond steps with exact ties and exact one-second distances.
                time += gap_ms * MS / 4;
                (time, retry)
            })
            .collect();
        let swept = storm_share(sends.iter().copied());
        let brute = brute_force(&sends);
        match (swept, brute) {
            (None, None) => {}
            (Some(window), Some((attempts, retries))) => {
                // The same share, exactly.
                prop_assert_eq!(window.retries * attempts, retries * window.attempts);
                prop_assert!(window.attempts >= 10);
                // Under a second in nanoseconds; whole milliseconds, floored, may read 1000.
                prop_assert!(window.end_ms - window.start_ms <= 1_000);
            }
            (swept, brute) => prop_assert!(false, "swept {:?}, brute force {:?}", swept, brute),
        }
    }
}

#[test]
fn run_metrics_report_the_storm_share_of_the_sends() {
    let mut metrics = RunMetrics::new(vec!["app".to_owned()], SECOND);
    // Twenty first attempts over 2 s, then twelve retries within 300 ms at 10 s.
    for index in 0..20 {
        metrics.record_send(index * 100 * MS, 0);
    }
    for index in 0..12 {
        metrics.record_send(10 * SECOND + index * 25 * MS, 1 + (index % 3) as u32);
    }
    let result = metrics.finish("tier-1".to_owned(), "test".to_owned());
    assert_eq!(result.analysis.storm_share, Some(1.0));
    assert_eq!(
        result.analysis.storm_window,
        Some(StormWindow {
            start_ms: 10_000,
            end_ms: 10_275,
            attempts: 12,
            retries: 12,
        })
    );
    let json = serde_json::to_string(&result.analysis).unwrap();
    assert!(
        json.contains(r#""storm_share":1.0,"storm_window":{"start_ms":10000,"end_ms":10275,"attempts":12,"retries":12}"#),
        "{json}"
    );

    // Without sends, there is no window: null in report.json.
    let quiet = RunMetrics::new(vec!["app".to_owned()], SECOND).finish("t".into(), "s".into());
    assert_eq!(quiet.analysis.storm_share, None);
    let json = serde_json::to_string(&quiet.analysis).unwrap();
    assert!(json.contains(r#""storm_share":null"#), "{json}");
}
