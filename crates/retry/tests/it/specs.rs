//! Strategy specs in TOML and on the command line, and the registry's errors.

use retry::{Registry, SpecError, StrategySpec};

fn build_error(text: &str) -> String {
    match Registry::with_builtins().build_str(text) {
        Ok(strategy) => panic!("{text}: expected an error, built {strategy:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn every_builtin_builds_with_its_defaults() {
    let registry = Registry::with_builtins();
    for info in registry.infos() {
        let mut spec = StrategySpec::named(&info.name);
        if info.name == "token-bucket" {
            spec = spec.with("rpm", retry::ParamValue::Integer(500));
        }
        for param in info.params.iter().filter(|param| param.required) {
            spec = spec.with(
                &param.name,
                retry::ParamValue::Strategy(StrategySpec::named("full-jitter")),
            );
        }
        registry
            .build(&spec)
            .unwrap_or_else(|error| panic!("{}: {error}", info.name));
        assert!(
            !info.source.is_empty() && !info.summary.is_empty(),
            "{}",
            info.name
        );
    }
    assert!(registry.infos().count() >= 26);
}

#[test]
fn the_toml_table_and_the_cli_string_are_the_same_spec() {
    let from_toml: StrategySpec = toml::from_str(
        r#"
        kind = "stacked"
        outer = { kind = "tenacity@9", max-attempts = 6, min = "1s" }
        inner = { kind = "openai-python@2.52", max-retries = 2 }
        "#,
    )
    .unwrap();
    let from_cli: StrategySpec =
        "stacked:outer=(tenacity@9:max-attempts=6,min=1s),inner=(openai-python@2.52:max-retries=2)"
            .parse()
            .unwrap();
    assert_eq!(from_toml, from_cli);
    assert_eq!(
        from_cli.to_string().parse::<StrategySpec>().unwrap(),
        from_cli
    );
    Registry::with_builtins().build(&from_toml).unwrap();
}

#[test]
fn json_specs_work_too() {
    let spec: StrategySpec =
        serde_json::from_str(r#"{"kind": "full-jitter", "base": "50ms", "max-attempts": 3}"#)
            .unwrap();
    assert_eq!(spec.to_string(), "full-jitter:base=50ms,max-attempts=3");
}

#[test]
fn unknown_names_list_what_exists() {
    let message = build_error("decorelated-jitter");
    assert!(
        message.starts_with("unknown strategy \"decorelated-jitter\" (expected one of: "),
        "{message}"
    );
    for name in [
        "decorrelated-jitter",
        "openai-python@2.52",
        "stacked",
        "none",
    ] {
        assert!(message.contains(name), "{message}");
    }
}

#[test]
fn bad_parameters_say_what_is_allowed() {
    assert_eq!(
        build_error("full-jitter:bsae=1s"),
        "strategy \"full-jitter\": unknown parameter \"bsae\" (allowed: base, cap, max-attempts, \
         deadline, attempt-timeout)"
    );
    assert_eq!(
        build_error("full-jitter:base=fast"),
        "strategy \"full-jitter\": parameter \"base\" = fast: expected a duration such as 100ms, \
         1.5s or 2m (invalid duration \"fast\": expected a number at byte 0 (e.g. 100ms, 1.5s, \
         6m0s))"
    );
    assert_eq!(
        build_error("openai-python:max-retries=-1"),
        "strategy \"openai-python\": parameter \"max-retries\" = -1: expected a whole number, \
         zero or more"
    );
    assert_eq!(
        build_error("honour-retry-after:cap=60s"),
        "strategy \"honour-retry-after\": missing parameter \"inner\" (a strategy)"
    );
    assert_eq!(
        build_error("token-bucket:inner=none"),
        "strategy \"token-bucket\": missing parameter \"rpm\" (rpm and/or tpm, e.g. \
         token-bucket:rpm=500,inner=(none))"
    );
    // Errors inside nested strategies surface with the nested name.
    assert_eq!(
        build_error("stacked:outer=(tenacity@9:stop=6),inner=(openai-python)"),
        "strategy \"tenacity@9\": unknown parameter \"stop\" (allowed: min, max, multiplier, \
         max-attempts, deadline, attempt-timeout)"
    );
}

#[test]
fn cli_syntax_errors_point_at_the_byte() {
    let cases = [
        (
            "",
            "strategy \"\" at byte 0: expected a strategy name (see `ratelab strategies`)",
        ),
        (
            "fixed:delay",
            "strategy \"fixed:delay\" at byte 11: expected `name=value` (e.g. base=100ms)",
        ),
        (
            "stacked:outer=(none",
            "strategy \"stacked:outer=(none\" at byte 19: expected `)` closing the nested strategy",
        ),
        (
            "fixed:delay=1s,delay=2s",
            "strategy \"fixed:delay=1s,delay=2s\" at byte 23: parameter `delay` given twice",
        ),
        (
            "none)",
            "strategy \"none)\" at byte 4: unexpected text after the strategy (a `)` too many?)",
        ),
    ];
    for (text, expected) in cases {
        let error: SpecError = text.parse::<StrategySpec>().unwrap_err();
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn registering_a_taken_name_is_refused() {
    let mut registry = Registry::with_builtins();
    let info = registry.resolve("none").unwrap().clone();
    let error = registry
        .register(
            info,
            Box::new(|_, registry| registry.build(&StrategySpec::named("fixed"))),
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "strategy \"none\" is already registered (pick another name)"
    );
}
