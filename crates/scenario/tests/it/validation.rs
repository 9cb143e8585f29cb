//! Validation errors for typical mistakes: each names `file:line:col`, what is wrong and what is
//! allowed.

use scenario::parse_scenario;

const BASE: &str = r#"name = "example"
duration = "10m"

[server]
model = "gpt-4o-mini"
tier = "tier-1"

[[clients]]
name = "app"
arrival = { kind = "poisson", rpm = 100 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 50 }
"#;

#[track_caller]
fn check(text: &str, expected: &str) {
    let error = parse_scenario(text, "scenarios/example.toml", &mut |path| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no such file {}", path.display()),
        ))
    })
    .expect_err("the scenario should be rejected");
    assert_eq!(error.to_string(), expected);
}

/// For messages ending in a list that other crates own (the tier catalog, the strategy
/// registry): the exact text up to the list.
#[track_caller]
fn check_start(text: &str, expected_start: &str) {
    let error = parse_scenario(text, "scenarios/example.toml", &mut crate::read_from_disk)
        .expect_err("the scenario should be rejected")
        .to_string();
    assert!(error.starts_with(expected_start), "{error}");
}

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE lacks {from:?}");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_scenario_is_valid() {
    let scenario = parse_scenario(BASE, "scenarios/example.toml", &mut crate::read_from_disk)
        .expect("the base scenario is valid");
    assert_eq!(scenario.groups.len(), 1);
}

#[test]
fn unknown_key_in_client_group() {
    // TOML puts a key after `[[clients]]` into that table.
    check(
        &format!("{BASE}colour = \"blue\"\n"),
        "scenarios/example.toml:13:1: unknown field `colour`, expected one of `name`, `instances`, `start`, `stagger`, `closed_loop`, `arrival`, `prompt_tokens`, `completion_tokens`, `max_tokens`, `timeout`, `deadline`, `key`",
    );
}

#[test]
fn unknown_top_level_key() {
    check(
        &format!("colour = \"blue\"\n{BASE}"),
        "scenarios/example.toml:1:1: unknown field `colour`, expected one of `name`, `description`, `seed`, `seeds`, `duration`, `drain`, `server`, `clients`, `strategies`, `metrics`, `expect`",
    );
}

#[test]
fn seeds_default_to_one_and_are_bounded() {
    let scenario = parse_scenario(BASE, "scenarios/example.toml", &mut crate::read_from_disk)
        .expect("the base scenario is valid");
    assert_eq!(scenario.seeds, 1);
    let scenario = parse_scenario(
        &format!("seeds = 5\n{BASE}"),
        "scenarios/example.toml",
        &mut crate::read_from_disk,
    )
    .expect("five seeds are valid");
    assert_eq!(scenario.seeds, 5);
    check(
        &format!("seeds = 0\n{BASE}"),
        "scenarios/example.toml:1:9: seeds = 0 is not allowed (expected 1 to 1000: how many seeds every strategy runs on)",
    );
    check(
        &format!("seeds = 1001\n{BASE}"),
        "scenarios/example.toml:1:9: seeds = 1001 is not allowed (expected 1 to 1000: how many seeds every strategy runs on)",
    );
}

#[test]
fn unknown_arrival_kind() {
    check(
        &with("kind = \"poisson\"", "kind = \"spikey\""),
        "scenarios/example.toml:10:20: unknown variant `spikey`, expected one of `constant`, `poisson`, `gamma`, `burst`, `spike`, `ramp`, `diurnal`, `replay`",
    );
}

#[test]
fn unknown_key_in_arrival() {
    check(
        &with("rpm = 100", "rpm = 100, burst = 3"),
        "scenarios/example.toml:10:11: unknown field `burst`, expected `rpm`",
    );
}

#[test]
fn duration_without_unit() {
    check(
        &with("duration = \"10m\"", "duration = \"600\""),
        "scenarios/example.toml:2:12: duration \"600\" lacks a unit (expected a duration such as \"250ms\", \"90s\", \"5m\", \"1h30m\" or \"1d\")",
    );
}

#[test]
fn duration_as_number() {
    check(
        &with("duration = \"10m\"", "duration = 600"),
        "scenarios/example.toml:2:12: invalid type: integer `600`, expected a string",
    );
}

#[test]
fn missing_duration() {
    check(
        &with("duration = \"10m\"\n", ""),
        "scenarios/example.toml:1:1: missing field `duration`",
    );
}

#[test]
fn unknown_tier() {
    check(
        &with("tier = \"tier-1\"", "tier = \"tier-9\""),
        "scenarios/example.toml:6:1: server.tier: unknown tier \"tier-9\" (expected one of: free, tier-1, tier-2, tier-3, tier-4, tier-5)",
    );
}

#[test]
fn both_loops() {
    check(
        &with(
            "name = \"app\"\n",
            "name = \"app\"\nclosed_loop = { concurrency = 4 }\n",
        ),
        "scenarios/example.toml:11:11: client group \"app\" has both closed_loop and arrival (choose one: closed-loop workers or open-loop arrivals)",
    );
}

#[test]
fn neither_loop() {
    check(
        &with("arrival = { kind = \"poisson\", rpm = 100 }\n", ""),
        "scenarios/example.toml:8:1: client group \"app\" has neither closed_loop nor arrival (add closed_loop = { concurrency = N } or arrival = { kind = \"poisson\", rpm = N })",
    );
}

#[test]
fn negative_rate() {
    check(
        &with("rpm = 100", "rpm = -5"),
        "scenarios/example.toml:10:11: arrival rpm -5 is not allowed (expected requests per minute above 0 and up to 10000000)",
    );
}

#[test]
fn uniform_min_above_max() {
    check(
        &with(
            "completion_tokens = { kind = \"fixed\", value = 50 }",
            "completion_tokens = { kind = \"uniform\", min = 80, max = 20 }",
        ),
        "scenarios/example.toml:12:21: completion_tokens: min 80 is above max 20 (expected min <= max)",
    );
}

#[test]
fn missing_prompt_tokens() {
    check(
        &with("prompt_tokens = { kind = \"fixed\", value = 100 }\n", ""),
        "scenarios/example.toml:8:1: client group \"app\" lacks prompt_tokens (add e.g. prompt_tokens = { kind = \"fixed\", value = 100 })",
    );
}

#[test]
fn duplicate_group_names() {
    let second = &BASE[BASE.find("[[clients]]").unwrap_or(0)..];
    check(
        &format!("{BASE}\n{second}"),
        "scenarios/example.toml:14:1: client group name \"app\" is used twice (names must be unique: they seed each group's random streams)",
    );
}

#[test]
fn bad_scenario_name() {
    check(
        &with("name = \"example\"", "name = \"my scenario\""),
        "scenarios/example.toml:1:8: scenario name \"my scenario\" is not allowed (use letters, digits, `-` and `_`; it names the output folder)",
    );
}

#[test]
fn an_unknown_fault_kind_is_named_with_the_kinds_allowed() {
    check(
        &with(
            "[[clients]]",
            "[[server.timeline]]\nat = \"1m\"\nfault = { kind = \"not_found\" }\n\n[[clients]]",
        ),
        "scenarios/example.toml:10:18: unknown variant `not_found`, expected one of `server_error`, `overloaded`, `slow_down`, `rate_limited`, `insufficient_quota`, `hang`, `connection_reset`, `stream_error`",
    );
}

#[test]
fn missing_trace_file() {
    check(
        &with(
            "arrival = { kind = \"poisson\", rpm = 100 }",
            "arrival = { kind = \"replay\", path = \"traces/missing.jsonl\" }",
        ),
        "scenarios/example.toml:10:11: cannot read scenarios/traces/missing.jsonl: no such file scenarios/traces/missing.jsonl",
    );
}

#[test]
fn invalid_toml() {
    check(
        &with("[server]", "[server"),
        "scenarios/example.toml:4:8: unclosed table, expected `]`",
    );
}

#[test]
fn unknown_strategy() {
    check_start(
        &format!("{BASE}\n[[strategies]]\nkind = \"yolo\"\n"),
        "scenarios/example.toml:14:1: unknown strategy \"yolo\" (expected one of: ",
    );
}

#[test]
fn unknown_strategy_parameter() {
    check(
        &format!(
            "{BASE}\n[[strategies]]\nkind = \"full-jitter\"\nbase = \"1s\"\nceiling = \"9s\"\n"
        ),
        "scenarios/example.toml:14:1: strategy \"full-jitter\": unknown parameter \"ceiling\" (allowed: base, cap, max-attempts, deadline, attempt-timeout)",
    );
}

#[test]
fn zero_limit() {
    check(
        &with(
            "tier = \"tier-1\"",
            "tier = \"tier-1\"\nlimits = { rpm = 0 }",
        ),
        "scenarios/example.toml:7:1: server.limits: limit RPM is 0: set a positive limit or remove the key to leave RPM unlimited",
    );
}

#[test]
fn unknown_model_in_tier() {
    check_start(
        &with("model = \"gpt-4o-mini\"", "model = \"gpt-5-turbo\""),
        "scenarios/example.toml:5:1: server.model: unknown model \"gpt-5-turbo\" (expected one of: ",
    );
}

#[test]
fn compare_tiers_without_tier() {
    check(
        &with(
            "tier = \"tier-1\"",
            "compare_tiers = [\"tier-2\"]\nlimits = { rpm = 100 }",
        ),
        "scenarios/example.toml:4:1: server.compare_tiers needs server.tier: the comparison runs the same workload on each tier",
    );
}

#[test]
fn explicit_limits_without_tier_are_a_custom_variant() {
    let text = with(
        "tier = \"tier-1\"",
        "limits = { rpm = 100, tpm = 5000, quantum_ms = 1000 }",
    );
    let scenario = parse_scenario(&text, "scenarios/example.toml", &mut crate::read_from_disk)
        .expect("explicit limits are valid");
    let variant = &scenario.server.variants[0];
    assert_eq!(variant.label, "custom");
    assert_eq!(variant.tier, None);
    assert_eq!(
        (variant.limits.rpm, variant.limits.tpm),
        (Some(100), Some(5000))
    );
    assert_eq!(variant.limits.quantum_ms, Some(1000));
}

#[test]
fn tier_limits_are_overlaid_by_explicit_limits() {
    let text = with(
        "tier = \"tier-1\"",
        "tier = \"tier-1\"\ncompare_tiers = [\"tier-2\"]\nlimits = { tpm = 1000 }",
    );
    let scenario = parse_scenario(&text, "scenarios/example.toml", &mut crate::read_from_disk)
        .expect("overrides are valid");
    let labels: Vec<_> = scenario
        .server
        .variants
        .iter()
        .map(|v| v.label.as_str())
        .collect();
    assert_eq!(labels, ["tier-1", "tier-2"]);
    let tiers: Vec<_> = scenario
        .server
        .variants
        .iter()
        .map(|v| v.tier.as_deref())
        .collect();
    assert_eq!(tiers, [Some("tier-1"), Some("tier-2")]);
    assert_eq!(scenario.server.variants[0].limits.rpm, Some(500));
    assert_eq!(scenario.server.variants[1].limits.rpm, Some(5000));
    assert!(
        scenario
            .server
            .variants
            .iter()
            .all(|v| v.limits.tpm == Some(1000))
    );
}

#[track_caller]
fn check_trace(trace_path: &str, trace_text: &str, expected: &str) {
    let text = with(
        "arrival = { kind = \"poisson\", rpm = 100 }",
        &format!("arrival = {{ kind = \"replay\", path = \"{trace_path}\" }}"),
    );
    let error = parse_scenario(&text, "scenarios/example.toml", &mut |_| {
        Ok(trace_text.to_owned())
    })
    .expect_err("the trace should be rejected");
    assert_eq!(error.to_string(), expected);
}

#[test]
fn bad_trace_records_name_the_trace_file_and_line() {
    check_trace(
        "traces/t.jsonl",
        "{\"at\": 0.5}\n{\"at\": \"soon\"}\n",
        "scenarios/traces/t.jsonl:2:13: bad trace record: invalid type: string \"soon\", expected f64 (expected {\"at\": seconds, \"prompt_tokens\": n, \"completion_tokens\": n})",
    );
    check_trace(
        "traces/t.csv",
        "at,prompt_tokens\n0.5,10\n-1,10\n",
        "scenarios/traces/t.csv:3:1: trace time -1 is not allowed (expected seconds since the trace start, 0 or more)",
    );
    check_trace(
        "traces/t.txt",
        "",
        "scenarios/example.toml:10:11: trace \"traces/t.txt\" has an unknown extension (expected .jsonl or .csv)",
    );
    check_trace(
        "traces/t.csv",
        "at\n",
        "scenarios/traces/t.csv:1:1: the trace has no records",
    );
}

#[test]
fn instant_rejections_are_allowed_but_not_an_instant_server() {
    let text = with(
        "[[clients]]",
        "[server.latency]\nreject = \"0s\"\n\n[[clients]]",
    );
    let scenario = parse_scenario(&text, "scenarios/example.toml", &mut crate::read_from_disk)
        .expect("a zero reject latency is legitimate");
    assert_eq!(
        scenario.server.config.latency.reject.0,
        std::time::Duration::ZERO
    );
    check(
        &with(
            "[[clients]]",
            "[server.latency]\nttft = \"0s\"\n\n[[clients]]",
        ),
        "scenarios/example.toml:8:1: server.latency.ttft must be longer than 0s in a scenario (use e.g. \"1ms\" for a near-instant server)",
    );
}

#[test]
fn compare_rejections_makes_one_variant_per_tier_and_rule() {
    let text = with(
        "tier = \"tier-1\"",
        "tier = \"tier-1\"\ncompare_tiers = [\"tier-2\"]\ncompare_rejections = [\"free\", \"count-per-minute\"]",
    );
    let scenario =
        parse_scenario(&text, "scenarios/example.toml", &mut crate::read_from_disk).expect("valid");
    let variants: Vec<(&str, Option<&str>, quota::RejectedRequests)> = scenario
        .server
        .variants
        .iter()
        .map(|variant| {
            (
                variant.label.as_str(),
                variant.tier.as_deref(),
                variant.limits.rejected_requests,
            )
        })
        .collect();
    assert_eq!(
        variants,
        [
            (
                "tier-1, rejections free",
                Some("tier-1"),
                quota::RejectedRequests::Free
            ),
            (
                "tier-1, rejections count",
                Some("tier-1"),
                quota::RejectedRequests::CountPerMinute
            ),
            (
                "tier-2, rejections free",
                Some("tier-2"),
                quota::RejectedRequests::Free
            ),
            (
                "tier-2, rejections count",
                Some("tier-2"),
                quota::RejectedRequests::CountPerMinute
            ),
        ]
    );
    check(
        &with(
            "tier = \"tier-1\"",
            "tier = \"tier-1\"\ncompare_rejections = [\"free\", \"free\"]",
        ),
        "scenarios/example.toml:7:1: server.compare_rejections: rejection rule \"free\" is listed twice (compare each rule once)",
    );
}

#[test]
fn the_default_rejection_rule_is_free() {
    let scenario =
        parse_scenario(BASE, "scenarios/example.toml", &mut crate::read_from_disk).expect("valid");
    assert_eq!(
        scenario.server.variants[0].limits.rejected_requests,
        quota::RejectedRequests::Free
    );
}

#[test]
fn strategies_take_an_optional_unique_label() {
    let text = format!(
        "{BASE}\n[[strategies]]\nkind = \"none\"\nlabel = \"no retries\"\n\n[[strategies]]\nkind = \"openai-python@2.52\"\n"
    );
    let scenario =
        parse_scenario(&text, "scenarios/example.toml", &mut crate::read_from_disk).expect("valid");
    let labels: Vec<(&str, String)> = scenario
        .strategies
        .iter()
        .map(|strategy| (strategy.label.as_str(), strategy.spec.to_string()))
        .collect();
    assert_eq!(
        labels,
        [
            ("no retries", "none".to_owned()),
            ("openai-python@2.52", "openai-python@2.52".to_owned()),
        ]
    );
    check(
        &format!(
            "{BASE}\n[[strategies]]\nkind = \"none\"\nlabel = \"x\"\n\n[[strategies]]\nkind = \"openai-python@2.52\"\nlabel = \"x\"\n"
        ),
        "scenarios/example.toml:18:1: strategy label \"x\" is used twice (give each strategy its own label)",
    );
    check(
        &format!("{BASE}\n[[strategies]]\nkind = \"none\"\nlabel = 3\n"),
        "scenarios/example.toml:14:1: strategy label 3 is not allowed (expected a short non-empty string of at most 40 characters, e.g. label = \"sdk default\")",
    );
}

#[test]
fn unlabelled_strategies_take_short_unique_names() {
    let strategies = [
        "kind = \"honour-retry-after\"\ninner = { kind = \"full-jitter\", base = \"1s\" }",
        "kind = \"honour-retry-after\"\njitter = 1.0\ninner = { kind = \"full-jitter\", base = \"1s\" }",
        "kind = \"stacked\"\nouter = { kind = \"tenacity@9\" }\ninner = { kind = \"openai-python@2.52\" }",
        "kind = \"full-jitter\"\nbase = \"1s\"\nlabel = \"full-jitter\"",
        "kind = \"full-jitter\"\nbase = \"2s\"",
        "kind = \"circuit-breaker\"\ninner = { kind = \"full-jitter\", base = \"1s\" }",
        "kind = \"circuit-breaker\"\ninner = { kind = \"full-jitter\", base = \"2s\" }",
    ];
    let mut text = BASE.to_owned();
    for strategy in strategies {
        text.push_str(&format!("\n[[strategies]]\n{strategy}\n"));
    }
    let scenario =
        parse_scenario(&text, "scenarios/example.toml", &mut crate::read_from_disk).expect("valid");
    let labels: Vec<&str> = scenario
        .strategies
        .iter()
        .map(|strategy| strategy.label.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            // Told apart by the top-level parameter only one of them sets.
            "honour-retry-after(full-jitter)",
            "honour-retry-after(full-jitter) jitter=1",
            // A stack reads from the outside in.
            "tenacity@9(openai-python@2.52)",
            // A given label is kept; the unlabelled one with its short name is numbered.
            "full-jitter",
            "full-jitter #2",
            // Differences inside the wrapped strategy alone: numbered.
            "circuit-breaker(full-jitter)",
            "circuit-breaker(full-jitter) #2",
        ]
    );
}

#[test]
fn a_timeline_entry_makes_one_change() {
    check(
        &with(
            "[[clients]]",
            "[[server.timeline]]\nat = \"1m\"\ntier = \"tier-2\"\nfault = { kind = \"overloaded\" }\n\n[[clients]]",
        ),
        "scenarios/example.toml:8:1: server.timeline[0]: set exactly one of `tier`, `limits`, `fault` or `latency` (found 2); write one entry per change",
    );
}

#[test]
fn absurd_fan_out() {
    check(
        &with(
            "name = \"app\"\n",
            "name = \"app\"\ninstances = 4000000000\n",
        ),
        "scenarios/example.toml:8:1: client group \"app\" has instances = 4000000000 (expected 1 to 1000000)",
    );
    check(
        &with(
            "name = \"app\"\n",
            "name = \"app\"\ninstances = 1000\nstagger = \"3000d\"\n",
        ),
        "scenarios/example.toml:8:1: client group \"app\": start + stagger x (instances - 1) is beyond 100 years (expected instance starts within the scenario)",
    );
}

proptest::proptest! {
    /// Whatever text lands in a value, validation answers with a scenario or an error that
    /// names its place.
    #[test]
    fn validation_never_panics(
        field in 0usize..6,
        value in "[-0-9a-z.\"{}=, ]{0,24}",
    ) {
        let targets = [
            "\"10m\"",
            "100",
            "\"tier-1\"",
            "{ kind = \"fixed\", value = 100 }",
            "{ kind = \"poisson\", rpm = 100 }",
            "\"app\"",
        ];
        let text = BASE.replacen(targets[field], &value, 1);
        match parse_scenario(&text, "scenarios/example.toml", &mut crate::read_from_disk) {
            Ok(scenario) => proptest::prop_assert!(!scenario.groups.is_empty()),
            Err(error) => {
                let message = error.to_string();
                proptest::prop_assert!(message.starts_with("scenarios/example.toml:"), "{}", message);
            }
        }
    }
}

#[test]
fn zero_deadline() {
    check(
        &format!("{BASE}deadline = \"0s\"\n"),
        "scenarios/example.toml:8:1: client group \"app\" has deadline = \"0s\" (expected a positive duration, e.g. \"2m\", or no deadline)",
    );
}

#[test]
fn deadline_is_optional_and_read_as_a_duration() {
    let read = |text: &str| {
        parse_scenario(text, "scenarios/example.toml", &mut crate::read_from_disk)
            .expect("the scenario is valid")
            .groups[0]
            .shape
            .deadline
    };
    assert_eq!(read(BASE), None);
    assert_eq!(
        read(&format!("{BASE}deadline = \"2m\"\n")),
        Some(std::time::Duration::from_secs(120))
    );
}
