//! `ServerModel::decide`: admission, the 429 as found, the header policy, spend caps,
//! projects and scripted faults.

use std::time::Duration;

use model::{Caller, Refusal, Reply};

use crate::{DEFAULT, cost, model, rng};

fn refusal(reply: Reply) -> Refusal {
    match reply {
        Reply::Refused(refusal) => refusal,
        Reply::Admitted(_) => panic!("admitted"),
    }
}

#[test]
fn the_free_tier_sample_is_reproduced_through_the_model() {
    // gpt-3.5-turbo on the free tier: 3 RPM. The fourth request in a minute finds
    // "Limit 3, Used 3, Requested 1. Please try again in 20s."
    let mut server = model("tier = \"free\"");
    let now = Duration::from_secs(1);
    for _ in 0..3 {
        let reply = server.decide(
            now,
            &DEFAULT,
            &cost("gpt-3.5-turbo", 10, 10),
            &mut rng(),
            true,
        );
        assert!(matches!(reply, Reply::Admitted(_)));
    }
    let reply = server.decide(
        now,
        &DEFAULT,
        &cost("gpt-3.5-turbo", 10, 10),
        &mut rng(),
        true,
    );
    let Refusal::RateLimited(limited) = refusal(reply) else {
        panic!("a limit's 429")
    };
    let body = limited.body("gpt-3.5-turbo", &DEFAULT);
    assert!(
        body.error
            .message
            .contains("Limit 3, Used 3, Requested 1. Please try again in 20s."),
        "{}",
        body.error.message
    );
    assert_eq!(limited.retry_after_seconds, Some(20));
    assert_eq!(limited.retry_after_ms, None, "off by default");
    assert_eq!(limited.exhausted(), "rpm");
    assert!(
        limited.statuses.is_some(),
        "x-ratelimit-* on 429s by default"
    );
    // Under the default rule a retry at the stated time succeeds.
    let later = now + limited.rejection.retry_after.unwrap();
    let reply = server.decide(
        later,
        &DEFAULT,
        &cost("gpt-3.5-turbo", 10, 10),
        &mut rng(),
        true,
    );
    assert!(matches!(reply, Reply::Admitted(_)));
}

#[test]
fn the_header_policy_shapes_what_a_429_and_a_success_carry() {
    let mut server = model(
        "tier = \"free\"\n[headers]\nretry_after = false\nretry_after_ms = true\nrate_limit = \"success\"",
    );
    let now = Duration::ZERO;
    let Reply::Admitted(admitted) = server.decide(
        now,
        &DEFAULT,
        &cost("gpt-3.5-turbo", 1, 1),
        &mut rng(),
        true,
    ) else {
        panic!("admitted")
    };
    assert!(!admitted.statuses.is_empty());
    for _ in 0..2 {
        server.decide(
            now,
            &DEFAULT,
            &cost("gpt-3.5-turbo", 1, 1),
            &mut rng(),
            true,
        );
    }
    let Refusal::RateLimited(limited) = refusal(server.decide(
        now,
        &DEFAULT,
        &cost("gpt-3.5-turbo", 1, 1),
        &mut rng(),
        true,
    )) else {
        panic!("a limit's 429")
    };
    assert_eq!(limited.retry_after_seconds, None);
    assert_eq!(limited.retry_after_ms, Some(20_000));
    assert!(limited.statuses.is_none());
}

#[test]
fn a_budget_spent_answers_insufficient_quota_until_the_next_period() {
    let mut server = model(
        r#"
        [[organizations]]
        id = "org-a"
        budget_usd = 0.001
        [[organizations.projects]]
        id = "p"
        keys = ["sk-aaaaaaaaaaaa"]
        "#,
    );
    let caller = Caller {
        organization: "org-a",
        project: "p",
        key: "sk-aaaaaaaaaaaa",
    };
    let now = Duration::from_secs(1);
    let reply = server.decide(now, &caller, &cost("gpt-4o", 100, 10), &mut rng(), false);
    assert!(matches!(reply, Reply::Admitted(_)));
    // 1,000 input tokens of gpt-4o cost $0.0025: past the budget.
    server.record_spend(&caller, "gpt-4o", 1_000, 0);
    let reply = server.decide(now, &caller, &cost("gpt-4o", 100, 10), &mut rng(), false);
    assert!(matches!(refusal(reply), Refusal::InsufficientQuota));
    // Spend starts again after 30 days of server time.
    let next_month = Duration::from_secs(30 * 86_400 + 1);
    let reply = server.decide(
        next_month,
        &caller,
        &cost("gpt-4o", 100, 10),
        &mut rng(),
        false,
    );
    assert!(matches!(reply, Reply::Admitted(_)));
}

#[test]
fn spend_near_a_cap_or_a_new_period_is_watched() {
    let caller = Caller {
        organization: "org-a",
        project: "p",
        key: "sk-aaaaaaaaaaaa",
    };
    // A cap a hundred-thousandth of itself (the watch margin) over $0.0025, 1,000 input tokens
    // of gpt-4o.
    let config = r#"
        [[organizations]]
        id = "org-a"
        budget_usd = 0.00250001
        [[organizations.projects]]
        id = "p"
        keys = ["sk-aaaaaaaaaaaa"]
        "#;
    let decide = |server: &mut model::ServerModel, seconds: u64| {
        let now = Duration::from_secs(seconds);
        server.decide(now, &caller, &cost("gpt-4o", 100, 10), &mut rng(), false)
    };
    let mut server = model(config);
    server.record_spend(&caller, "gpt-4o", 990, 0);
    assert!(matches!(decide(&mut server, 1), Reply::Admitted(_)));
    assert!(
        !server.spend_may_have_bound(),
        "1% under the cap is clear of it"
    );
    server.record_spend(&caller, "gpt-4o", 10, 0);
    assert!(matches!(decide(&mut server, 2), Reply::Admitted(_)));
    assert!(
        server.spend_may_have_bound(),
        "within the margin of the cap"
    );
    server.record_spend(&caller, "gpt-4o", 1_000, 0);
    assert!(matches!(
        refusal(decide(&mut server, 3)),
        Refusal::InsufficientQuota
    ));
    // A new spend period is watched too, with nothing spent.
    let mut later = model(config);
    assert!(matches!(decide(&mut later, 1), Reply::Admitted(_)));
    assert!(!later.spend_may_have_bound());
    assert!(matches!(
        decide(&mut later, 30 * 86_400 + 1),
        Reply::Admitted(_)
    ));
    assert!(later.spend_may_have_bound());
}

#[test]
fn a_project_limit_binds_on_top_of_the_organizations() {
    let mut server = model(
        r#"
        tier = "tier-5"
        [[organizations]]
        id = "org-a"
        [[organizations.projects]]
        id = "small"
        keys = ["sk-small-000001"]
        [organizations.projects.limits.gpt-4o]
        rpm = 2
        [[organizations.projects]]
        id = "big"
        keys = ["sk-big-00000001"]
        "#,
    );
    let small = Caller {
        organization: "org-a",
        project: "small",
        key: "sk-small-000001",
    };
    let big = Caller {
        project: "big",
        key: "sk-big-00000001",
        ..small
    };
    let now = Duration::ZERO;
    for _ in 0..2 {
        let reply = server.decide(now, &small, &cost("gpt-4o", 1, 1), &mut rng(), false);
        assert!(matches!(reply, Reply::Admitted(_)));
    }
    let Refusal::RateLimited(limited) =
        refusal(server.decide(now, &small, &cost("gpt-4o", 1, 1), &mut rng(), false))
    else {
        panic!("the project's 429")
    };
    assert_eq!(limited.exhausted(), "project_rpm");
    assert!(
        limited
            .body("gpt-4o", &small)
            .error
            .message
            .contains("in project small organization org-a")
    );
    let reply = server.decide(now, &big, &cost("gpt-4o", 1, 1), &mut rng(), false);
    assert!(
        matches!(reply, Reply::Admitted(_)),
        "another project is not limited"
    );
}

#[test]
fn a_script_injects_its_faults_into_its_keys_requests_in_order() {
    let mut server = model(
        r#"
        [[faults.scripts]]
        key = "sk-target-0001"
        steps = [
          { fault = { kind = "rate_limited", retry_after = "2s" } },
          { fault = { kind = "hang", duration = "30s" } },
          { fault = { kind = "connection_reset" } },
        ]
        "#,
    );
    let target = Caller {
        key: "sk-target-0001",
        ..DEFAULT
    };
    let now = Duration::ZERO;
    let mut decide = |caller: &Caller<'_>| {
        server.decide(now, caller, &cost("gpt-4o-mini", 1, 1), &mut rng(), false)
    };
    assert!(matches!(decide(&DEFAULT), Reply::Admitted(_)));
    let Refusal::RateLimited(limited) = refusal(decide(&target)) else {
        panic!("the scripted 429")
    };
    assert!(limited.scripted);
    assert_eq!(limited.retry_after_seconds, Some(2));
    assert!(matches!(
        refusal(decide(&target)),
        Refusal::Hang(wait) if wait == Duration::from_secs(30)
    ));
    let Reply::Admitted(admitted) = decide(&target) else {
        panic!("a reset strikes after admission")
    };
    assert_eq!(admitted.late_fault, Some(model::LateFault::ConnectionReset));
    assert!(matches!(decide(&target), Reply::Admitted(ref a) if a.late_fault.is_none()));
}

#[test]
fn an_unknown_model_or_a_pool_is_not_found() {
    let mut server = model("");
    for name in ["gpt-9", "gpt-4.1-long-context"] {
        let reply = server.decide(
            Duration::ZERO,
            &DEFAULT,
            &cost(name, 1, 1),
            &mut rng(),
            false,
        );
        assert!(matches!(refusal(reply), Refusal::ModelNotFound), "{name}");
    }
}

/// Statuses handed back with `recycle_statuses` are memory only: a model that gets them back
/// answers exactly as one that does not, admissions and 429s alike, headers included.
#[test]
fn recycled_statuses_change_no_reply() {
    let config = r#"
        tier = "tier-1"
        "#;
    let mut recycling = model(config);
    let mut keeping = model(config);
    let mut kept = Vec::new();
    for index in 0..1_000u64 {
        let now = Duration::from_millis(index * 20);
        let request = cost("gpt-4o-mini", 100, 10);
        let with = recycling.decide(now, &DEFAULT, &request, &mut rng(), true);
        let without = keeping.decide(now, &DEFAULT, &request, &mut rng(), true);
        assert_eq!(format!("{with:?}"), format!("{without:?}"), "at {now:?}");
        match with {
            Reply::Admitted(admission) => recycling.recycle_statuses(admission.statuses),
            Reply::Refused(Refusal::RateLimited(limited)) => {
                recycling.recycle_statuses(limited.statuses.unwrap_or_default());
            }
            Reply::Refused(other) => panic!("{other:?}"),
        }
        kept.push(without);
    }
    // 3,000 a minute against Tier 1's 500 RPM: both kinds of reply were checked.
    assert!(kept.iter().any(|reply| matches!(reply, Reply::Admitted(_))));
    assert!(kept.iter().any(|reply| matches!(reply, Reply::Refused(_))));
}
