//! Injected faults: seeded random rates, scheduled windows and scripted sequences.
//!
//! For each request the first source that fires wins, in this order: a script step for the
//! request's key, a window covering the current server time, then one seeded draw against the
//! rates.

use std::collections::VecDeque;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How long a `hang` lasts when no duration is given: past every SDK's default timeout but the
/// 600 s of openai-python, which a caller should lower for such tests.
pub const DEFAULT_HANG: Duration = Duration::from_secs(900);

/// One kind of injected failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// 500 `server_error`.
    ServerError,
    /// 503 `server_is_overloaded`.
    Overloaded,
    /// 429 `slow_down`.
    SlowDown,
    /// 429 `rate_limit_exceeded` on requests per minute, with a Retry-After of `retry_after_ms`
    /// (rounded up to whole seconds for `Retry-After`; default 1 s).
    RateLimited {
        #[serde(default)]
        retry_after_ms: Option<u64>,
    },
    /// 429 `insufficient_quota`.
    InsufficientQuota,
    /// No response until `ms` of server time pass (default 900 s) or the server shuts down.
    Hang {
        #[serde(default)]
        ms: Option<u64>,
    },
    /// The connection is dropped without a complete response.
    ConnectionReset,
    /// A stream opens normally and then carries an in-band error; a non-stream request gets a 500.
    StreamError,
}

/// Probabilities per request, each in [0, 1], summing to at most 1.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
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
            (self.hang, Fault::Hang { ms: None }),
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

/// A fault applied to every request while the server clock is in `[start_s, end_s)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultWindow {
    pub start_s: f64,
    pub end_s: f64,
    pub fault: Fault,
}

/// One step of a script: `count` requests get `fault`, or pass untouched when it is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultScript {
    #[serde(default)]
    pub key: Option<String>,
    pub steps: Vec<ScriptStep>,
}

/// The `[faults]` section of the config file; also the body of `PUT /_admin/faults`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    pub rates: FaultRates,
    pub windows: Vec<FaultWindow>,
    pub scripts: Vec<FaultScript>,
}

impl FaultConfig {
    /// Checks every value, naming the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        self.rates.validate()?;
        for (index, window) in self.windows.iter().enumerate() {
            if !(window.start_s.is_finite()
                && window.end_s.is_finite()
                && 0.0 <= window.start_s
                && window.start_s < window.end_s)
            {
                return Err(format!(
                    "faults.windows[{index}]: needs 0 <= start_s < end_s, got {} and {}",
                    window.start_s, window.end_s
                ));
            }
        }
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

/// The live fault state: what is configured plus how far each script has run.
#[derive(Debug)]
pub struct Faults {
    rates: FaultRates,
    windows: Vec<FaultWindow>,
    scripts: Vec<RunningScript>,
    rng: ChaCha8Rng,
}

#[derive(Debug)]
struct RunningScript {
    key: Option<String>,
    steps: VecDeque<ScriptStep>,
}

impl Faults {
    pub fn new(config: &FaultConfig, seed: u64) -> Faults {
        let mut faults = Faults {
            rates: FaultRates::default(),
            windows: Vec::new(),
            scripts: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        faults.replace(config);
        faults
    }

    /// Replaces rates, windows and scripts (scripts restart from their first step).
    pub fn replace(&mut self, config: &FaultConfig) {
        self.rates = config.rates;
        self.windows = config.windows.clone();
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
            windows: self.windows.clone(),
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

    /// Whether [`Faults::decide`] can only answer `None`: no scripts, no windows, no rates.
    pub fn is_idle(&self) -> bool {
        self.scripts.is_empty()
            && self.windows.is_empty()
            && self.rates.table().iter().all(|(rate, _)| *rate == 0.0)
    }

    /// Decides the fault, if any, for one request with `key` arriving at server time `now`.
    pub fn decide(&mut self, now: Duration, key: &str) -> Option<Fault> {
        if let Some(scripted) = self.next_script_step(key) {
            return Some(scripted);
        }
        let seconds = now.as_secs_f64();
        if let Some(window) = self
            .windows
            .iter()
            .find(|window| window.start_s <= seconds && seconds < window.end_s)
        {
            return Some(window.fault.clone());
        }
        let table = self.rates.table();
        if table.iter().all(|(rate, _)| *rate == 0.0) {
            return None;
        }
        let mut draw: f64 = self.rng.random();
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
        let mut faults = Faults::new(&FaultConfig::default(), 0);
        faults.add_script(script(
            Some("sk-a"),
            vec![
                (Some(Fault::ServerError), 2),
                (None, 1),
                (Some(Fault::SlowDown), 1),
            ],
        ));
        let now = Duration::ZERO;
        assert_eq!(faults.decide(now, "sk-b"), None);
        assert_eq!(faults.decide(now, "sk-a"), Some(Fault::ServerError));
        assert_eq!(faults.decide(now, "sk-a"), Some(Fault::ServerError));
        assert_eq!(faults.decide(now, "sk-a"), None);
        assert_eq!(faults.decide(now, "sk-a"), Some(Fault::SlowDown));
        assert_eq!(faults.decide(now, "sk-a"), None);
        assert!(faults.snapshot().scripts.is_empty());
    }

    #[test]
    fn a_window_covers_its_half_open_interval() {
        let config = FaultConfig {
            windows: vec![FaultWindow {
                start_s: 30.0,
                end_s: 40.0,
                fault: Fault::Overloaded,
            }],
            ..FaultConfig::default()
        };
        let mut faults = Faults::new(&config, 0);
        let at = |seconds| Duration::from_secs(seconds);
        assert_eq!(faults.decide(at(29), "k"), None);
        assert_eq!(faults.decide(at(30), "k"), Some(Fault::Overloaded));
        assert_eq!(faults.decide(at(39), "k"), Some(Fault::Overloaded));
        assert_eq!(faults.decide(at(40), "k"), None);
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
            let mut faults = Faults::new(&config, seed);
            (0..2000)
                .map(|_| faults.decide(Duration::ZERO, "k").is_some())
                .collect::<Vec<_>>()
        };
        let first = run(5);
        assert_eq!(first, run(5), "same seed, same faults");
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((400..600).contains(&hits), "{hits} of 2000 at rate 0.25");
    }

    #[test]
    fn bad_rates_and_windows_are_named() {
        let mut config = FaultConfig::default();
        config.rates.server_error = 0.7;
        config.rates.overloaded = 0.6;
        assert!(config.validate().unwrap_err().contains("sum to"));
        let config = FaultConfig {
            windows: vec![FaultWindow {
                start_s: 5.0,
                end_s: 5.0,
                fault: Fault::ServerError,
            }],
            ..FaultConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("faults.windows[0]")
        );
    }
}
