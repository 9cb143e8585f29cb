//! Human-readable durations in scenario files: `"250ms"`, `"90s"`, `"5m"`, `"1h30m"`, `"1d"`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way people write them: a sequence of `<number><unit>` parts, with units
/// `ns`, `us`, `ms`, `s`, `m`, `h` and `d` (`"1h30m"`, `"1.5s"`, `"250ms"`).
///
/// ```
/// use scenario::HumanDuration;
/// use std::time::Duration;
///
/// let parsed: HumanDuration = "1m30s".parse().unwrap();
/// assert_eq!(parsed.0, Duration::from_secs(90));
/// assert_eq!(parsed.to_string(), "1m30s");
/// assert!("90".parse::<HumanDuration>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text).map(HumanDuration)
    }
}

/// Parses `"1h30m"`-style text; the error says what was wrong and what is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let allowed = "expected a duration such as \"250ms\", \"90s\", \"5m\", \"1h30m\" or \"1d\"";
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty duration ({allowed})"));
    }
    let mut total_nanos: u128 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_length = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_length == 0 {
            return Err(format!("invalid duration \"{text}\" ({allowed})"));
        }
        let number: f64 = rest[..number_length]
            .parse()
            .map_err(|_| format!("invalid number in duration \"{text}\" ({allowed})"))?;
        rest = &rest[number_length..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit: f64 = match &rest[..unit_length] {
            "ns" => 1.0,
            "us" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3_600e9,
            "d" => 86_400e9,
            "" => return Err(format!("duration \"{text}\" lacks a unit ({allowed})")),
            other => {
                return Err(format!(
                    "unknown unit \"{other}\" in duration \"{text}\" (units: ns, us, ms, s, m, h, d)"
                ));
            }
        };
        rest = &rest[unit_length..];
        let nanos = (number * nanos_per_unit).round();
        if !nanos.is_finite() || nanos > 1e20 {
            return Err(format!("duration \"{text}\" is too long"));
        }
        total_nanos += nanos as u128;
    }
    let nanos =
        u64::try_from(total_nanos).map_err(|_| format!("duration \"{text}\" is too long"))?;
    Ok(Duration::from_nanos(nanos))
}

impl fmt::Display for HumanDuration {
    /// Writes the shortest exact form: `1h30m`, `1.5s`, `250ms`, `0s`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return formatter.write_str("0s");
        }
        if !nanos.is_multiple_of(1_000_000_000) {
            let millis = nanos as f64 / 1e6;
            return if millis < 1_000.0 {
                write!(formatter, "{millis}ms")
            } else {
                write!(formatter, "{}s", millis / 1_000.0)
            };
        }
        let mut seconds = self.0.as_secs();
        for (unit_seconds, unit) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
            if seconds >= unit_seconds {
                write!(formatter, "{}{unit}", seconds / unit_seconds)?;
                seconds %= unit_seconds;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h|d))+$",
            "description": "a duration such as \"250ms\", \"90s\", \"5m\", \"1h30m\" or \"1d\"",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: Result<Duration, &str>) {
        assert_eq!(parse_duration(text), expected.map_err(str::to_owned));
    }

    #[test]
    fn parses_each_unit_and_compounds() {
        check("250ms", Ok(Duration::from_millis(250)));
        check("1.5s", Ok(Duration::from_millis(1_500)));
        check("5m", Ok(Duration::from_secs(300)));
        check("1h30m", Ok(Duration::from_secs(5_400)));
        check("1d", Ok(Duration::from_secs(86_400)));
        check("0s", Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_text_with_the_allowed_forms() {
        check(
            "90",
            Err(
                "duration \"90\" lacks a unit (expected a duration such as \"250ms\", \"90s\", \"5m\", \"1h30m\" or \"1d\")",
            ),
        );
        check(
            "3 weeks",
            Err("unknown unit \" weeks\" in duration \"3 weeks\" (units: ns, us, ms, s, m, h, d)"),
        );
        check(
            "",
            Err(
                "empty duration (expected a duration such as \"250ms\", \"90s\", \"5m\", \"1h30m\" or \"1d\")",
            ),
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["0s", "250ms", "1.5s", "1m30s", "1h", "1d2h3m4s"] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
    }
}
