//! Simulated attempts per second of wall time: `sim` replaying benchmark scenarios in virtual
//! time, per strategy kind and for the whole one-hour, five-strategy comparison. Runs are
//! untraced, as `ratelab run` simulates without `--trace`; the `general` benchmarks run the
//! same workloads with every success's completion scheduled as an event (the path a traced
//! run takes), side by side in the same run.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scenario::Scenario;

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("the benchmark scenario is readable");
    scenario::parse_scenario(&text, &path.display().to_string(), &mut |referenced| {
        std::fs::read_to_string(referenced)
    })
    .expect("the benchmark scenario is valid")
}

/// The path that schedules every completion as an event.
const GENERAL: sim::SimOptions = sim::SimOptions {
    headers_as_text: false,
    general_path: true,
};

/// One untraced run on `options`' path.
fn run_on(scenario: &Scenario, run: usize, options: sim::SimOptions) -> bool {
    sim::simulate_run_with(scenario, run, options, None).is_ok()
}

/// Attempts one run makes, to express throughput in attempts.
fn attempts_of(scenario: &Scenario, run: usize) -> u64 {
    sim::simulate_run_untraced(scenario, run)
        .expect("the benchmark run simulates")
        .totals
        .attempts
}

/// One strategy at a time, ten simulated minutes each: attempts per second.
fn per_strategy(criterion: &mut Criterion) {
    let hour = load("hour-10k-rpm.toml");
    let ten_minutes = std::time::Duration::from_secs(600);
    let scenario = hour.shortened(ten_minutes, std::time::Duration::from_secs(60));
    let mut group = criterion.benchmark_group("sim_attempts");
    group.sample_size(10);
    for (run, strategy) in scenario.strategies.iter().enumerate() {
        group.throughput(Throughput::Elements(attempts_of(&scenario, run)));
        let family = strategy
            .spec
            .kind
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        group.bench_function(family, |bencher| {
            bencher.iter(|| black_box(run_on(&scenario, run, sim::SimOptions::default())));
        });
    }
    let over = load("over-limit.toml");
    group.throughput(Throughput::Elements(attempts_of(&over, 0)));
    group.bench_function("openai-python-over-limit", |bencher| {
        bencher.iter(|| black_box(run_on(&over, 0, sim::SimOptions::default())));
    });
    // Issue 16's workload: 50 Poisson clients, 12,000 RPM against 10,000, full jitter.
    let jitter = load("jitter-over-limit.toml");
    group.throughput(Throughput::Elements(attempts_of(&jitter, 0)));
    group.bench_function("full-jitter-over-limit", |bencher| {
        bencher.iter(|| black_box(run_on(&jitter, 0, sim::SimOptions::default())));
    });
    group.bench_function("full-jitter-over-limit-general", |bencher| {
        bencher.iter(|| black_box(run_on(&jitter, 0, GENERAL)));
    });
    group.finish();
}

/// The target: one simulated hour at 10,000 RPM with five strategies in under a second.
fn hour_five_strategies(criterion: &mut Criterion) {
    let scenario = load("hour-10k-rpm.toml");
    let total: u64 = (0..sim::run_count(&scenario))
        .map(|run| attempts_of(&scenario, run))
        .sum();
    let mut group = criterion.benchmark_group("sim_hour_10k_rpm");
    group.sample_size(10);
    group.throughput(Throughput::Elements(total));
    let runs = sim::run_count(&scenario);
    group.bench_function("five_strategies", |bencher| {
        bencher.iter(|| {
            black_box((0..runs).all(|run| run_on(&scenario, run, sim::SimOptions::default())))
        });
    });
    group.bench_function("five_strategies_general", |bencher| {
        bencher.iter(|| black_box((0..runs).all(|run| run_on(&scenario, run, GENERAL))));
    });
    group.finish();
}

criterion_group!(benches, per_strategy, hour_five_strategies);
criterion_main!(benches);
