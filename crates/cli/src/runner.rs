//! The parallel runner: every (server variant, strategy) of a scenario on every seed, spread
//! over worker threads, gathered into one report that does not depend on the thread count.
//!
//! It lives in the command line, not in `sim`: the simulator is a pure single-threaded loop and
//! never spawns (see ARCHITECTURE.md). Each (seed, run) pair is an independent simulation, so
//! workers take the next pair from a shared counter and return what they computed with the
//! pair's index; results are put back in index order before anything reads them, which is what
//! makes the report byte-identical whatever the number of threads or the order they finish in.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use results::{AttemptRecord, RunReport, RunResult, SeedStats, SeedValues};
use scenario::Scenario;

/// What one (seed, run) pair gave: the full result on the first seed (the report's detailed
/// fields), only the headline values on the others, so memory does not grow with the seeds.
enum PairResult {
    Full(Box<RunResult>),
    Headline(SeedValues),
}

/// Runs `scenario` on `seeds` seeds derived from its seed ([`scenario::derive_seeds`]) with
/// `jobs` worker threads (at least one). `trace`, when given, receives the attempts of the
/// first seed only: those runs go first, on this thread, in run order, exactly as a one-seed
/// run writes them.
///
/// With one seed the report is exactly that of [`sim::simulate`]; with more, each run also
/// carries its [`SeedStats`].
pub fn simulate_seeds(
    scenario: &Scenario,
    seeds: u32,
    jobs: usize,
    trace: Option<&mut dyn FnMut(&AttemptRecord)>,
) -> Result<RunReport, sim::SimError> {
    let seed_list = scenario::derive_seeds(scenario.seed, seeds.max(1));
    let run_count = sim::run_count(scenario);
    let scenarios: Vec<Scenario> = seed_list
        .iter()
        .map(|&seed| Scenario {
            seed,
            ..scenario.clone()
        })
        .collect();

    let mut first_seed = None;
    if let Some(trace) = trace {
        first_seed = Some(sim::simulate(scenario, trace)?);
    }
    // The pairs left for the workers: seed-major, skipping the first seed when it already ran.
    let first_pair = if first_seed.is_some() { run_count } else { 0 };
    let pair_count = run_count * seed_list.len();
    let results = map_in_order(pair_count - first_pair, jobs, &|index| {
        let pair = first_pair + index;
        let (seed_index, run_index) = (pair / run_count, pair % run_count);
        sim::simulate_run_untraced(&scenarios[seed_index], run_index).map(|result| {
            if seed_index == 0 {
                PairResult::Full(Box::new(result))
            } else {
                PairResult::Headline(SeedValues::of(&result))
            }
        })
    });

    let mut runs: Vec<RunResult> = first_seed.map(|report| report.runs).unwrap_or_default();
    let mut headline: Vec<Vec<SeedValues>> =
        runs.iter().map(|run| vec![SeedValues::of(run)]).collect();
    for (index, result) in results.into_iter().enumerate() {
        let pair = first_pair + index;
        match result? {
            PairResult::Full(run) => {
                headline.push(vec![SeedValues::of(&run)]);
                runs.push(*run);
            }
            PairResult::Headline(values) => headline[pair % run_count].push(values),
        }
    }
    if seed_list.len() > 1 {
        for (run, values) in runs.iter_mut().zip(&headline) {
            run.seeds = Some(SeedStats::of(seed_list.clone(), values));
        }
    }
    Ok(RunReport {
        format_version: results::REPORT_FORMAT_VERSION,
        scenario: results::ScenarioSummary::of(scenario),
        runs,
        tested: None,
    })
}

/// Runs `task(index)` for every index below `count` on up to `jobs` threads (at least one) and
/// returns the results in index order, whatever order the threads finished in.
///
/// Workers take the next index from a shared counter, so a slow task never holds up the others;
/// each keeps its results with their indexes, and they are sorted back before anyone reads
/// them. A panicking task is re-raised when the threads are joined.
pub fn map_in_order<R: Send>(
    count: usize,
    jobs: usize,
    task: &(dyn Fn(usize) -> R + Sync),
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(count));
    let work = || {
        let mut mine = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count {
                break;
            }
            mine.push((index, task(index)));
        }
        // A poisoned lock means another worker panicked; its panic is re-raised by the scope.
        if let Ok(mut results) = results.lock() {
            results.extend(mine);
        }
    };
    let workers = jobs.max(1).min(count.max(1));
    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(work);
        }
        work();
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// The default thread count: what the machine offers, or one when it cannot say.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::simulate_seeds;

    const SCENARIO: &str = r#"
name = "seeds"
seed = 3
duration = "40s"
drain = "1m"
[server]
model = "gpt-4o-mini"
tier = "tier-1"
[[clients]]
name = "app"
instances = 2
arrival = { kind = "poisson", rpm = 900 }
prompt_tokens = { kind = "uniform", min = 50, max = 400 }
completion_tokens = { kind = "fixed", value = 20 }
[[strategies]]
kind = "none"
[[strategies]]
kind = "full-jitter"
"#;

    fn scenario() -> scenario::Scenario {
        scenario::parse_scenario(SCENARIO, "seeds.toml", &mut |path| {
            std::fs::read_to_string(path)
        })
        .unwrap()
    }

    #[test]
    fn one_seed_is_exactly_a_plain_simulation() {
        let scenario = scenario();
        let plain = sim::simulate(&scenario, &mut |_| {}).unwrap();
        for jobs in [1, 2] {
            assert_eq!(simulate_seeds(&scenario, 1, jobs, None).unwrap(), plain);
        }
    }

    #[test]
    fn the_report_does_not_depend_on_the_thread_count() {
        let scenario = scenario();
        let one = report::report_json(&simulate_seeds(&scenario, 4, 1, None).unwrap());
        for jobs in [2, 3, 16] {
            let many = report::report_json(&simulate_seeds(&scenario, 4, jobs, None).unwrap());
            assert!(one == many, "{jobs} threads give another report.json");
        }
    }

    #[test]
    fn a_traced_run_gives_the_same_report_and_traces_the_first_seed_only() {
        let scenario = scenario();
        let untraced = simulate_seeds(&scenario, 3, 2, None).unwrap();
        let mut traced_attempts = 0u64;
        let traced = simulate_seeds(&scenario, 3, 2, Some(&mut |_| traced_attempts += 1)).unwrap();
        assert_eq!(traced, untraced);
        let first_seed_attempts: u64 = traced.runs.iter().map(|run| run.totals.attempts).sum();
        assert_eq!(traced_attempts, first_seed_attempts);
    }

    #[test]
    fn every_run_carries_its_seeds_with_the_first_seeds_details() {
        let scenario = scenario();
        let plain = sim::simulate(&scenario, &mut |_| {}).unwrap();
        let report = simulate_seeds(&scenario, 5, 2, None).unwrap();
        assert_eq!(report.runs.len(), plain.runs.len());
        for (run, plain_run) in report.runs.iter().zip(&plain.runs) {
            let stats = run.seeds.as_ref().expect("five seeds give seed statistics");
            assert_eq!(stats.seeds, scenario::derive_seeds(3, 5));
            assert_eq!(stats.success_rate.values.len(), 5);
            // The first seed's value is the detailed run's.
            assert_eq!(
                stats.success_rate.values[0],
                Some((plain_run.totals.success_rate() * 1e6).round() / 1e6)
            );
            let run_without_seeds = results::RunResult {
                seeds: None,
                ..run.clone()
            };
            assert_eq!(&run_without_seeds, plain_run);
        }
    }
}
