//! How much work a scenario asks for, estimated before it runs: `validate` reports it and `run`
//! refuses, unless forced, a run beyond the documented ceilings instead of running on for minutes
//! or exhausting memory.

use std::time::Duration;

use crate::model::{ArrivalProcess, ClientGroup, Driver, Scenario};

/// Runs asking for more first attempts than this, across every run, are refused without
/// `--force`: at the simulator's few million attempts per second and core, about a minute of
/// work before any retry.
pub const REQUEST_CEILING: u64 = 200_000_000;

/// Runs whose estimated memory exceeds this are refused without `--force`.
pub const MEMORY_CEILING_BYTES: u64 = 8 << 30;

/// Memory one client instance holds while a run lasts: its random streams, its strategy and
/// its metrics (measured: about 3.6 KiB at 200,000 instances), rounded up.
const BYTES_PER_INSTANCE: u64 = 4 << 10;

/// Memory one closed-loop worker adds.
const BYTES_PER_WORKER: u64 = 16;

/// The estimated size of a `ratelab run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkEstimate {
    /// First attempts (logical requests) one run sends, before any retry.
    pub requests_per_run: u64,
    /// Runs: server variants x strategies x seeds.
    pub runs: u64,
    /// Memory one run needs, in bytes.
    pub bytes_per_run: u64,
}

impl WorkEstimate {
    /// First attempts over every run.
    pub fn total_requests(&self) -> u64 {
        self.requests_per_run.saturating_mul(self.runs)
    }

    /// Memory with `jobs` runs at once.
    pub fn bytes(&self, jobs: u64) -> u64 {
        self.bytes_per_run
            .saturating_mul(jobs.clamp(1, self.runs.max(1)))
    }

    /// Why the run is over a ceiling, if it is.
    pub fn over_ceiling(&self, jobs: u64) -> Option<String> {
        if self.total_requests() > REQUEST_CEILING {
            return Some(format!(
                "it would simulate about {} requests before retries ({} per run x {} runs), over the ceiling of {}",
                self.total_requests(),
                self.requests_per_run,
                self.runs,
                REQUEST_CEILING
            ));
        }
        if self.bytes(jobs) > MEMORY_CEILING_BYTES {
            return Some(format!(
                "it would need about {} MiB ({} MiB per run x {} at once), over the ceiling of {} MiB",
                self.bytes(jobs) >> 20,
                self.bytes_per_run >> 20,
                jobs.clamp(1, self.runs.max(1)),
                MEMORY_CEILING_BYTES >> 20
            ));
        }
        None
    }
}

/// The work of `scenario` run on `seeds` seeds.
///
/// ```
/// # let text = "name = \"x\"\nduration = \"10m\"\n[server]\nmodel = \"gpt-4o\"\ntier = \"tier-1\"\n[[clients]]\nname = \"a\"\ninstances = 3\narrival = { kind = \"constant\", rpm = 60 }\nprompt_tokens = { kind = \"fixed\", value = 1 }\ncompletion_tokens = { kind = \"fixed\", value = 1 }\n";
/// # let scenario = scenario::parse_scenario(text, "x.toml", &mut |p| std::fs::read_to_string(p)).unwrap();
/// let work = scenario::estimate_work(&scenario, 2);
/// assert_eq!(work.requests_per_run, 3 * 600);
/// assert_eq!(work.runs, 2);
/// assert!(work.over_ceiling(1).is_none());
/// ```
pub fn estimate_work(scenario: &Scenario, seeds: u32) -> WorkEstimate {
    let mut requests_per_run: u64 = 0;
    let mut bytes_per_run: u64 = 1 << 20;
    for group in &scenario.groups {
        let instances = u64::from(group.instances);
        let active = scenario.duration.saturating_sub(group.start);
        requests_per_run = requests_per_run
            .saturating_add(instances.saturating_mul(per_instance(group, active, scenario)));
        let workers = match &group.driver {
            Driver::ClosedLoop { concurrency, .. } => u64::from(*concurrency),
            Driver::OpenLoop(_) => 0,
        };
        bytes_per_run = bytes_per_run.saturating_add(instances.saturating_mul(
            BYTES_PER_INSTANCE.saturating_add(workers.saturating_mul(BYTES_PER_WORKER)),
        ));
    }
    let runs = (scenario.server.variants.len() as u64)
        .saturating_mul(scenario.strategies.len() as u64)
        .saturating_mul(u64::from(seeds.max(1)));
    WorkEstimate {
        requests_per_run,
        runs,
        bytes_per_run,
    }
}

/// First attempts one instance of `group` sends while it is `active`.
fn per_instance(group: &ClientGroup, active: Duration, scenario: &Scenario) -> u64 {
    let minutes = |duration: Duration| duration.as_secs_f64() / 60.0;
    let count = match &group.driver {
        Driver::ClosedLoop {
            concurrency,
            think_time,
            requests_per_worker,
        } => {
            // A worker sends at most once per think time plus the fastest service time.
            let cycle =
                (*think_time + scenario.server.config.latency.ttft.0).max(Duration::from_millis(1));
            let per_worker = (active.as_secs_f64() / cycle.as_secs_f64()).ceil();
            let per_worker =
                requests_per_worker.map_or(per_worker, |cap| per_worker.min(cap as f64));
            per_worker * f64::from(*concurrency)
        }
        Driver::OpenLoop(arrival) => match arrival {
            ArrivalProcess::Constant { rpm }
            | ArrivalProcess::Poisson { rpm }
            | ArrivalProcess::Gamma { rpm, .. } => rpm * minutes(active),
            ArrivalProcess::Diurnal { mean_rpm, .. } => mean_rpm * minutes(active),
            ArrivalProcess::Burst { count, at, every } => {
                if *at >= active {
                    0.0
                } else {
                    let repeats = every.map_or(1.0, |every| {
                        1.0 + ((active - *at).as_secs_f64() / every.as_secs_f64().max(1e-9)).floor()
                    });
                    f64::from(*count) * repeats
                }
            }
            ArrivalProcess::Spike {
                base_rpm,
                peak_rpm,
                start,
                length,
            } => {
                let inside = active.saturating_sub(*start).min(*length);
                base_rpm * minutes(active) + (peak_rpm - base_rpm).max(0.0) * minutes(inside)
            }
            ArrivalProcess::Ramp {
                from_rpm,
                to_rpm,
                over,
            } => {
                let ramping = active.min(*over);
                let reached = if over.is_zero() {
                    *to_rpm
                } else {
                    from_rpm + (to_rpm - from_rpm) * ramping.as_secs_f64() / over.as_secs_f64()
                };
                (from_rpm + reached) / 2.0 * minutes(ramping)
                    + to_rpm * minutes(active.saturating_sub(*over))
            }
            ArrivalProcess::Replay { trace, time_scale } => trace
                .arrivals
                .iter()
                .filter(|arrival| arrival.at.as_secs_f64() * time_scale < active.as_secs_f64())
                .count() as f64,
        },
    };
    // Saturating: an absurd rate must give a huge estimate, never wrap.
    if count.is_finite() && count > 0.0 {
        count.min(u64::MAX as f64).ceil() as u64
    } else {
        0
    }
}
