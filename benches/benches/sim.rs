//! Simulated attempts per second of wall time: `sim` replaying benchmark scenarios in virtual
//! time, per strategy kind and for the whole one-hour, five-strategy comparison.

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

/// Attempts one run makes, to express throughput in attempts.
fn attempts_of(scenario: &Scenario, run: usize) -> u64 {
    sim::simulate_run(scenario, run, &mut |_| {})
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
            bencher.iter(|| black_box(sim::simulate_run(&scenario, run, &mut |_| {}).is_ok()));
        });
    }
    let over = load("over-limit.toml");
    group.throughput(Throughput::Elements(attempts_of(&over, 0)));
    group.bench_function("openai-python-over-limit", |bencher| {
        bencher.iter(|| black_box(sim::simulate_run(&over, 0, &mut |_| {}).is_ok()));
    });
    // Issue 16's workload: 50 Poisson clients, 12,000 RPM against 10,000, full jitter.
    let jitter = load("jitter-over-limit.toml");
    group.throughput(Throughput::Elements(attempts_of(&jitter, 0)));
    group.bench_function("full-jitter-over-limit", |bencher| {
        bencher.iter(|| black_box(sim::simulate_run(&jitter, 0, &mut |_| {}).is_ok()));
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
    group.bench_function("five_strategies", |bencher| {
        bencher.iter(|| black_box(sim::simulate(&scenario, &mut |_| {}).is_ok()));
    });
    group.finish();
}

criterion_group!(benches, per_strategy, hour_five_strategies);
criterion_main!(benches);
