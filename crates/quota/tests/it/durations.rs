//! Go duration text: OpenAI's samples format exactly, and parsing inverts formatting.

use std::time::Duration;

use proptest::prelude::*;
use quota::{
    format_duration, format_go_duration, parse_duration, retry_after_millis, retry_after_seconds,
};

#[test]
fn openai_samples_format_exactly() {
    for (millis, text) in [
        (8, "8ms"),
        (120, "120ms"),
        (1_000, "1s"),
        (1_146, "1.146s"),
        (18_642, "18.642s"),
        (360_000, "6m0s"),
        (432_000, "7m12s"),
        (1_728_000, "28m48s"),
        (3_600_000, "1h0m0s"),
    ] {
        assert_eq!(format_go_duration(Duration::from_millis(millis)), text);
        assert_eq!(parse_duration(text), Ok(Duration::from_millis(millis)));
    }
}

#[test]
fn durations_beyond_64_bit_milliseconds_format_exactly() {
    // Duration::MAX in milliseconds (rounded up) needs more than 64 bits.
    let millis = Duration::MAX.as_nanos().div_ceil(1_000_000);
    assert!(u64::try_from(millis).is_err());
    let (hours, minutes, seconds) = (
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1_000 % 60,
    );
    assert_eq!(
        millis % 1_000,
        0,
        "the fraction rounds up to a whole second"
    );
    assert_eq!(
        format_go_duration(Duration::MAX),
        format!("{hours}h{minutes}m{seconds}s")
    );
}

#[test]
fn retry_after_rounds_up() {
    assert_eq!(retry_after_seconds(Duration::from_millis(644)), 1);
    assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
    assert_eq!(retry_after_seconds(Duration::from_nanos(2_000_000_001)), 3);
    assert_eq!(retry_after_millis(Duration::from_nanos(644_000_001)), 645);
}

#[test]
fn bad_durations_name_the_problem() {
    // The one parser's message (it was quota's own "invalid Go duration ..." before the
    // three parsers became one): the unit as written, and the units allowed.
    let error = parse_duration("5 minutes").unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid duration \"5 minutes\": unknown unit \" minutes\" \
         (expected one of: ns, us, ms, s, m, h, d)"
    );
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("").is_err());
    assert!(parse_duration("12").is_err());
}

proptest! {
    #[test]
    fn parsing_inverts_formatting_at_millisecond_precision(nanos in 0..400_000_000_000_000u64) {
        let duration = Duration::from_nanos(nanos);
        let parsed = parse_duration(&format_go_duration(duration)).unwrap();
        prop_assert_eq!(parsed.as_nanos(), u128::from(nanos).div_ceil(1_000_000) * 1_000_000);
    }
}

proptest! {
    #[test]
    fn parsing_inverts_exact_formatting(nanos in any::<u64>()) {
        let duration = Duration::from_nanos(nanos);
        prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
    }
}
