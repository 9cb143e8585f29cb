//! The one duration grammar of ratelab: Go's `time.Duration` text plus days, parsed exactly in
//! integer nanoseconds, and the exact formatter that writes a duration back the way people write
//! it. Scenario files, strategy parameters and the `x-ratelimit-reset-*` headers a client reads
//! all go through [`parse_duration`]; the header *formatter*, which rounds up on purpose, is
//! [`format_go_duration`](crate::format_go_duration).

use std::time::Duration;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The units [`parse_duration`] accepts, as its error messages list them.
const UNITS: &str = "ns, us, ms, s, m, h, d";

/// Why a duration did not parse. Messages quote the text and say what is allowed.
///
/// ```
/// use quota::{parse_duration, DurationError};
///
/// assert_eq!(parse_duration(""), Err(DurationError::Empty));
/// assert_eq!(
///     parse_duration("5 parsecs").unwrap_err().to_string(),
///     "invalid duration \"5 parsecs\": unknown unit \" parsecs\" \
///      (expected one of: ns, us, ms, s, m, h, d)",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The text is empty (or only whitespace).
    #[error("empty duration (expected e.g. 100ms, 1.5s, 6m0s, 1h30m, 1d)")]
    Empty,
    /// The text starts with `-`: no wait or window can be negative.
    #[error("invalid duration {text:?}: negative durations are not allowed")]
    Negative {
        /// The input.
        text: String,
    },
    /// A number is missing or malformed (`ms`, `1..2s`) at this byte offset of the input.
    #[error(
        "invalid duration {text:?}: expected a number at byte {offset} (e.g. 100ms, 1.5s, 6m0s)"
    )]
    ExpectedNumber {
        /// The input.
        text: String,
        /// Where the number should start, in bytes from the start of the input.
        offset: usize,
    },
    /// A number has no unit after it (`90`, `1s2`).
    #[error(
        "invalid duration {text:?}: the number {number:?} lacks a unit (expected one of: {UNITS})"
    )]
    MissingUnit {
        /// The input.
        text: String,
        /// The number without a unit.
        number: String,
    },
    /// A unit is not one of `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`, `d`.
    #[error("invalid duration {text:?}: unknown unit {unit:?} (expected one of: {UNITS})")]
    UnknownUnit {
        /// The input.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// The value does not fit in 64-bit nanoseconds (about 584 years).
    #[error("duration {text:?} is too large (at most 584 years)")]
    Overflow {
        /// The input.
        text: String,
    },
}

/// Nanoseconds per unit of the grammar.
fn nanos_per_unit(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // Go accepts both the micro sign (U+00B5) and the Greek mu (U+03BC).
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "d" => 86_400 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Parses a duration: one or more `<number><unit>` pieces (`250ms`, `1.5s`, `1h30m`, `1d`),
/// units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h` and `d`; a bare `0` is zero. This is Go's
/// `time.Duration` grammar plus days, so it also reads OpenAI's `x-ratelimit-reset-*` headers
/// (`6m0s`, `1.146s`).
///
/// The arithmetic is exact: integers and decimal fraction digits in integer nanoseconds, no
/// floating point, so `1.146s` is 1,146 ms exactly. Fraction digits beyond the nanosecond are
/// dropped, as Go does. Surrounding whitespace and a leading `+` are allowed; negative durations
/// and values past `u64::MAX` nanoseconds are errors, never panics.
///
/// ```
/// use std::time::Duration;
/// use quota::parse_duration;
///
/// assert_eq!(parse_duration("1.146s"), Ok(Duration::from_millis(1_146)));
/// assert_eq!(parse_duration("7m12s"), Ok(Duration::from_secs(432)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
/// assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
/// assert_eq!(parse_duration("1.5us"), Ok(Duration::from_nanos(1_500)));
/// assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
/// assert!(parse_duration("7 minutes").is_err());
/// assert!(parse_duration("-1s").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim_start();
    let leading = text.len() - trimmed.len();
    let trimmed = trimmed.trim_end();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative {
            text: text.to_owned(),
        });
    }
    let (unsigned, sign_length) = match trimmed.strip_prefix('+') {
        Some(unsigned) => (unsigned, 1),
        None => (trimmed, 0),
    };
    if unsigned == "0" {
        return Ok(Duration::ZERO);
    }
    let is_number_byte = |byte: u8| byte.is_ascii_digit() || byte == b'.';
    let overflow = || DurationError::Overflow {
        text: text.to_owned(),
    };
    let bytes = unsigned.as_bytes();
    let mut offset = 0;
    let mut total: u64 = 0;
    loop {
        let number_start = offset;
        while offset < bytes.len() && is_number_byte(bytes[offset]) {
            offset += 1;
        }
        let number = &unsigned[number_start..offset];
        let Some((whole, fraction)) = split_number(number) else {
            return Err(DurationError::ExpectedNumber {
                text: text.to_owned(),
                offset: leading + sign_length + number_start,
            });
        };
        let unit_start = offset;
        while offset < bytes.len() && !is_number_byte(bytes[offset]) {
            offset += 1;
        }
        let unit = &unsigned[unit_start..offset];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit {
                text: text.to_owned(),
                number: number.to_owned(),
            });
        }
        let Some(unit_nanos) = nanos_per_unit(unit) else {
            return Err(DurationError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            });
        };
        let mut piece: u64 = 0;
        for digit in whole.bytes() {
            piece = piece
                .checked_mul(10)
                .and_then(|piece| piece.checked_add(u64::from(digit - b'0')))
                .ok_or_else(overflow)?;
        }
        piece = piece.checked_mul(unit_nanos).ok_or_else(overflow)?;
        // Each fraction digit is worth a tenth of the one before; digits worth less than a
        // nanosecond are dropped. The sum stays below one unit, so it cannot overflow alone.
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            piece = piece
                .checked_add(u64::from(digit - b'0') * scale)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(piece).ok_or_else(overflow)?;
        if offset == bytes.len() {
            return Ok(Duration::from_nanos(total));
        }
    }
}

/// Splits `12.5` into (`12`, `5`); `None` unless it is digits with at most one point and at
/// least one digit (`.5` and `5.` are numbers, as in Go).
fn split_number(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let has_digits = !whole.is_empty() || !fraction.is_empty();
    let valid = has_digits && !fraction.contains('.');
    valid.then_some((whole, fraction))
}

/// Formats `duration` exactly, the way people write durations in scenario files and strategy
/// specs: whole days, hours, minutes and seconds with the zero ones left out (`1h30m`, `1d`,
/// `1m30.5s`), and a duration under a second in the largest of `ms`, `us`, `ns` that leaves a
/// whole part (`250ms`, `1.5ms`, `500us`, `7ns`). [`parse_duration`] reads every output back to
/// the same nanosecond.
///
/// This is not the header format: OpenAI's `x-ratelimit-reset-*` values are Go text rounded up
/// to the millisecond, written by [`format_go_duration`](crate::format_go_duration).
///
/// ```
/// use std::time::Duration;
/// use quota::format_duration;
///
/// assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
/// assert_eq!(format_duration(Duration::from_secs(86_400 + 7_384)), "1d2h3m4s");
/// assert_eq!(format_duration(Duration::from_millis(90_500)), "1m30.5s");
/// assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
/// assert_eq!(format_duration(Duration::from_micros(1_500)), "1.5ms");
/// assert_eq!(format_duration(Duration::from_nanos(500)), "500ns");
/// assert_eq!(format_duration(Duration::from_micros(500)), "500us");
/// assert_eq!(format_duration(Duration::ZERO), "0s");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let mut text = String::with_capacity(16);
    let seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if seconds == 0 {
        let (unit_nanos, unit) = match nanos {
            0 => return "0s".to_owned(),
            1_000_000.. => (1_000_000, "ms"),
            1_000.. => (1_000, "us"),
            _ => (1, "ns"),
        };
        push_decimal(
            &mut text,
            nanos / unit_nanos,
            nanos % unit_nanos,
            unit_nanos,
        );
        text.push_str(unit);
        return text;
    }
    let mut rest = seconds;
    for (unit_seconds, unit) in [(86_400, 'd'), (3_600, 'h'), (60, 'm')] {
        if rest >= unit_seconds {
            text.push_str(itoa::Buffer::new().format(rest / unit_seconds));
            text.push(unit);
            rest %= unit_seconds;
        }
    }
    if rest > 0 || nanos > 0 {
        push_decimal(&mut text, rest as u32, nanos, NANOS_PER_SECOND as u32);
        text.push('s');
    }
    text
}

/// Appends `whole` and, when `fraction` (of `one`, a power of ten) is not zero, a point and
/// its digits with the trailing zeros dropped.
fn push_decimal(text: &mut String, whole: u32, fraction: u32, one: u32) {
    text.push_str(itoa::Buffer::new().format(whole));
    if fraction == 0 {
        return;
    }
    text.push('.');
    let mut fraction = fraction;
    let mut digit_value = one / 10;
    while fraction > 0 {
        let digit = fraction / digit_value;
        text.push(char::from(b'0' + digit as u8));
        fraction %= digit_value;
        digit_value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, nanos: u64) {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_nanos(nanos)),
            "{text}"
        );
    }

    #[test]
    fn parses_every_unit_and_combination_exactly() {
        check("7ns", 7);
        check("250us", 250_000);
        check("250µs", 250_000);
        check("250μs", 250_000);
        check("8ms", 8_000_000);
        check("1.146s", 1_146_000_000);
        check("5m", 300_000_000_000);
        check("1.5h", 5_400_000_000_000);
        check("1d", 86_400_000_000_000);
        check("1d2h3m4s", 93_784_000_000_000);
        check("1h0m0s", 3_600_000_000_000);
        check(".5s", 500_000_000);
        check("5.s", 5_000_000_000);
        check("+1s", 1_000_000_000);
        check(" 1s ", 1_000_000_000);
        check("0", 0);
        check("0s", 0);
        // Digits past the nanosecond are dropped, not rounded, as Go does.
        check("1.9999999999s", 1_999_999_999);
        check("0.0000000019s", 1);
        check("1.5ns", 1);
        // Go's largest duration in Go's spelling, and the largest here.
        check("2562047h47m16.854775807s", i64::MAX as u64);
        check("213503d23h34m33.709551615s", u64::MAX);
    }

    #[test]
    fn refuses_bad_text_without_panicking() {
        let message = |text: &str| parse_duration(text).unwrap_err().to_string();
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
        assert_eq!(
            message("-1s"),
            "invalid duration \"-1s\": negative durations are not allowed"
        );
        assert_eq!(
            message("1..2s"),
            "invalid duration \"1..2s\": expected a number at byte 0 (e.g. 100ms, 1.5s, 6m0s)"
        );
        assert_eq!(
            message(" 1s.m"),
            "invalid duration \" 1s.m\": expected a number at byte 3 (e.g. 100ms, 1.5s, 6m0s)"
        );
        assert_eq!(
            message("1s2"),
            "invalid duration \"1s2\": the number \"2\" lacks a unit \
             (expected one of: ns, us, ms, s, m, h, d)"
        );
        assert_eq!(
            message("3 weeks"),
            "invalid duration \"3 weeks\": unknown unit \" weeks\" \
             (expected one of: ns, us, ms, s, m, h, d)"
        );
        for too_large in [
            "213503d23h34m33.709551616s",
            "99999999999999999999999h",
            "18446744073709551616ns",
            "213503982335d",
            "200000d200000d",
        ] {
            assert_eq!(
                parse_duration(too_large),
                Err(DurationError::Overflow {
                    text: too_large.to_owned()
                }),
                "{too_large}"
            );
        }
    }

    #[test]
    fn formats_the_way_people_write() {
        for (nanos, text) in [
            (0, "0s"),
            (7, "7ns"),
            (1_500, "1.5us"),
            (500_000, "500us"),
            (250_000_000, "250ms"),
            (1_000_001, "1.000001ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m"),
            (5_400_000_000_000, "1h30m"),
            (3_600_500_000_000, "1h0.5s"),
            (86_400_000_000_000, "1d"),
            (u64::MAX, "213503d23h34m33.709551615s"),
        ] {
            let duration = Duration::from_nanos(nanos);
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }
}
