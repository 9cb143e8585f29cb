//! Go's `time.Duration` text format, which OpenAI uses for `x-ratelimit-reset-*` headers and
//! "Please try again in" messages: a formatter (millisecond precision) and a parser.

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
pub fn format_go_duration(duration: Duration) -> String {
    let mut text = String::with_capacity(16);
    push_go_duration(&mut text, duration);
    text
}

/// Appends [`format_go_duration`]'s text to `text`, so a caller building many headers writes
/// into buffers it already has instead of allocating intermediate strings.
pub(crate) fn push_go_duration(text: &mut String, duration: Duration) {
    const MILLIS_PER_HOUR: u64 = 3_600_000;
    let millis = duration.as_nanos().div_ceil(NANOS_PER_MILLI);
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

/// Appends `value` in decimal without going through `fmt`'s machinery (and, for `u64`, without
/// 128-bit division, which is a library call per digit).
pub(crate) fn push_decimal(text: &mut String, value: impl itoa::Integer) {
    text.push_str(itoa::Buffer::new().format(value));
}

/// A Go duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Go duration {text:?}: {reason} (expected e.g. \"8ms\", \"1.146s\", \"6m0s\")")]
pub struct GoDurationError {
    /// The input.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses Go's `time.Duration` format (`300ms`, `1.5h`, `2h45m`, `1.146s`, `0`) as clients
/// read `x-ratelimit-reset-*` headers. Negative durations are refused; precision is kept to
/// the nanosecond.
///
/// ```
/// use std::time::Duration;
/// use quota::parse_go_duration;
///
/// assert_eq!(parse_go_duration("1.146s").unwrap(), Duration::from_millis(1_146));
/// assert_eq!(parse_go_duration("7m12s").unwrap(), Duration::from_secs(432));
/// assert_eq!(parse_go_duration("1h0m0s").unwrap(), Duration::from_secs(3_600));
/// assert_eq!(parse_go_duration("1.5us").unwrap(), Duration::from_nanos(1_500));
/// assert!(parse_go_duration("7 minutes").is_err());
/// ```
pub fn parse_go_duration(text: &str) -> Result<Duration, GoDurationError> {
    let error = |reason| GoDurationError {
        text: text.to_owned(),
        reason,
    };
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(error("negative durations are not allowed"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(error("it is empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let integer_length = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let integer = &rest[..integer_length];
        rest = &rest[integer_length..];
        let mut fraction = "";
        if let Some(after_point) = rest.strip_prefix('.') {
            let fraction_length = after_point
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_point.len());
            fraction = &after_point[..fraction_length];
            rest = &after_point[fraction_length..];
        }
        if integer.is_empty() && fraction.is_empty() {
            return Err(error("a number is missing"));
        }
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_length] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(error("a unit is missing")),
            _ => return Err(error("unknown unit (use ns, us, ms, s, m or h)")),
        };
        rest = &rest[unit_length..];
        let whole: u128 = if integer.is_empty() {
            0
        } else {
            integer
                .parse()
                .map_err(|_| error("a number is too large"))?
        };
        let mut part = whole
            .checked_mul(unit)
            .ok_or_else(|| error("the duration is too large"))?;
        // Fraction digits beyond nanosecond precision are dropped, as Go does.
        let mut scale = unit;
        for digit in fraction.bytes() {
            scale /= 10;
            part += u128::from(digit - b'0') * scale;
        }
        total = total
            .checked_add(part)
            .ok_or_else(|| error("the duration is too large"))?;
    }
    let nanos = u64::try_from(total).map_err(|_| error("the duration is too large"))?;
    Ok(Duration::from_nanos(nanos))
}
