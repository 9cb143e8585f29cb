//! Go's `time.Duration` text format as OpenAI writes it in `x-ratelimit-reset-*` headers and
//! "Please try again in" messages: millisecond precision, rounded up. The parser that reads it
//! back (and every other duration) is [`parse_duration`](crate::parse_duration).

use std::time::Duration;

const NANOS_PER_MILLI: u128 = 1_000_000;

/// Formats `duration` as OpenAI does: Go's `time.Duration` format at millisecond precision,
/// rounded *up* to the next millisecond so a client never retries too early.
///
/// ```
/// use std::time::Duration;
/// use quota::format_go_duration;
///
/// assert_eq!(format_go_duration(Duration::from_millis(8)), "8ms");
/// assert_eq!(format_go_duration(Duration::from_millis(1_146)), "1.146s");
/// assert_eq!(format_go_duration(Duration::from_secs(360)), "6m0s");
/// assert_eq!(format_go_duration(Duration::from_secs(432)), "7m12s");
/// assert_eq!(format_go_duration(Duration::from_secs(3_600)), "1h0m0s");
/// assert_eq!(format_go_duration(Duration::from_nanos(1)), "1ms");
/// assert_eq!(format_go_duration(Duration::ZERO), "0s");
/// ```
///
/// Durations people write (scenario files, strategy specs) are printed exactly, without the
/// rounding or the zero units, by [`format_duration`](crate::format_duration).
pub fn format_go_duration(duration: Duration) -> String {
    let mut text = String::with_capacity(16);
    push_go_duration(&mut text, duration);
    text
}

/// Appends [`format_go_duration`]'s text to `text`, so a caller building many headers writes
/// into buffers it already has instead of allocating intermediate strings.
pub(crate) fn push_go_duration(text: &mut String, duration: Duration) {
    const MILLIS_PER_HOUR: u64 = 3_600_000;
    let millis = rounded_up_millis(duration);
    // Whole hours split off first leave a remainder that 32 bits hold. Every realistic wait
    // fits in 64 bits, where that split is plain instructions rather than 128-bit library
    // calls.
    let (hours, rest) = match u64::try_from(millis) {
        Ok(millis) => (
            u128::from(millis / MILLIS_PER_HOUR),
            (millis % MILLIS_PER_HOUR) as u32,
        ),
        Err(_) => (
            millis / u128::from(MILLIS_PER_HOUR),
            (millis % u128::from(MILLIS_PER_HOUR)) as u32,
        ),
    };
    if hours == 0 && rest == 0 {
        text.push_str("0s");
        return;
    }
    if hours == 0 && rest < 1_000 {
        push_decimal(text, rest);
        text.push_str("ms");
        return;
    }
    let minutes = rest / 60_000;
    let seconds = rest / 1_000 % 60;
    let fraction = rest % 1_000;
    if hours > 0 {
        push_decimal(text, hours);
        text.push('h');
    }
    if hours > 0 || minutes > 0 {
        push_decimal(text, minutes);
        text.push('m');
    }
    push_decimal(text, seconds);
    if fraction > 0 {
        // Three digits with the trailing zeros dropped: 100 -> ".1", 146 -> ".146".
        let digits = [fraction / 100, fraction / 10 % 10, fraction % 10];
        let kept = if digits[2] != 0 {
            3
        } else if digits[1] != 0 {
            2
        } else {
            1
        };
        text.push('.');
        for digit in &digits[..kept] {
            text.push(char::from(b'0' + *digit as u8));
        }
    }
    text.push('s');
}

/// Whole milliseconds of `duration`, rounded up: what its header text says.
fn rounded_up_millis(duration: Duration) -> u128 {
    duration.as_nanos().div_ceil(NANOS_PER_MILLI)
}

/// The duration a client reads back from [`format_go_duration`]'s text: `duration` rounded up
/// to the millisecond (saturating at `u64::MAX` milliseconds). Typed header values use it so
/// they equal what parsing the header gives.
///
/// ```
/// use std::time::Duration;
/// use quota::{format_go_duration, header_duration, parse_duration};
///
/// let reset = Duration::from_nanos(1_146_000_001);
/// assert_eq!(header_duration(reset), Duration::from_millis(1_147));
/// assert_eq!(parse_duration(&format_go_duration(reset)), Ok(header_duration(reset)));
/// ```
pub fn header_duration(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(rounded_up_millis(duration)).unwrap_or(u64::MAX))
}

/// Appends `value` in decimal without going through `fmt`'s machinery (and, for `u64`, without
/// 128-bit division, which is a library call per digit).
pub(crate) fn push_decimal(text: &mut String, value: impl itoa::Integer) {
    text.push_str(itoa::Buffer::new().format(value));
}
