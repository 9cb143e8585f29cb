//! Workload generation: determinism, independence of groups, arrival counts, size bounds.

use proptest::prelude::*;
use scenario::{ClientStream, RequestSpec, Scenario, parse_scenario, workload};

fn scenario_from(text: &str) -> Scenario {
    parse_scenario(text, "scenarios/test.toml", &mut crate::read_from_disk)
        .expect("test scenario is valid")
}

fn group(name: &str, arrival: &str) -> String {
    format!(
        r#"
[[clients]]
name = "{name}"
instances = 2
arrival = {arrival}
prompt_tokens = {{ kind = "lognormal", median = 500, sigma = 0.8 }}
completion_tokens = {{ kind = "normal", mean = 200, std_dev = 50, min = 1, max = 400 }}
"#
    )
}

fn header(seed: u64) -> String {
    format!(
        "name = \"t\"\nseed = {seed}\nduration = \"10m\"\n[server]\nmodel = \"gpt-4o-mini\"\ntier = \"tier-1\"\n"
    )
}

fn arrivals(stream: &mut ClientStream) -> Vec<(std::time::Duration, RequestSpec)> {
    std::iter::from_fn(|| stream.next_arrival()).collect()
}

#[test]
fn same_seed_gives_the_same_workload() {
    let text = header(7) + &group("web", "{ kind = \"poisson\", rpm = 120 }");
    let first: Vec<_> = workload(&scenario_from(&text))
        .iter_mut()
        .map(arrivals)
        .collect();
    let second: Vec<_> = workload(&scenario_from(&text))
        .iter_mut()
        .map(arrivals)
        .collect();
    assert_eq!(first, second);
    assert_ne!(first[0], first[1], "instances draw from separate streams");
}

#[test]
fn different_seeds_give_different_workloads() {
    let web = group("web", "{ kind = \"poisson\", rpm = 120 }");
    let first = arrivals(&mut workload(&scenario_from(&(header(1) + &web)))[0]);
    let second = arrivals(&mut workload(&scenario_from(&(header(2) + &web)))[0]);
    assert_ne!(first, second);
}

#[test]
fn adding_a_group_leaves_other_groups_draws_unchanged() {
    let web = group("web", "{ kind = \"poisson\", rpm = 120 }");
    let batch = group("batch", "{ kind = \"gamma\", rpm = 30, burstiness = 0.5 }");
    let alone = arrivals(&mut workload(&scenario_from(&(header(3) + &web)))[0]);
    let after_batch = workload(&scenario_from(&(header(3) + &batch + &web)))
        .into_iter()
        .find(|stream| stream.group().name == "web")
        .map(|mut stream| arrivals(&mut stream));
    assert_eq!(Some(alone), after_batch);
}

#[track_caller]
fn check_count(arrival: &str, minutes_expected: std::ops::RangeInclusive<usize>) {
    let text = header(11) + &group("g", arrival);
    let count = arrivals(&mut workload(&scenario_from(&text))[0]).len();
    assert!(
        minutes_expected.contains(&count),
        "{arrival}: {count} arrivals in 10 minutes, expected {minutes_expected:?}"
    );
}

#[test]
fn arrival_processes_produce_their_rates() {
    check_count("{ kind = \"constant\", rpm = 60 }", 600..=600);
    check_count("{ kind = \"poisson\", rpm = 60 }", 520..=680);
    check_count(
        "{ kind = \"gamma\", rpm = 60, burstiness = 0.25 }",
        400..=800,
    );
    check_count("{ kind = \"burst\", count = 50, at = \"1m\" }", 50..=50);
    check_count(
        "{ kind = \"burst\", count = 10, at = \"0s\", every = \"1m\" }",
        100..=100,
    );
    // 8 minutes at 10 rpm plus 2 minutes at 100 rpm: 280 expected.
    check_count(
        "{ kind = \"spike\", base_rpm = 10, peak_rpm = 100, start = \"4m\", length = \"2m\" }",
        230..=330,
    );
    // Ramp 0 -> 120 over 10 minutes: 600 expected.
    check_count(
        "{ kind = \"ramp\", from_rpm = 0, to_rpm = 120, over = \"10m\" }",
        520..=680,
    );
    // A whole number of cycles averages to the mean: 600 expected.
    check_count(
        "{ kind = \"diurnal\", mean_rpm = 60, amplitude_rpm = 50, period = \"5m\" }",
        520..=680,
    );
}

#[test]
fn replay_uses_recorded_times_and_tokens() {
    let text = header(0).replace("10m", "1m")
        + r#"
[[clients]]
name = "replayed"
arrival = { kind = "replay", path = "traces/sample.jsonl", time_scale = 0.5 }
"#;
    let file_name = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/test.toml");
    let scenario = parse_scenario(&text, file_name, &mut crate::read_from_disk);
    // The sample trace ships with the scenarios; see scenarios/replay-trace.toml.
    let scenario = scenario.expect("the sample trace loads");
    let replayed = arrivals(&mut workload(&scenario)[0]);
    assert!(!replayed.is_empty());
    assert!(replayed.windows(2).all(|pair| pair[0].0 <= pair[1].0));
}

proptest! {
    #[test]
    fn arrivals_are_ordered_and_inside_the_duration(
        seed in any::<u64>(),
        rpm in 1.0f64..600.0,
        burstiness in 0.1f64..4.0,
        start_seconds in 0u64..700,
    ) {
        let arrival = format!("{{ kind = \"gamma\", rpm = {rpm}, burstiness = {burstiness} }}");
        let text = header(seed) + &group("g", &arrival).replace(
            "instances = 2",
            &format!("instances = 2\nstart = \"{start_seconds}s\""),
        );
        let scenario = scenario_from(&text);
        for mut stream in workload(&scenario) {
            let times: Vec<_> = arrivals(&mut stream).into_iter().map(|(at, _)| at).collect();
            prop_assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
            prop_assert!(times.iter().all(|at| *at >= stream.start() && *at < scenario.duration));
        }
    }

    #[test]
    fn sizes_stay_within_their_bounds(seed in any::<u64>()) {
        let text = header(seed) + &group("g", "{ kind = \"constant\", rpm = 30 }");
        let scenario = scenario_from(&text);
        for (_, request) in arrivals(&mut workload(&scenario)[0]) {
            prop_assert!(request.prompt_tokens >= 1);
            prop_assert!((1..=400).contains(&request.completion_tokens));
            prop_assert!(request.completion_tokens <= request.max_tokens);
            prop_assert_eq!(request.max_tokens, 400);
        }
    }
}
