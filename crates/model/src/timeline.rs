//! `[[server.timeline]]`: how the server changes over a run, at times from its start. Each
//! entry makes one change for a while: the tier of organizations that name none, the limits
//! of the scenario's model, a window of faults (an outage, a `slow_down` storm, a burst of
//! 429s) or the latency. The simulator and the mock server read it through the same
//! [`Timeline`], so both change at the same server time.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::ConfiguredLimits;
use crate::duration::HumanDuration;
use crate::faults::{ActiveWindow, Fault};
use crate::latency::LatencyConfig;

/// One change, in force from `at` until `until` (the end of the run when absent). It sets
/// exactly one of `tier`, `limits`, `fault` or `latency`. Where entries setting the same thing
/// overlap, the one written later wins.
///
/// ```
/// let config = model::ServerConfig::from_toml_str(r#"
/// model = "gpt-4o-mini"
/// [[timeline]]
/// at = "10m"
/// tier = "tier-2"
/// [[timeline]]
/// at = "4m"
/// until = "6m"
/// fault = { kind = "overloaded" }
/// "#, "serve.toml").unwrap();
/// assert_eq!(config.timeline.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    /// When the change takes effect, from the start of the run.
    pub at: HumanDuration,
    /// When it ends; absent, it lasts to the end of the run.
    #[serde(default)]
    pub until: Option<HumanDuration>,
    /// The tier of organizations that name none: a tier upgrade (or downgrade).
    #[serde(default)]
    pub tier: Option<String>,
    /// Limits of `model` over the tier's, as `limits` writes them: a limit that drops to X.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub limits: Option<ConfiguredLimits>,
    /// A fault every request meets (or the `probability` share of them): `overloaded` for an
    /// outage, `slow_down`, `rate_limited`, `server_error`, `hang`, ...
    #[serde(default)]
    pub fault: Option<Fault>,
    /// With `fault`: the share of requests it hits, from 0 to 1. Default: 1.
    #[serde(default)]
    pub probability: Option<f64>,
    /// The latency while in force, a whole `[latency]` table (fields it leaves out take their
    /// defaults).
    #[serde(default)]
    pub latency: Option<LatencyConfig>,
}

impl TimelineEntry {
    /// The entry in words: when, then what changes: `10m-20m: limits rpm 2500, tpm 1000000`,
    /// `25m: tier tier-2`, `4m-6m: fault overloaded (50% of requests)`.
    ///
    /// ```
    /// let entry: model::TimelineEntry =
    ///     toml::from_str("at = \"4m\"\nuntil = \"6m\"\nfault = { kind = \"overloaded\" }").unwrap();
    /// assert_eq!(entry.describe(), "4m-6m: fault overloaded");
    /// ```
    pub fn describe(&self) -> String {
        let when = match self.until {
            Some(until) => format!("{}-{until}", self.at),
            None => self.at.to_string(),
        };
        let what = if let Some(tier) = &self.tier {
            format!("tier {tier}")
        } else if let Some(limits) = &self.limits {
            let figures: Vec<String> = quota::LimitKind::ALL
                .iter()
                .filter_map(|kind| {
                    limits
                        .set
                        .get(*kind)
                        .map(|value| format!("{} {value}", kind.abbreviation().to_lowercase()))
                })
                .collect();
            format!("limits {}", figures.join(", "))
        } else if let Some(fault) = &self.fault {
            let kind = serde_json::to_value(fault)
                .ok()
                .and_then(|value| value["kind"].as_str().map(str::to_owned))
                .unwrap_or_default();
            match self.probability {
                Some(share) if share < 1.0 => {
                    format!("fault {kind} ({:.0}% of requests)", share * 100.0)
                }
                _ => format!("fault {kind}"),
            }
        } else if let Some(latency) = &self.latency {
            format!(
                "latency ttft {}, per output token {}, jitter {}",
                latency.ttft, latency.per_output_token, latency.jitter
            )
        } else {
            "no change".to_owned()
        };
        format!("{when}: {what}")
    }

    /// Whether the entry changes the limits (a tier or limits change).
    pub fn changes_limits(&self) -> bool {
        self.tier.is_some() || self.limits.is_some()
    }

    fn covers(&self, now: Duration) -> bool {
        self.at.0 <= now && self.until.is_none_or(|until| now < until.0)
    }
}

/// Checks every entry: one change each, a window that ends after it starts, a probability
/// in range.
pub(crate) fn validate(entries: &[TimelineEntry]) -> Result<(), String> {
    for (index, entry) in entries.iter().enumerate() {
        let place = format!("timeline[{index}]");
        let changes = [
            entry.tier.is_some(),
            entry.limits.is_some(),
            entry.fault.is_some(),
            entry.latency.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count();
        if changes != 1 {
            return Err(format!(
                "{place}: set exactly one of `tier`, `limits`, `fault` or `latency` \
                 (found {changes}); write one entry per change"
            ));
        }
        if let Some(until) = entry.until
            && until <= entry.at
        {
            return Err(format!(
                "{place}.until: {until} is not after `at` ({}); a change must last",
                entry.at
            ));
        }
        if let Some(probability) = entry.probability {
            if entry.fault.is_none() {
                return Err(format!(
                    "{place}.probability: only a `fault` entry takes a probability"
                ));
            }
            if !(probability > 0.0 && probability <= 1.0) {
                return Err(format!(
                    "{place}.probability: {probability} is outside (0, 1]"
                ));
            }
        }
        if let Some(latency) = &entry.latency {
            latency
                .validate()
                .map_err(|message| format!("{place}.{message}"))?;
        }
    }
    Ok(())
}

/// The timeline as the model reads it: for a server time, which entry of each kind is in
/// force.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    entries: Vec<TimelineEntry>,
    /// [`Timeline::changes`], kept for [`Timeline::epoch`].
    changes: Vec<Duration>,
}

impl Timeline {
    pub fn new(entries: &[TimelineEntry]) -> Timeline {
        let mut timeline = Timeline {
            entries: entries.to_vec(),
            changes: Vec::new(),
        };
        timeline.changes = timeline.changes();
        timeline
    }

    /// How many changes have happened by `now`: the limits in force are the same for every
    /// time of one epoch, so what a route enforces is cached per epoch.
    #[inline]
    pub fn epoch(&self, now: Duration) -> usize {
        if self.changes.is_empty() {
            return 0;
        }
        self.changes.partition_point(|change| *change <= now)
    }

    /// Whether nothing ever changes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in the order written.
    pub fn entries(&self) -> &[TimelineEntry] {
        &self.entries
    }

    /// The last entry written that covers `now` and sets what `pick` reads, with its index.
    fn in_force<'a, T>(
        &'a self,
        now: Duration,
        pick: impl Fn(&'a TimelineEntry) -> Option<T>,
    ) -> Option<(usize, T)> {
        self.entries
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, entry)| entry.covers(now))
            .find_map(|(index, entry)| pick(entry).map(|value| (index, value)))
    }

    /// The tier change in force at `now`, if any.
    pub fn tier(&self, now: Duration) -> Option<&str> {
        self.in_force(now, |entry| entry.tier.as_deref())
            .map(|(_, tier)| tier)
    }

    /// The limits change in force at `now`, with its entry's index (which identifies it).
    pub fn limits(&self, now: Duration) -> Option<(usize, &ConfiguredLimits)> {
        self.in_force(now, |entry| entry.limits.as_ref())
    }

    /// The fault window in force at `now`, if any.
    #[inline]
    pub fn fault(&self, now: Duration) -> Option<ActiveWindow<'_>> {
        if self.entries.is_empty() {
            return None;
        }
        self.in_force(now, |entry| {
            entry.fault.as_ref().map(|fault| ActiveWindow {
                fault,
                probability: entry.probability.unwrap_or(1.0),
            })
        })
        .map(|(_, window)| window)
    }

    /// The latency regime in force at `now`, if the timeline changes it then.
    #[inline]
    pub fn latency(&self, now: Duration) -> Option<&LatencyConfig> {
        if self.entries.is_empty() {
            return None;
        }
        self.in_force(now, |entry| entry.latency.as_ref())
            .map(|(_, latency)| latency)
    }

    /// Every instant at which something starts or stops, sorted, without repeats: where a
    /// report draws its marks.
    pub fn changes(&self) -> Vec<Duration> {
        let mut times: Vec<Duration> = self
            .entries
            .iter()
            .flat_map(|entry| [Some(entry.at.0), entry.until.map(|until| until.0)])
            .flatten()
            .collect();
        times.sort_unstable();
        times.dedup();
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<TimelineEntry> {
        #[derive(Deserialize)]
        struct File {
            timeline: Vec<TimelineEntry>,
        }
        toml::from_str::<File>(text).unwrap().timeline
    }

    #[test]
    fn the_later_entry_wins_where_two_overlap_and_each_ends_on_time() {
        let timeline = Timeline::new(&entries(
            r#"
            [[timeline]]
            at = "1m"
            tier = "tier-2"
            [[timeline]]
            at = "2m"
            until = "3m"
            tier = "tier-3"
            [[timeline]]
            at = "30s"
            until = "90s"
            fault = { kind = "overloaded" }
            probability = 0.5
            "#,
        ));
        let at = Duration::from_secs;
        assert_eq!(timeline.tier(at(59)), None);
        assert_eq!(timeline.tier(at(60)), Some("tier-2"));
        assert_eq!(timeline.tier(at(150)), Some("tier-3"));
        assert_eq!(timeline.tier(at(180)), Some("tier-2"));
        assert!(timeline.fault(at(29)).is_none());
        let window = timeline.fault(at(30)).unwrap();
        assert_eq!(
            (window.fault, window.probability),
            (&Fault::Overloaded, 0.5)
        );
        assert!(timeline.fault(at(90)).is_none());
        assert_eq!(
            timeline.changes(),
            [at(30), at(60), at(90), at(120), at(180)]
        );
    }

    #[test]
    fn every_kind_of_entry_describes_itself() {
        let described: Vec<String> = entries(
            r#"
            [[timeline]]
            at = "25m"
            tier = "tier-2"
            [[timeline]]
            at = "10m"
            until = "20m"
            limits = { rpm = 2500, tpm = 1000000 }
            [[timeline]]
            at = "1m"
            until = "90s"
            fault = { kind = "slow_down" }
            probability = 0.25
            [[timeline]]
            at = "0s"
            latency = { ttft = "1s", per_output_token = "20ms", jitter = 0.0 }
            "#,
        )
        .iter()
        .map(TimelineEntry::describe)
        .collect();
        assert_eq!(
            described,
            [
                "25m: tier tier-2",
                "10m-20m: limits rpm 2500, tpm 1000000",
                "1m-1m30s: fault slow_down (25% of requests)",
                "0s: latency ttft 1s, per output token 20ms, jitter 0",
            ]
        );
    }

    #[test]
    fn a_bad_entry_is_named_with_the_fix() {
        let check = |text: &str, expected: &str| {
            let error = validate(&entries(text)).unwrap_err();
            assert!(error.contains(expected), "{error}");
        };
        check(
            "[[timeline]]\nat = \"1m\"\ntier = \"tier-2\"\nfault = { kind = \"overloaded\" }",
            "timeline[0]: set exactly one of",
        );
        check(
            "[[timeline]]\nat = \"1m\"\nuntil = \"1m\"\ntier = \"tier-2\"",
            "timeline[0].until: 1m is not after `at`",
        );
        check(
            "[[timeline]]\nat = \"1m\"\ntier = \"tier-2\"\nprobability = 0.5",
            "only a `fault` entry takes a probability",
        );
        check(
            "[[timeline]]\nat = \"1m\"\nfault = { kind = \"overloaded\" }\nprobability = 0",
            "outside (0, 1]",
        );
    }
}
