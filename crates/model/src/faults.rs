//! Injected faults: the kinds, seeded random rates and scripted sequences (`[server.faults]`).
//! Windows of faults are timeline entries (`crate::timeline`).
//!
//! For each request the first source that fires wins, in this order: a script step for the
//! request's key, a timeline window covering the current server time, then one draw against
//! the rates from the RNG the executor passes in.

use std::collections::VecDeque;
use std::time::Duration;

use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// How long a `hang` lasts when no duration is given: past every SDK's default timeout but the
/// 600 s of openai-python, which a caller should lower for such tests.
pub const DEFAULT_HANG: Duration = Duration::from_secs(900);

/// One kind of injected failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// 500 `server_error`.
    ServerError,
    /// 503 `server_is_overloaded`.
    Overloaded,
    /// 429 `slow_down`.
    SlowDown,
    /// 429 `rate_limit_exceeded` on requests per minute, with a wait of `retry_after` (default
    /// 1s; `Retry-After` rounds it up to whole seconds).
    RateLimited {
        #[serde(default)]
        retry_after: Option<HumanDuration>,
    },
    /// 429 `insufficient_quota`.
    InsufficientQuota,
    /// No response until `duration` of server time passes (default 900s), then a 503; a
    /// served client gives up first, at its timeout.
    Hang {
        #[serde(default)]
        duration: Option<HumanDuration>,
    },
    /// The connection is dropped without a complete response.
    ConnectionReset,
    /// A stream opens normally and then carries an in-band error; a non-stream request gets a 500.
    StreamError,
}

/// Probabilities per request, each in [0, 1], summing to at most 1.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRates {
    pub server_error: f64,
    pub overloaded: f64,
    pub slow_down: f64,
    pub hang: f64,
    pub connection_reset: f64,
    pub stream_error: f64,
}

impl FaultRates {
    fn table(&self) -> [(f64, Fault); 6] {
        [
            (self.server_error, Fault::ServerError),
            (self.overloaded, Fault::Overloaded),
            (self.slow_down, Fault::SlowDown),
            (self.hang, Fault::Hang { duration: None }),
            (self.connection_reset, Fault::ConnectionReset),
            (self.stream_error, Fault::StreamError),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        let table = self.table();
        for (rate, fault) in &table {
            if !(0.0..=1.0).contains(rate) {
                return Err(format!(
                    "faults.rates: the rate for {fault:?} is {rate}, outside [0, 1]"
                ));
            }
        }
        let total: f64 = table.iter().map(|(rate, _)| rate).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!(
                "faults.rates: the rates sum to {total}; lower them to at most 1"
            ));
        }
        Ok(())
    }
}

/// One step of a script: `count` requests get `fault`, or pass untouched when it is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    #[serde(default)]
    pub fault: Option<Fault>,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// A sequence of steps for requests with `key` (any key when absent), consumed in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultScript {
    #[serde(default)]
    pub key: Option<String>,
    pub steps: Vec<ScriptStep>,
}

/// The `[server.faults]` table; also the body of `PUT /_admin/faults`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Probabilities per request of each kind of fault, all the time.
    pub rates: FaultRates,
    /// Sequences of faults for the requests of one key (or any key), consumed in order.
    pub scripts: Vec<FaultScript>,
}

impl FaultConfig {
    /// Checks every value, naming the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        self.rates.validate()?;
        for (index, script) in self.scripts.iter().enumerate() {
            validate_script(script)
                .map_err(|message| format!("faults.scripts[{index}]: {message}"))?;
        }
        Ok(())
    }
}

/// Checks one script: steps present, each with a count of at least one.
pub fn validate_script(script: &FaultScript) -> Result<(), String> {
    if script.steps.is_empty() {
        return Err("a script needs at least one step".to_owned());
    }
    match script.steps.iter().position(|step| step.count == 0) {
        Some(step) => Err(format!("steps[{step}].count: must be at least 1")),
        None => Ok(()),
    }
}

/// The live fault state: the rates, plus how far each script has run.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rates: FaultRates,
    /// Whether any rate is above zero: checked per request, so kept rather than recomputed.
    rates_set: bool,
    scripts: Vec<RunningScript>,
}

#[derive(Debug, Clone)]
struct RunningScript {
    key: Option<String>,
    steps: VecDeque<ScriptStep>,
}

/// A window of faults in force at some server time: what it injects, and to which share of
/// the requests it sees.
#[derive(Debug, Clone, Copy)]
pub struct ActiveWindow<'a> {
    pub fault: &'a Fault,
    /// From 0 to 1; 1 draws nothing.
    pub probability: f64,
}

impl Faults {
    pub fn new(config: &FaultConfig) -> Faults {
        let mut faults = Faults::default();
        faults.replace(config);
        faults
    }

    /// Replaces rates and scripts (scripts restart from their first step).
    pub fn replace(&mut self, config: &FaultConfig) {
        self.rates = config.rates;
        self.rates_set = config.rates.table().iter().any(|(rate, _)| *rate > 0.0);
        self.scripts.clear();
        config
            .scripts
            .iter()
            .for_each(|script| self.add_script(script.clone()));
    }

    /// Appends a script; it runs after scripts for the same key that are still running.
    pub fn add_script(&mut self, script: FaultScript) {
        self.scripts.push(RunningScript {
            key: script.key,
            steps: script.steps.into(),
        });
    }

    /// The current configuration, with scripts showing only their remaining steps.
    pub fn snapshot(&self) -> FaultConfig {
        FaultConfig {
            rates: self.rates,
            scripts: self
                .scripts
                .iter()
                .map(|script| FaultScript {
                    key: script.key.clone(),
                    steps: script.steps.iter().cloned().collect(),
                })
                .collect(),
        }
    }

    /// Whether [`Faults::decide`] can only answer `None` outside windows: no scripts, no rates.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.scripts.is_empty() && !self.rates_set
    }

    /// Decides the fault, if any, for one request with `key`, given the timeline's window in
    /// force (if any). Draws from `rng` only inside a window of probability below 1, or when
    /// some rate is set, so a scenario without faults never moves the stream.
    pub fn decide(
        &mut self,
        key: &str,
        window: Option<ActiveWindow<'_>>,
        rng: &mut impl Rng,
    ) -> Option<Fault> {
        if !self.scripts.is_empty()
            && let Some(scripted) = self.next_script_step(key)
        {
            return Some(scripted);
        }
        if let Some(window) = window
            && (window.probability >= 1.0 || rng.random::<f64>() < window.probability)
        {
            return Some(window.fault.clone());
        }
        if !self.rates_set {
            return None;
        }
        let table = self.rates.table();
        let mut draw: f64 = rng.random();
        for (rate, fault) in table {
            if draw < rate {
                return Some(fault);
            }
            draw -= rate;
        }
        None
    }

    fn next_script_step(&mut self, key: &str) -> Option<Fault> {
        let index = self
            .scripts
            .iter()
            .position(|script| script.key.as_deref().is_none_or(|wanted| wanted == key))?;
        let script = &mut self.scripts[index];
        let step = script.steps.front_mut()?;
        let fault = step.fault.clone();
        step.count -= 1;
        if step.count == 0 {
            script.steps.pop_front();
        }
        if script.steps.is_empty() {
            self.scripts.remove(index);
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn script(key: Option<&str>, steps: Vec<(Option<Fault>, u32)>) -> FaultScript {
        FaultScript {
            key: key.map(str::to_owned),
            steps: steps
                .into_iter()
                .map(|(fault, count)| ScriptStep { fault, count })
                .collect(),
        }
    }

    #[test]
    fn a_script_applies_to_its_key_only_and_then_ends() {
        let mut faults = Faults::new(&FaultConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        faults.add_script(script(
            Some("sk-a"),
            vec![
                (Some(Fault::ServerError), 2),
                (None, 1),
                (Some(Fault::SlowDown), 1),
            ],
        ));
        let mut decide = |key| faults.decide(key, None, &mut rng);
        assert_eq!(decide("sk-b"), None);
        assert_eq!(decide("sk-a"), Some(Fault::ServerError));
        assert_eq!(decide("sk-a"), Some(Fault::ServerError));
        assert_eq!(decide("sk-a"), None);
        assert_eq!(decide("sk-a"), Some(Fault::SlowDown));
        assert_eq!(decide("sk-a"), None);
        assert!(faults.snapshot().scripts.is_empty());
    }

    #[test]
    fn a_window_fires_for_its_share_and_a_certain_one_draws_nothing() {
        let mut faults = Faults::new(&FaultConfig::default());
        let overloaded = Fault::Overloaded;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let certain = ActiveWindow {
            fault: &overloaded,
            probability: 1.0,
        };
        assert_eq!(
            faults.decide("k", Some(certain), &mut rng),
            Some(Fault::Overloaded)
        );
        assert_eq!(rng, ChaCha8Rng::seed_from_u64(3), "nothing drawn");
        let half = ActiveWindow {
            fault: &overloaded,
            probability: 0.5,
        };
        let hits = (0..2000)
            .filter(|_| faults.decide("k", Some(half), &mut rng).is_some())
            .count();
        assert!((850..1150).contains(&hits), "{hits} of 2000 at 0.5");
    }

    #[test]
    fn rates_are_seeded_and_roughly_honoured() {
        let config = FaultConfig {
            rates: FaultRates {
                server_error: 0.25,
                ..FaultRates::default()
            },
            ..FaultConfig::default()
        };
        let run = |seed| {
            let mut faults = Faults::new(&config);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..2000)
                .map(|_| faults.decide("k", None, &mut rng).is_some())
                .collect::<Vec<_>>()
        };
        let first = run(5);
        assert_eq!(first, run(5), "same seed, same faults");
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((400..600).contains(&hits), "{hits} of 2000 at rate 0.25");
    }

    #[test]
    fn bad_rates_are_named() {
        let mut config = FaultConfig::default();
        config.rates.server_error = 0.7;
        config.rates.overloaded = 0.6;
        assert!(config.validate().unwrap_err().contains("sum to"));
    }
}
