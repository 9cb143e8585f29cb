//! Several organizations and projects in the simulator, as the mock server has them: each
//! client group sends its own key, and its organization's and project's limits and budget
//! apply to it alone.

use results::{AttemptOutcome, AttemptRecord, LimitKind};

const SCENARIO: &str = r#"name = "organizations"
duration = "2m"
drain = "0s"
[server]
model = "gpt-4o-mini"
tier = "tier-5"
[server.latency]
ttft = "10ms"
per_output_token = "0s"
jitter = 0.0
[[server.organizations]]
id = "org-shop"
[[server.organizations.projects]]
id = "proj_web"
keys = ["sk-shop-web-000001"]
[[server.organizations.projects]]
id = "proj_batch"
keys = ["sk-shop-batch-00001"]
[server.organizations.projects.limits.gpt-4o-mini]
rpm = 60
[[server.organizations]]
id = "org-lab"
budget_usd = 0.0001
[[server.organizations.projects]]
id = "proj_lab"
keys = ["sk-lab-000000001"]
[[clients]]
name = "web"
key = "sk-shop-web-000001"
arrival = { kind = "constant", rpm = 600 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "batch"
key = "sk-shop-batch-00001"
arrival = { kind = "constant", rpm = 600 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "lab"
key = "sk-lab-000000001"
arrival = { kind = "constant", rpm = 60 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }
[[strategies]]
kind = "none"
"#;

/// (successes, project RPM 429s, quota 429s) of the group at index `group`.
fn fates(attempts: &[AttemptRecord], group: u32) -> (usize, usize, usize) {
    let of_group = attempts
        .iter()
        .filter(|record| record.client.group == group);
    let mut fates = (0, 0, 0);
    for record in of_group {
        match record.outcome {
            AttemptOutcome::Success => fates.0 += 1,
            AttemptOutcome::RateLimited {
                limit: LimitKind::Rpm,
                ..
            } => fates.1 += 1,
            AttemptOutcome::RateLimited {
                limit: LimitKind::Other,
                ..
            } => fates.2 += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    fates
}

#[test]
fn each_group_meets_its_own_organizations_and_projects_limits_and_budget() {
    let (_, _, attempts) = crate::simulate(&crate::parse(SCENARIO));
    // Tier 5 serves the web project's 1,200 requests without a 429.
    assert_eq!(fates(&attempts, 0), (1_200, 0, 0));
    // The batch project's own 60 RPM binds on top of its organization's: a full bucket of 60,
    // then one a second over the two minutes.
    let (served, limited, _) = fates(&attempts, 1);
    assert_eq!(served + limited, 1_200);
    assert!((175..=185).contains(&served), "{served} served");
    // The lab organization's budget of $0.0001 buys a few requests (about $0.00002 each at
    // gpt-4o-mini's list price), then every request is insufficient_quota.
    let (served, _, quota) = fates(&attempts, 2);
    assert!((3..=8).contains(&served), "{served} served");
    assert_eq!(served + quota, 120);
}

#[test]
fn a_group_without_a_declared_key_is_refused_with_the_fix() {
    let text = SCENARIO.replace("key = \"sk-lab-000000001\"\narrival", "arrival");
    let error = scenario::parse_scenario(&text, "orgs.toml", &mut |path| {
        std::fs::read_to_string(path)
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("client group \"lab\" has no key, but the server declares organizations"),
        "{error}"
    );
}
