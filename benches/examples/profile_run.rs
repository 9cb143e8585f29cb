//! Runs one run of a benchmark scenario (ten simulated minutes, or the whole scenario with
//! `full`) a number of times and prints the fastest wall time: a steadier figure than
//! criterion's mean on shared cores, and a fixed workload for `valgrind --tool=callgrind`.
//!
//! Untraced, as `ratelab run` simulates without `--trace`; a fifth argument `general` takes the
//! general path (every success's completion scheduled as an event) for a side-by-side.
//!
//! `cargo run --profile bench -p ratelab-benches --example profile_run -- hour-10k-rpm.toml 4 10`
//! `... --example profile_run -- jitter-over-limit.toml 0 9 full general`

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .unwrap_or_else(|| "hour-10k-rpm.toml".to_owned());
    let run: usize = args
        .next()
        .map_or(0, |run| run.parse().expect("the run index is a number"));
    let repeat: usize = args
        .next()
        .map_or(1, |n| n.parse().expect("the repeat count is a number"));
    let full = args.next().as_deref() == Some("full");
    let options = sim::SimOptions {
        general_path: args.next().as_deref() == Some("general"),
        ..sim::SimOptions::default()
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(&name);
    let text = std::fs::read_to_string(&path).expect("the benchmark scenario is readable");
    let scenario =
        scenario::parse_scenario(&text, &path.display().to_string(), &mut |referenced| {
            std::fs::read_to_string(referenced)
        })
        .expect("the benchmark scenario is valid");
    let scenario = if full {
        scenario
    } else {
        scenario.shortened(Duration::from_secs(600), Duration::from_secs(60))
    };
    let mut fastest = Duration::MAX;
    let mut attempts = 0;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let runs = if full {
            0..sim::run_count(&scenario)
        } else {
            run..run + 1
        };
        attempts = runs
            .map(|run| {
                sim::simulate_run_with(&scenario, run, options, None)
                    .expect("the run simulates")
                    .totals
                    .attempts
            })
            .sum();
        fastest = fastest.min(started.elapsed());
    }
    let per_second = attempts as f64 / fastest.as_secs_f64() / 1e6;
    println!(
        "{attempts} attempts, fastest of {repeat}: {fastest:?} ({per_second:.2} M attempts/s)"
    );
}
