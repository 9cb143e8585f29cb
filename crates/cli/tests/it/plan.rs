//! `ratelab plan`: verdicts on workloads whose answer is known by arithmetic (the fixtures
//! `plan-rpm.toml` and `plan-tpm.toml` show the sums), the same bytes on 1 and 2 threads, and
//! clear errors for bad flags.

use std::path::{Path, PathBuf};

use crate::{assert_exit, fixture, ratelab, scratch_dir};

/// Plans `fixture_name` into `dir/name` with `extra` arguments; returns plan.json and stdout.
fn plan(dir: &Path, fixture_name: &str, name: &str, extra: &[&str]) -> (serde_json::Value, String) {
    let out: PathBuf = dir.join(name);
    let scenario = fixture(fixture_name);
    let mut args = vec![
        "plan",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = ratelab(&args);
    assert_exit(&output, 0);
    let json = std::fs::read_to_string(out.join("plan.json")).unwrap();
    (
        serde_json::from_str(&json).unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn cheapest(plan: &serde_json::Value) -> Vec<String> {
    plan["rules"][0]["cheapest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            format!(
                "{}x: {}",
                row["growth"],
                row["tier"].as_str().unwrap_or("none")
            )
        })
        .collect()
}

fn tier<'a>(plan: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plan["rules"][0]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tier| tier["tier"] == name)
        .unwrap()
}

/// Tier 2's breaking point brackets 2 / 0.99 = 2.0202x (the fixtures' sums) within 0.05x.
#[track_caller]
fn assert_tier_2_breaks_at_2_02(plan: &serde_json::Value) {
    let point = &tier(plan, "tier-2")["breaking_point"];
    let (sustains, fails) = (
        point["sustains"].as_f64().unwrap(),
        point["fails_at"].as_f64().unwrap(),
    );
    assert!(sustains <= 2.0202 && 2.0202 < fails, "{point}");
    assert!(fails - sustains <= 0.05 + 1e-9, "{point}");
}

#[test]
fn rpm_bound_traffic_needs_tier_4_at_one_and_a_half_times_tier_2s_rpm() {
    let dir = scratch_dir("plan-rpm");
    let (plan, stdout) = plan(&dir, "plan-rpm.toml", "rpm", &["--growth", "1,2.5"]);
    // 7,500 RPM at 2.5x: Tiers 2 and 3 share 5,000 RPM, Tier 4 has 10,000.
    assert_eq!(cheapest(&plan), ["1.0x: tier-2", "2.5x: tier-4"]);
    assert_eq!(plan["verdict"]["tier_now"], "tier-2");
    assert_eq!(plan["verdict"]["next_tier"], "tier-4");
    assert_tier_2_breaks_at_2_02(&plan);
    for name in ["tier-2", "tier-3"] {
        assert_eq!(tier(&plan, name)["binding_limit"], "rpm", "{name}");
    }
    // Tier 3 has Tier 2's RPM: it breaks at the same point.
    assert_eq!(
        tier(&plan, "tier-3")["breaking_point"],
        tier(&plan, "tier-2")["breaking_point"]
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("At 1x: tier-2 is the cheapest tier that meets 99% success"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("Upgrade before 2.031x: tier-2 holds to 1.984x"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("RPM binds first); then move to tier-4"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("Cost at 1x: $"), "{stdout}");
    // $3,499.20 a month is over Tier 2's $500 and Tier 3's $1,000 caps: Tier 4's $5,000 covers it.
    assert!(
        lines[2].contains(
            "so a month of it stops at the cap: tier-4's cap ($5,000) is the first that covers it"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("tier-2  ok 100.0%"), "{stdout}");
    // A month of 3,000 RPM: 129.6 million requests of 100 prompt and 20 completion tokens at
    // gpt-4o-mini's $0.15 and $0.60 per million: $1,944 + $1,555.20.
    let cost = &plan["cost"][0];
    assert_eq!(cost["requests"], 129_600_000);
    assert_eq!(cost["usd"], 3499.2);
    assert_eq!(cost["exceeds_cap"], true);
    assert_eq!(cost["spend_cap_usd"], 500);
    assert_eq!(cost["paid_usd"], 50);
    assert_eq!(cost["days_since_first_payment"], 7);
    assert!(dir.join("rpm/plan.md").exists());
    // The page: the grid coloured by verdict, and the recommended tier's limits over time.
    let page = std::fs::read_to_string(dir.join("rpm/index.html")).unwrap();
    assert!(page.contains("<td class=\"meets\">100.0%"), "{page}");
    assert!(page.contains("<td class=\"fails\">80.0%"), "{page}");
    assert!(page.contains("tier-2 at 1x: use of its limits"), "{page}");
    assert_eq!(page.matches("<svg").count(), 1);
    assert!(!page.contains("<script"));
}

#[test]
fn the_tpm_bound_twin_needs_tier_3() {
    let dir = scratch_dir("plan-tpm");
    let (plan, _) = plan(
        &dir,
        "plan-tpm.toml",
        "tpm",
        &["--growth", "1,2.5", "--tiers", "tier-2..tier-4"],
    );
    // 3 million TPM at 2.5x: over Tier 2's 2 million, under Tier 3's 4 million.
    assert_eq!(cheapest(&plan), ["1.0x: tier-2", "2.5x: tier-3"]);
    assert_eq!(plan["verdict"]["next_tier"], "tier-3");
    assert_tier_2_breaks_at_2_02(&plan);
    assert_eq!(tier(&plan, "tier-2")["binding_limit"], "tpm");
    // At its breaking point Tier 2 runs its tokens, not its requests, near the limit.
    let used = &tier(&plan, "tier-2")["utilisation"];
    assert!(used["tpm"].as_f64().unwrap() > 0.9, "{used}");
    assert!(used["rpm"].as_f64().unwrap() < 0.6, "{used}");
}

#[test]
fn a_cached_share_lowers_the_cost_at_the_cached_price() {
    let dir = scratch_dir("plan-cached");
    let (plan, _) = plan(
        &dir,
        "plan-rpm.toml",
        "cached",
        &[
            "--growth",
            "1",
            "--tiers",
            "tier-2",
            "--cached-share",
            "0.5",
        ],
    );
    // Half of the 12.96 billion input tokens at $0.075 instead of $0.15: $486 less.
    assert_eq!(plan["cost"][0]["cached_input_tokens"], 6_480_000_000u64);
    assert_eq!(plan["cost"][0]["usd"], 3013.2);
}

#[test]
fn counted_rejections_are_swept_on_the_grid_and_named_when_they_change_the_answer() {
    let dir = scratch_dir("plan-rules");
    let (plan, _) = plan(
        &dir,
        "plan-rpm.toml",
        "rules",
        &[
            "--growth",
            "1,2.5",
            "--tiers",
            "tier-2..tier-4",
            "--rejections",
            "free,count-per-minute",
        ],
    );
    let rules: Vec<&str> = plan["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["free", "count-per-minute"]);
    // Without retries a rejection is never resent, so charging it changes nothing here.
    assert_eq!(plan["rules"][1]["cheapest"], plan["rules"][0]["cheapest"]);
    assert!(plan["verdict"].get("differs_under").is_none());
}

#[test]
fn the_plan_is_the_same_bytes_on_one_and_two_threads() {
    let dir = scratch_dir("plan-jobs");
    let extra = [
        "--growth",
        "1,2.5",
        "--tiers",
        "tier-2..tier-3",
        "--seeds",
        "3",
    ];
    let one = [&extra[..], &["--jobs", "1"]].concat();
    let two = [&extra[..], &["--jobs", "2"]].concat();
    plan(&dir, "plan-tpm.toml", "one", &one);
    plan(&dir, "plan-tpm.toml", "two", &two);
    for name in ["plan.json", "plan.md"] {
        let read = |run: &str| std::fs::read(dir.join(run).join(name)).unwrap();
        assert!(
            read("one") == read("two"),
            "{name} differs between 1 and 2 threads"
        );
    }
}

#[test]
fn bad_flags_say_what_is_wrong_and_how_to_fix_it() {
    let scenario = fixture("plan-rpm.toml");
    let scenario = scenario.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--tiers", "tier-9"],
            "--tiers: unknown tier \"tier-9\" (expected one of: free, tier-1, tier-2, tier-3, tier-4, tier-5; a range such as free..tier-5 takes every tier between)",
        ),
        (
            &["--tiers", "free"],
            "--tiers: tier \"free\" does not offer gpt-4o-mini (tiers that do: tier-1, tier-2, tier-3, tier-4, tier-5)",
        ),
        (
            &["--growth", "0"],
            "--growth: growth factor \"0\" is not above 0: a factor multiplies the scenario's traffic",
        ),
        (
            &["--growth", "1,abc"],
            "--growth: growth factor \"abc\" is not a number (expected e.g. 1.5",
        ),
        (&["--cached-share", "30"], "30 is not a share from 0 to 1"),
        (
            &["--rejections", "counted"],
            "--rejections: unknown rule \"counted\" (expected one of: free, count-per-minute, count-all-request-limits)",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["plan", scenario];
        args.extend_from_slice(extra);
        let output = ratelab(&args);
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
}

#[test]
fn a_replayed_trace_is_refused_with_the_reason() {
    let output = ratelab(&["plan", "scenarios/replay-trace.toml", "--growth", "1"]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("replays a recorded trace, which cannot grow honestly"),
        "{stderr}"
    );
}

#[test]
fn help_explains_the_criterion_and_shows_examples() {
    let output = ratelab(&["plan", "--help"]);
    assert_exit(&output, 0);
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--tiers <TIERS>",
        "--growth <FACTORS>",
        "[default: 1,1.5,2,3,5]",
        "95% interval",
        "ratelab plan scenarios/capacity-plan.toml",
    ] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
}

#[test]
fn private_tiers_from_a_catalog_file_take_part_in_the_sweep_after_the_built_in_ones() {
    let dir = scratch_dir("plan-catalog");
    let catalog = fixture("catalog-enterprise.toml");
    let (json, stdout) = plan(
        &dir,
        "plan-rpm.toml",
        "private",
        &[
            "--catalog",
            catalog.to_str().unwrap(),
            "--growth",
            "1,2.5",
            "--tiers",
            "enterprise,startup,tier-2,tier-3",
        ],
    );
    // In the catalog's order: the built-in tiers, then the added ones by spend cap.
    assert_eq!(
        json["tiers"],
        serde_json::json!(["tier-2", "tier-3", "startup", "enterprise"])
    );
    assert_eq!(cheapest(&json), ["1.0x: tier-2", "2.5x: enterprise"]);
    // Tier 2 fails at 2.031x; startup, the next tier in order, holds past it.
    assert_eq!(json["verdict"]["next_tier"], "startup");
    assert_eq!(tier(&json, "enterprise")["limits"]["rpm"], 8_000);
    // startup's 6,000 RPM holds to 2.424x by the fixture's sums.
    let point = &tier(&json, "startup")["breaking_point"];
    let (sustains, fails) = (
        point["sustains"].as_f64().unwrap(),
        point["fails_at"].as_f64().unwrap(),
    );
    assert!(
        sustains <= 2.424 && 2.424 < fails && fails - sustains <= 0.05,
        "{point}"
    );
    assert!(
        stdout.contains("then move to startup, which holds to 2.4"),
        "{stdout}"
    );
    // A `--tiers` range reads the same order.
    let (json, _) = plan(
        &dir,
        "plan-rpm.toml",
        "range",
        &[
            "--catalog",
            catalog.to_str().unwrap(),
            "--growth",
            "1",
            "--tiers",
            "tier-5..",
        ],
    );
    assert_eq!(
        json["tiers"],
        serde_json::json!(["tier-5", "startup", "enterprise"])
    );
}

#[test]
fn a_private_model_plans_on_the_tiers_that_offer_it() {
    let dir = scratch_dir("plan-private-model");
    let text = std::fs::read_to_string(fixture("plan-rpm.toml"))
        .unwrap()
        .replace(
            "model = \"gpt-4o-mini\"\ntier = \"tier-2\"",
            "model = \"our-finetune\"\ntier = \"enterprise\"",
        );
    let scenario = dir.join("finetune.toml");
    std::fs::write(&scenario, text).unwrap();
    let catalog = fixture("catalog-enterprise.toml");
    let out = dir.join("out");
    let output = ratelab(&[
        "plan",
        scenario.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--growth",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    assert_eq!(json["tiers"], serde_json::json!(["tier-3", "enterprise"]));
    // 3,000 RPM is over tier-3's 2,000 for our-finetune.
    assert_eq!(cheapest(&json), ["1.0x: enterprise"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("(no list price for our-finetune: priced at $0)"),
        "{stdout}"
    );
    // Without the file, the scenario names a tier and a model ratelab does not know.
    let output = ratelab(&[
        "plan",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("finetune.toml:"), "{stderr}");
    assert!(stderr.contains("unknown tier \"enterprise\""), "{stderr}");
}

#[test]
fn a_bad_catalog_file_is_refused_at_its_place() {
    let dir = scratch_dir("plan-bad-catalog");
    let scenario = fixture("plan-rpm.toml");
    let cases = [
        (
            "[models.gpt-4o-mini.tiers]\nenterprise = { rpm = 8000 }\n",
            "mine.toml:2:1: model \"gpt-4o-mini\" lists limits for unknown tier \"enterprise\" (expected one of: free, tier-1, tier-2, tier-3, tier-4, tier-5; or define it under [tiers.enterprise])",
        ),
        (
            "[tiers.enterprise]\nqualification = \"a contract\"\n",
            "mine.toml:1:1: missing field `monthly_spend_cap_usd`",
        ),
        (
            "[models.gpt-4o-mini.tiers]\ntier-2 = { rpm = \"lots\" }\n",
            "mine.toml:2:18: invalid type: string \"lots\", expected u64",
        ),
        (
            "[models.mine]\ncolour = \"blue\"\n",
            "mine.toml:2:1: unknown field `colour`, expected one of `kind`, `pool`",
        ),
    ];
    for (text, expected) in cases {
        let file = dir.join("mine.toml");
        std::fs::write(&file, text).unwrap();
        for command in ["plan", "run", "check"] {
            let output = ratelab(&[
                command,
                scenario.to_str().unwrap(),
                "--catalog",
                file.to_str().unwrap(),
            ]);
            assert_exit(&output, 2);
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert!(stderr.contains(expected), "{command} {text}: {stderr}");
        }
    }
    let output = ratelab(&[
        "tiers",
        "--catalog",
        dir.join("absent.toml").to_str().unwrap(),
    ]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("absent.toml: cannot read the catalog file"),
        "{stderr}"
    );
}
