//! Growth factors and how a scenario grows by one: every client group's arrival rate (or its
//! instances, for closed loops) times the factor, token sizes unchanged.
//!
//! The rule per arrival kind (docs/plan.md says the same to users):
//!
//! | driver | what grows | exact? |
//! |---|---|---|
//! | `constant`, `poisson`, `gamma` | `rpm` (gamma's `burstiness` stays) | yes |
//! | `spike` | `base_rpm` and `peak_rpm`; the window stays | yes |
//! | `ramp` | `from_rpm` and `to_rpm`; `over` stays | yes |
//! | `diurnal` | `mean_rpm` and `amplitude_rpm`; period and phase stay | yes |
//! | `burst` | `count`, rounded to the nearest whole request (at least 1) | to one request |
//! | closed loop | `instances`, rounded to the nearest whole instance (at least 1); `stagger` stays | to one instance |
//! | `replay` | refused: see [`GrowthError::Replay`] | — |
//!
//! A replayed trace cannot grow honestly: playing it faster (`time_scale`) also shortens it
//! and changes its shape in time, and copying it sends the same requests at the same instants,
//! a burst no real growth makes. The planner refuses it with that explanation.

use std::fmt;

use scenario::{ArrivalProcess, Driver, Scenario};
use serde::{Serialize, Serializer};

/// A growth factor in thousandths (1.5x is 1,500): integers keep the grid, the bisection and
/// `plan.json` exact and their order total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Growth(u32);

/// The largest growth factor a plan accepts: 1,000x.
pub const MAX_GROWTH: Growth = Growth(1_000_000);

impl Growth {
    /// The factor 1x.
    pub const ONE: Growth = Growth(1_000);

    /// A factor from thousandths.
    pub const fn from_thousandths(thousandths: u32) -> Growth {
        Growth(thousandths)
    }

    /// The factor in thousandths.
    pub fn thousandths(self) -> u32 {
        self.0
    }

    /// The factor as a number, e.g. 1.5.
    pub fn factor(self) -> f64 {
        f64::from(self.0) / 1_000.0
    }

    /// The point halfway between two factors, rounded down to a thousandth.
    pub fn midpoint(self, other: Growth) -> Growth {
        Growth((self.0 + other.0) / 2)
    }
}

impl fmt::Display for Growth {
    /// `1x`, `1.5x`, `2.25x`, `0.125x`: as few decimals as the value needs.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000;
        let fraction = self.0 % 1_000;
        if fraction == 0 {
            write!(formatter, "{whole}x")
        } else {
            let digits = format!("{fraction:03}");
            write!(formatter, "{whole}.{}x", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for Growth {
    /// As the number it stands for (1.5), exactly as a person writes it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.factor())
    }
}

/// Parses one growth factor: a positive decimal number with at most three decimals, e.g.
/// `1.5` (an `x` suffix is accepted: `1.5x`).
///
/// ```
/// use plan::{Growth, parse_growth};
/// assert_eq!(parse_growth("1.5").unwrap(), Growth::from_thousandths(1_500));
/// assert_eq!(parse_growth("3x").unwrap().to_string(), "3x");
/// assert_eq!(
///     parse_growth("0").unwrap_err(),
///     "growth factor \"0\" is not above 0: a factor multiplies the scenario's traffic, so 1 is the scenario as written and 2 is twice its traffic"
/// );
/// assert!(parse_growth("abc").unwrap_err().contains("is not a number"));
/// ```
pub fn parse_growth(text: &str) -> Result<Growth, String> {
    let trimmed = text.trim();
    let number = trimmed.strip_suffix(['x', 'X']).unwrap_or(trimmed);
    let explain = "a factor multiplies the scenario's traffic, so 1 is the scenario as written and 2 is twice its traffic";
    let value: f64 = number.parse().map_err(|_| {
        format!("growth factor \"{trimmed}\" is not a number (expected e.g. 1.5; {explain})")
    })?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!(
            "growth factor \"{trimmed}\" is not above 0: {explain}"
        ));
    }
    if value > MAX_GROWTH.factor() {
        return Err(format!(
            "growth factor \"{trimmed}\" is over the largest a plan takes, {MAX_GROWTH}"
        ));
    }
    let thousandths = (value * 1_000.0).round();
    if (value * 1_000.0 - thousandths).abs() > 1e-6 {
        return Err(format!(
            "growth factor \"{trimmed}\" has more than three decimals (write e.g. 1.125)"
        ));
    }
    Ok(Growth(thousandths as u32))
}

/// Parses a comma-separated list of growth factors (`1,1.5,2,3,5`), sorted and without
/// repeats.
///
/// ```
/// let grid = plan::parse_growth_list("2, 1,1.5,2").unwrap();
/// let shown: Vec<String> = grid.iter().map(ToString::to_string).collect();
/// assert_eq!(shown, ["1x", "1.5x", "2x"]);
/// assert!(plan::parse_growth_list("").is_err());
/// ```
pub fn parse_growth_list(text: &str) -> Result<Vec<Growth>, String> {
    let mut grid = text
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(parse_growth)
        .collect::<Result<Vec<Growth>, String>>()?;
    if grid.is_empty() {
        return Err("no growth factor given (expected a list such as 1,1.5,2,3,5)".to_owned());
    }
    grid.sort();
    grid.dedup();
    Ok(grid)
}

/// Why a scenario cannot grow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrowthError {
    /// A group replays a recorded trace.
    #[error(
        "client group \"{group}\" replays a recorded trace, which cannot grow honestly: playing it faster (time_scale) also shortens it, and copying it sends the same requests at the same instants; to plan, describe the traffic with a generated arrival at the trace's rate (e.g. arrival = {{ kind = \"poisson\", rpm = ... }}), or compare tiers on the trace as it is with ratelab run and server.compare_tiers"
    )]
    Replay {
        /// The group's name.
        group: String,
    },
}

/// Checks that every group of `scenario` can grow; the first that cannot is the error.
pub fn check_growable(scenario: &Scenario) -> Result<(), GrowthError> {
    for group in &scenario.groups {
        if let Driver::OpenLoop(ArrivalProcess::Replay { .. }) = group.driver {
            return Err(GrowthError::Replay {
                group: group.name.clone(),
            });
        }
    }
    Ok(())
}

/// How one client group grows, for `plan.json` and the docs: what is multiplied, and the
/// factor the group actually gets at `growth` (rounded counts make it differ).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupScaling {
    /// The group's name.
    pub group: String,
    /// What grows, e.g. `rpm` or `instances (rounded)`.
    pub scales: &'static str,
}

/// What grows in each group of `scenario` ([`scale`]).
pub fn scaling_rules(scenario: &Scenario) -> Vec<GroupScaling> {
    scenario
        .groups
        .iter()
        .map(|group| GroupScaling {
            group: group.name.clone(),
            scales: match &group.driver {
                Driver::ClosedLoop { .. } => "instances, rounded to a whole instance",
                Driver::OpenLoop(process) => match process {
                    ArrivalProcess::Constant { .. }
                    | ArrivalProcess::Poisson { .. }
                    | ArrivalProcess::Gamma { .. } => "rpm",
                    ArrivalProcess::Burst { .. } => "count, rounded to a whole request",
                    ArrivalProcess::Spike { .. } => "base_rpm and peak_rpm",
                    ArrivalProcess::Ramp { .. } => "from_rpm and to_rpm",
                    ArrivalProcess::Diurnal { .. } => "mean_rpm and amplitude_rpm",
                    ArrivalProcess::Replay { .. } => "nothing: a replayed trace cannot grow",
                },
            },
        })
        .collect()
}

/// `scenario` with every group's traffic multiplied by `growth` (the table at the top of this
/// module); everything else, token sizes included, unchanged.
///
/// ```
/// # let text = "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o\"\ntier = \"tier-1\"\n[[clients]]\nname = \"a\"\narrival = { kind = \"poisson\", rpm = 100 }\nprompt_tokens = { kind = \"fixed\", value = 1 }\ncompletion_tokens = { kind = \"fixed\", value = 1 }\n";
/// # let base = scenario::parse_scenario(text, "x.toml", &mut |p| std::fs::read_to_string(p)).unwrap();
/// let grown = plan::scale(&base, plan::parse_growth("1.5").unwrap()).unwrap();
/// let scenario::Driver::OpenLoop(scenario::ArrivalProcess::Poisson { rpm }) = grown.groups[0].driver
///     else { unreachable!() };
/// assert_eq!(rpm, 150.0);
/// ```
pub fn scale(scenario: &Scenario, growth: Growth) -> Result<Scenario, GrowthError> {
    check_growable(scenario)?;
    let factor = growth.factor();
    let count = |value: u32| ((f64::from(value) * factor).round() as u32).max(1);
    let mut grown = scenario.clone();
    for group in &mut grown.groups {
        match &mut group.driver {
            Driver::ClosedLoop { .. } => group.instances = count(group.instances),
            Driver::OpenLoop(process) => match process {
                ArrivalProcess::Constant { rpm }
                | ArrivalProcess::Poisson { rpm }
                | ArrivalProcess::Gamma { rpm, .. } => *rpm *= factor,
                ArrivalProcess::Burst { count: burst, .. } => *burst = count(*burst),
                ArrivalProcess::Spike {
                    base_rpm, peak_rpm, ..
                } => {
                    *base_rpm *= factor;
                    *peak_rpm *= factor;
                }
                ArrivalProcess::Ramp {
                    from_rpm, to_rpm, ..
                } => {
                    *from_rpm *= factor;
                    *to_rpm *= factor;
                }
                ArrivalProcess::Diurnal {
                    mean_rpm,
                    amplitude_rpm,
                    ..
                } => {
                    *mean_rpm *= factor;
                    *amplitude_rpm *= factor;
                }
                ArrivalProcess::Replay { .. } => {
                    return Err(GrowthError::Replay {
                        group: group.name.clone(),
                    });
                }
            },
        }
    }
    Ok(grown)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name = "grow"
duration = "10m"
[server]
model = "gpt-4o-mini"
tier = "tier-1"
[[clients]]
name = "steady"
instances = 3
arrival = { kind = "constant", rpm = 100 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "gamma"
arrival = { kind = "gamma", rpm = 40, burstiness = 0.5 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "burst"
arrival = { kind = "burst", count = 3, at = "1m" }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "spike"
arrival = { kind = "spike", base_rpm = 10, peak_rpm = 30, start = "1m", length = "1m" }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "ramp"
arrival = { kind = "ramp", from_rpm = 10, to_rpm = 50, over = "5m" }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "diurnal"
arrival = { kind = "diurnal", mean_rpm = 20, amplitude_rpm = 10, period = "10m" }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "workers"
instances = 3
closed_loop = { concurrency = 4 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
"#;

    fn base() -> Scenario {
        scenario::parse_scenario(SCENARIO, "grow.toml", &mut |path| {
            std::fs::read_to_string(path)
        })
        .unwrap()
    }

    #[test]
    fn every_rate_grows_by_the_factor_and_counts_round_to_whole_units() {
        let grown = scale(&base(), parse_growth("1.5").unwrap()).unwrap();
        let drivers: Vec<String> = grown
            .groups
            .iter()
            .map(|group| format!("{} {:?}", group.instances, group.driver))
            .collect();
        assert_eq!(
            drivers,
            [
                "3 OpenLoop(Constant { rpm: 150.0 })",
                "1 OpenLoop(Gamma { rpm: 60.0, burstiness: 0.5 })",
                // 3 x 1.5 = 4.5 rounds half away from zero.
                "1 OpenLoop(Burst { count: 5, at: 60s, every: None })",
                "1 OpenLoop(Spike { base_rpm: 15.0, peak_rpm: 45.0, start: 60s, length: 60s })",
                "1 OpenLoop(Ramp { from_rpm: 15.0, to_rpm: 75.0, over: 300s })",
                "1 OpenLoop(Diurnal { mean_rpm: 30.0, amplitude_rpm: 15.0, period: 600s, phase: 0ns })",
                // Closed loops grow by instances (3 x 1.5 = 4.5 -> 5), not workers per instance.
                "5 ClosedLoop { concurrency: 4, think_time: 0ns, requests_per_worker: None }",
            ]
        );
        // Token sizes never grow.
        for (grown, base) in grown.groups.iter().zip(base().groups) {
            assert_eq!(grown.shape.prompt_tokens, base.shape.prompt_tokens);
            assert_eq!(grown.shape.max_tokens, base.shape.max_tokens);
        }
    }

    #[test]
    fn a_tiny_factor_keeps_at_least_one_instance_and_one_request_per_burst() {
        let grown = scale(&base(), parse_growth("0.01").unwrap()).unwrap();
        assert_eq!(grown.groups[2].instances, 1);
        assert!(matches!(
            grown.groups[2].driver,
            Driver::OpenLoop(ArrivalProcess::Burst { count: 1, .. })
        ));
        assert_eq!(grown.groups[6].instances, 1);
    }

    #[test]
    fn growth_factors_parse_exactly_and_bad_ones_say_why() {
        assert_eq!(parse_growth("1").unwrap(), Growth::ONE);
        assert_eq!(parse_growth(" 2.25x ").unwrap().to_string(), "2.25x");
        assert_eq!(parse_growth("0.125").unwrap().to_string(), "0.125x");
        assert_eq!(Growth(1_500).midpoint(Growth(2_000)), Growth(1_750));
        for (text, expected) in [
            ("-1", "is not above 0"),
            ("nan", "is not above 0"),
            ("1e9", "over the largest a plan takes, 1000x"),
            ("1.0001", "more than three decimals"),
            ("two", "is not a number (expected e.g. 1.5"),
        ] {
            let error = parse_growth(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(parse_growth_list("1,,2").is_ok());
        assert!(parse_growth_list("1,0").unwrap_err().contains("\"0\""));
    }
}
