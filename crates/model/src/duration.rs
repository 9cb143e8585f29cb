//! Human-readable durations in scenario and server config files: `"250ms"`, `"90s"`, `"5m"`,
//! `"1h30m"`, `"1d"`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way people write them: a sequence of `<number><unit>` parts, with units
/// `ns`, `us`, `ms`, `s`, `m`, `h` and `d` (`"1h30m"`, `"1.5s"`, `"250ms"`), read exactly in
/// integer nanoseconds by [`quota::parse_duration`], the grammar every crate shares.
///
/// ```
/// use model::HumanDuration;
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

/// Parses `"1h30m"`-style text with [`quota::parse_duration`], ratelab's one duration grammar;
/// the error says what was wrong and what is allowed, in the words of a scenario file.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    use quota::DurationError;
    let allowed = "expected a duration such as \"250ms\", \"90s\", \"5m\", \"1h30m\" or \"1d\"";
    quota::parse_duration(text).map_err(|error| match error {
        DurationError::Empty => format!("empty duration ({allowed})"),
        DurationError::MissingUnit { .. } => {
            format!("duration \"{text}\" lacks a unit ({allowed})")
        }
        DurationError::UnknownUnit { unit, .. } => format!(
            "unknown unit \"{unit}\" in duration \"{text}\" (units: ns, us, ms, s, m, h, d)"
        ),
        DurationError::Overflow { .. } => {
            format!("duration \"{text}\" is too long (at most 584 years)")
        }
        DurationError::Negative { .. } => {
            format!("duration \"{text}\" is negative ({allowed})")
        }
        DurationError::ExpectedNumber { offset, .. } => {
            format!("invalid duration \"{text}\": expected a number at byte {offset} ({allowed})")
        }
        // The grammar's error type may grow; its own message is still the best description.
        other => format!("{other} ({allowed})"),
    })
}

impl fmt::Display for HumanDuration {
    /// Writes the shortest exact form: `1h30m`, `1.5s`, `250ms`, `0s`
    /// ([`quota::format_duration`]).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&quota::format_duration(self.0))
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
            "pattern": "^\\s*\\+?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d))+)\\s*$",
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
    fn reads_fractions_exactly() {
        // The old f64 parser was exact for these only by luck of rounding.
        check("0.1s", Ok(Duration::from_millis(100)));
        check("1.146s", Ok(Duration::from_millis(1_146)));
        check("0.3ms", Ok(Duration::from_micros(300)));
        check("1.5h", Ok(Duration::from_secs(5_400)));
        check("2562047h", Ok(Duration::from_secs(2_562_047 * 3_600)));
        check(
            "213504d",
            Err("duration \"213504d\" is too long (at most 584 years)"),
        );
        check(
            "-5m",
            Err(
                "duration \"-5m\" is negative (expected a duration such as \"250ms\", \"90s\", \"5m\", \"1h30m\" or \"1d\")",
            ),
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "0s", "250ms", "1.5s", "1m30s", "1h", "1d2h3m4s", "500us", "1m30.5s",
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
    }
}
