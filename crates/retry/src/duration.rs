//! Go-style durations (`8ms`, `1.146s`, `6m0s`, `1h0m0s`): the format of OpenAI's
//! `x-ratelimit-reset-*` headers, also used for every duration parameter of a strategy spec.

use std::time::Duration;

/// Why a Go-style duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is empty.
    #[error("empty duration (expected e.g. 100ms, 1.5s, 6m0s)")]
    Empty,
    /// A number is missing or malformed at this byte offset.
    #[error(
        "invalid duration {text:?}: expected a number at byte {offset} (e.g. 100ms, 1.5s, 6m0s)"
    )]
    ExpectedNumber { text: String, offset: usize },
    /// A unit is missing or unknown.
    #[error(
        "invalid duration {text:?}: unknown unit {unit:?} (expected one of: ns, us, ms, s, m, h)"
    )]
    UnknownUnit { text: String, unit: String },
    /// The value does not fit in a `Duration`.
    #[error("duration {text:?} is too large")]
    Overflow { text: String },
}

/// Parses a Go `time.Duration` string: one or more `<decimal><unit>` pieces, units `ns`, `us`
/// (or `µs`), `ms`, `s`, `m`, `h`; a bare `0` is zero. Negative durations are rejected because
/// no wait can be negative.
///
/// ```
/// use std::time::Duration;
/// use retry::parse_go_duration;
/// assert_eq!(parse_go_duration("8ms"), Ok(Duration::from_millis(8)));
/// assert_eq!(parse_go_duration("1.146s"), Ok(Duration::from_millis(1146)));
/// assert_eq!(parse_go_duration("7m12s"), Ok(Duration::from_secs(432)));
/// assert_eq!(parse_go_duration("1h0m0s"), Ok(Duration::from_secs(3600)));
/// assert!(parse_go_duration("5 parsecs").is_err());
/// ```
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = trimmed.as_bytes();
    let mut offset = 0;
    let mut total_nanos: u128 = 0;
    while offset < bytes.len() {
        let number_start = offset;
        while offset < bytes.len() && (bytes[offset].is_ascii_digit() || bytes[offset] == b'.') {
            offset += 1;
        }
        let number = &trimmed[number_start..offset];
        let expected_number = || DurationError::ExpectedNumber {
            text: text.to_owned(),
            offset: number_start,
        };
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(expected_number());
        }
        let unit_start = offset;
        while offset < bytes.len() && !(bytes[offset].is_ascii_digit() || bytes[offset] == b'.') {
            offset += 1;
        }
        let unit = &trimmed[unit_start..offset];
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                });
            }
        };
        // Exact decimal arithmetic: `1.146s` must be 1146 ms, not 1145.999... ms.
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let overflow = || DurationError::Overflow {
            text: text.to_owned(),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut piece = whole.checked_mul(nanos_per_unit).ok_or_else(overflow)?;
        let mut scale = nanos_per_unit;
        for digit in fraction.bytes().take(18) {
            scale /= 10;
            piece += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos.checked_add(piece).ok_or_else(overflow)?;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| DurationError::Overflow {
        text: text.to_owned(),
    })?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// Formats a duration the way Go prints `time.Duration` at millisecond precision, as OpenAI's
/// headers do: `8ms`, `1.146s`, `6m0s`, `1h0m0s`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(retry::format_go_duration(Duration::from_millis(1146)), "1.146s");
/// assert_eq!(retry::format_go_duration(Duration::from_secs(432)), "7m12s");
/// ```
pub fn format_go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return if duration.is_zero() {
            "0s".to_owned()
        } else {
            format!("{}ns", duration.as_nanos())
        };
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let hours = millis / 3_600_000;
    let minutes = (millis / 60_000) % 60;
    let secs_millis = millis % 60_000;
    let seconds = if secs_millis.is_multiple_of(1000) {
        format!("{}s", secs_millis / 1000)
    } else {
        let text = format!("{}.{:03}", secs_millis / 1000, secs_millis % 1000);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, minutes) => format!("{minutes}m{seconds}"),
        (hours, minutes) => format!("{hours}h{minutes}m{seconds}"),
    }
}
