//! Durations as strategies read them (header values and spec parameters), through quota's one
//! parser: OpenAI's header samples, errors, and a header format/parse round trip.

use std::time::Duration;

use proptest::prelude::*;
use quota::{DurationError, format_go_duration, parse_duration};

#[track_caller]
fn check(text: &str, millis: u64) {
    assert_eq!(
        parse_duration(text),
        Ok(Duration::from_millis(millis)),
        "{text}"
    );
}

#[test]
fn parses_the_header_samples() {
    // The forms OpenAI's headers take (docs/limits.md, "Headers and durations").
    check("8ms", 8);
    check("120ms", 120);
    check("1s", 1_000);
    check("1.146s", 1_146);
    check("18.642s", 18_642);
    check("6m0s", 360_000);
    check("7m12s", 432_000);
    check("28m48s", 1_728_000);
    check("1h0m0s", 3_600_000);
    check("0", 0);
    check("0s", 0);
    check("1.5h", 5_400_000);
    assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
    assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
}

#[test]
fn rejects_malformed_durations_with_a_hint() {
    assert_eq!(parse_duration(""), Err(DurationError::Empty));
    let messages: Vec<String> = ["5", "5 parsecs", "ms", "1..2s", "-1s", "1s2"]
        .iter()
        .map(|text| parse_duration(text).unwrap_err().to_string())
        .collect();
    assert_eq!(
        messages,
        // The one parser names a missing unit and a negative sign for what they are (retry's
        // own parser called them an empty unit and a missing number), and lists `d`.
        [
            "invalid duration \"5\": the number \"5\" lacks a unit (expected one of: ns, us, ms, s, m, h, d)",
            "invalid duration \"5 parsecs\": unknown unit \" parsecs\" (expected one of: ns, us, ms, s, m, h, d)",
            "invalid duration \"ms\": expected a number at byte 0 (e.g. 100ms, 1.5s, 6m0s)",
            "invalid duration \"1..2s\": expected a number at byte 0 (e.g. 100ms, 1.5s, 6m0s)",
            "invalid duration \"-1s\": negative durations are not allowed",
            "invalid duration \"1s2\": the number \"2\" lacks a unit (expected one of: ns, us, ms, s, m, h, d)",
        ]
    );
    assert!(matches!(
        parse_duration("99999999999999999999999h"),
        Err(DurationError::Overflow { .. })
    ));
}

/// The header text strategies parse: retry's own copy of this formatter is gone, quota's is
/// the one the server sends.
#[test]
fn formats_like_go_at_millisecond_precision() {
    for (millis, text) in [
        (8, "8ms"),
        (1_146, "1.146s"),
        (18_640, "18.64s"),
        (360_000, "6m0s"),
        (432_000, "7m12s"),
        (3_600_000, "1h0m0s"),
        (0, "0s"),
    ] {
        assert_eq!(format_go_duration(Duration::from_millis(millis)), text);
    }
}

proptest! {
    #[test]
    fn format_then_parse_round_trips_milliseconds(millis in 0u64..400_000_000) {
        let duration = Duration::from_millis(millis);
        prop_assert_eq!(parse_duration(&format_go_duration(duration)), Ok(duration));
    }
}
