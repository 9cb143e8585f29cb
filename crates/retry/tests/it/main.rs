//! The retry crate's one integration-test binary: formulas, distributions, the official
//! clients' table, budget and breaker state machines, pacing, specs and the registry.

mod budgets;
mod distributions;
mod durations;
mod formulas;
mod fuzz;
mod official_clients;
mod pacing;
mod specs;
mod stacking;
mod successes;

use std::time::Duration;

use rand::RngCore;
use retry::{Admission, Decision, Outcome, RequestState, RetryClient, Strategy};

/// An RNG that plays back chosen draws of `retry::unit_interval`, so a test can state the
/// exact `u` each formula sees.
pub struct Script {
    draws: Vec<f64>,
    next: usize,
}

impl Script {
    /// Plays `draws` (each in `[0, 1)` with at most 53 significant bits) in order, then panics.
    pub fn new(draws: &[f64]) -> Script {
        Script {
            draws: draws.to_vec(),
            next: 0,
        }
    }

    /// How many draws were consumed.
    pub fn used(&self) -> usize {
        self.next
    }
}

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let draw = self.draws[self.next];
        self.next += 1;
        ((draw * (1u64 << 53) as f64) as u64) << 11
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// Builds a strategy from its command-line form with the built-in registry.
#[track_caller]
pub fn build(text: &str) -> Box<dyn Strategy> {
    retry::Registry::with_builtins()
        .build_str(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// Runs one logical request against a scripted server: `answer(attempt_index)` gives each
/// attempt's outcome. Returns the final result, the send times and the decisions.
pub fn run_request(
    client: &mut RetryClient,
    start: Duration,
    rng: &mut dyn RngCore,
    mut answer: impl FnMut(usize) -> Outcome,
) -> (Result<(), retry::GiveUpReason>, Vec<Duration>) {
    let mut now = start;
    let mut request: RequestState = client.begin(now, 10);
    let mut sends = Vec::new();
    loop {
        match client.before_attempt(&mut request, now, rng) {
            Admission::Send { after } => now += after,
            Admission::GiveUp { reason } => return (Err(reason), sends),
        }
        sends.push(now);
        let outcome = answer(sends.len() - 1);
        match client.after_outcome(&mut request, &outcome, now, rng) {
            Decision::Done => return (Ok(()), sends),
            Decision::Retry { after } => now += after,
            Decision::GiveUp { reason } => return (Err(reason), sends),
        }
        assert!(sends.len() < 10_000, "runaway retry loop");
    }
}
