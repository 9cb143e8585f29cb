//! Limits enforced by the server model (`quota`'s limiter): headers on every response, exact 429
//! bodies, the header policy, project limits, budgets, and runtime changes through the admin
//! API.

use std::time::Duration;

use axum::http::Method;
use model::{HeaderPolicy, OrganizationConfig, ProjectConfig, RateLimitHeaderPolicy, ServerConfig};
use serde_json::json;

use crate::support::{KEY, chat_body, manual_config, post, request, router, send};

/// gpt-4o with a 1,000 TPM tier-1 limit, so a few requests exhaust it.
/// Characters of `chat_body`'s prompt, "Say hello to ratelab.".
const PROMPT_CHARACTERS: u64 = 21;

fn small_tpm_config() -> ServerConfig {
    let catalog: toml::Table = toml::from_str(
        r#"
        [models.gpt-4o.tiers]
        tier-1 = { tpm = 1000 }
        "#,
    )
    .unwrap();
    ServerConfig {
        catalog: Some(catalog),
        ..manual_config()
    }
}

#[tokio::test]
async fn every_success_carries_openais_rate_limit_headers() {
    let (_, app) = router(manual_config());
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 100)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("500"));
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("499"));
    assert_eq!(reply.header("x-ratelimit-reset-requests"), Some("120ms"));
    assert_eq!(reply.header("x-ratelimit-limit-tokens"), Some("30000"));
    // OpenAI's guide: the larger of max_tokens and characters / 4 (21 characters here).
    let charged = 100u64.max(PROMPT_CHARACTERS.div_ceil(4));
    let remaining = (30_000 - charged).to_string();
    assert_eq!(
        reply.header("x-ratelimit-remaining-tokens"),
        Some(remaining.as_str())
    );
    // reset = charged x 60 s / 30000, in Go's duration format.
    let reset = format!("{}ms", charged * 2);
    assert_eq!(
        reply.header("x-ratelimit-reset-tokens"),
        Some(reset.as_str())
    );
    assert!(reply.header("x-ratelimit-limit-project-tokens").is_none());
}

#[tokio::test]
async fn an_exhausted_tpm_gets_openais_exact_429_until_the_wait_has_passed() {
    let (state, app) = router(small_tpm_config());
    let first = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 400)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let charged = 400u64.max(PROMPT_CHARACTERS.div_ceil(4));
    assert_eq!(
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 400))
            .await
            .status,
        200
    );

    let rejected = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 400)).await;
    let error = rejected.expect_error(429, Some("rate_limit_exceeded"));
    assert_eq!(error["type"], "tokens");
    let used = 2 * charged;
    let wait_ms = (used + charged - 1000) * 60;
    let expected = format!(
        "Rate limit reached for gpt-4o in organization org-ratelab on tokens per min (TPM): \
         Limit 1000, Used {used}, Requested {charged}. Please try again in {}. Visit \
         https://platform.openai.com/account/rate-limits to learn more.",
        quota::format_go_duration(Duration::from_millis(wait_ms))
    );
    assert_eq!(error["message"], expected.as_str());
    assert_eq!(
        rejected.header("retry-after"),
        Some(wait_ms.div_ceil(1000).to_string().as_str())
    );
    assert!(rejected.header("retry-after-ms").is_none());
    assert_eq!(rejected.header("x-ratelimit-limit-tokens"), Some("1000"));
    assert_eq!(rejected.header("openai-organization"), Some("org-ratelab"));

    state
        .clock()
        .advance(Duration::from_millis(wait_ms - 1))
        .unwrap();
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 400))
        .await
        .expect_error(429, Some("rate_limit_exceeded"));
    state.clock().advance(Duration::from_millis(1)).unwrap();
    let admitted = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 400)).await;
    assert_eq!(admitted.status, 200, "{}", admitted.text());
}

#[tokio::test]
async fn a_request_larger_than_the_limit_is_too_large_with_no_retry_time() {
    let (_, app) = router(small_tpm_config());
    let rejected = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5000)).await;
    let error = rejected.expect_error(429, Some("rate_limit_exceeded"));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Request too large for gpt-4o in organization org-ratelab on tokens per min (TPM): Limit 1000, Requested "),
        "{message}"
    );
    assert!(rejected.header("retry-after").is_none());
}

#[tokio::test]
async fn the_header_policy_changes_what_a_429_carries() {
    let (_, app) = router(ServerConfig {
        headers: HeaderPolicy {
            retry_after: false,
            retry_after_ms: true,
            rate_limit: RateLimitHeaderPolicy::Success,
        },
        ..small_tpm_config()
    });
    let admitted = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 600)).await;
    assert_eq!(admitted.header("x-ratelimit-limit-tokens"), Some("1000"));
    let rejected = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 600)).await;
    rejected.expect_error(429, Some("rate_limit_exceeded"));
    assert!(rejected.header("retry-after").is_none());
    assert!(
        rejected
            .header("retry-after-ms")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(rejected.header("x-ratelimit-limit-tokens").is_none());
}

#[tokio::test]
async fn with_no_rate_limit_headers_neither_successes_nor_429s_carry_them() {
    let (_, app) = router(ServerConfig {
        headers: HeaderPolicy {
            rate_limit: RateLimitHeaderPolicy::None,
            ..HeaderPolicy::default()
        },
        ..small_tpm_config()
    });
    let admitted = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 600)).await;
    assert_eq!(admitted.status, 200, "{}", admitted.text());
    let rejected = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 600)).await;
    rejected.expect_error(429, Some("rate_limit_exceeded"));
    assert!(rejected.header("retry-after").is_some());
    for reply in [&admitted, &rejected] {
        assert!(
            !reply
                .headers
                .keys()
                .any(|name| name.as_str().starts_with("x-ratelimit-")),
            "{:?}",
            reply.headers
        );
    }
}

fn organization(budget_usd: Option<f64>, project_limits: &str) -> OrganizationConfig {
    OrganizationConfig {
        id: "org-acme".to_owned(),
        tier: None,
        budget_usd,
        limits: Default::default(),
        projects: vec![ProjectConfig {
            id: "proj_web".to_owned(),
            keys: vec![KEY.to_owned()],
            limits: toml::from_str(project_limits).unwrap(),
        }],
    }
}

#[tokio::test]
async fn a_project_limit_applies_on_top_of_the_organizations() {
    let (_, app) = router(ServerConfig {
        organizations: vec![organization(None, "[gpt-4o]\ntpm = 500")],
        ..manual_config()
    });
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 300)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-ratelimit-limit-project-tokens"),
        Some("500")
    );
    assert_eq!(reply.header("x-ratelimit-limit-tokens"), Some("30000"));
    let error = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 300))
        .await
        .expect_error(429, Some("rate_limit_exceeded"));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Rate limit reached for gpt-4o in project proj_web organization org-acme on tokens per min (TPM): Limit 500"),
        "{message}"
    );
}

#[tokio::test]
async fn projects_have_buckets_of_their_own_inside_their_organizations_bucket() {
    let project = |id: &str, key: &str| ProjectConfig {
        id: id.to_owned(),
        keys: vec![key.to_owned()],
        limits: toml::from_str("[gpt-4o]\ntpm = 500").unwrap(),
    };
    let organization = |id: &str, projects: Vec<ProjectConfig>| OrganizationConfig {
        id: id.to_owned(),
        tier: None,
        budget_usd: None,
        limits: Default::default(),
        projects,
    };
    let (_, app) = router(ServerConfig {
        organizations: vec![
            organization(
                "org-a",
                vec![
                    project("proj_1", "sk-key-a1-000000"),
                    project("proj_2", "sk-key-a2-000000"),
                ],
            ),
            organization("org-b", vec![project("proj_1", "sk-key-b1-000000")]),
        ],
        ..manual_config()
    });
    let chat = |key: &'static str| {
        let app = app.clone();
        async move {
            let body = chat_body("gpt-4o", 300);
            send(
                &app,
                request(Method::POST, "/v1/chat/completions", Some(key), Some(&body)),
            )
            .await
        }
    };
    let remaining = |reply: &crate::support::Reply, name: &str| -> u64 {
        reply.header(name).unwrap().parse().unwrap()
    };

    let first = chat("sk-key-a1-000000").await;
    assert_eq!(first.status, 200, "{}", first.text());
    // proj_1's bucket is spent; proj_2 of the same organization still has its own.
    chat("sk-key-a1-000000")
        .await
        .expect_error(429, Some("rate_limit_exceeded"));
    let second = chat("sk-key-a2-000000").await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        remaining(&second, "x-ratelimit-remaining-project-tokens"),
        remaining(&first, "x-ratelimit-remaining-project-tokens")
    );
    // Both projects draw on org-a's one bucket.
    let organization_spent = |reply: &crate::support::Reply| {
        remaining(reply, "x-ratelimit-limit-tokens")
            - remaining(reply, "x-ratelimit-remaining-tokens")
    };
    assert!(organization_spent(&second) > organization_spent(&first));
    // org-b, even with a project of the same name, starts from a full bucket.
    let other = chat("sk-key-b1-000000").await;
    assert_eq!(other.status, 200, "{}", other.text());
    assert_eq!(organization_spent(&other), organization_spent(&first));
}

#[tokio::test]
async fn an_exhausted_budget_gets_insufficient_quota_until_the_next_month() {
    let (state, app) = router(ServerConfig {
        // gpt-4 costs $30 per million input tokens: one request spends more than this.
        organizations: vec![organization(Some(0.0001), "")],
        ..manual_config()
    });
    assert_eq!(
        post(&app, "/v1/chat/completions", chat_body("gpt-4", 20))
            .await
            .status,
        200
    );
    let rejected = post(&app, "/v1/chat/completions", chat_body("gpt-4", 20)).await;
    let error = rejected.expect_error(429, Some("insufficient_quota"));
    assert_eq!(error["type"], "insufficient_quota");
    assert!(rejected.header("retry-after").is_none());

    // Caps are monthly: after 30 days of server time the spend starts again from zero.
    state
        .clock()
        .advance(Duration::from_secs(30 * 86_400 - 1))
        .unwrap();
    post(&app, "/v1/chat/completions", chat_body("gpt-4", 20))
        .await
        .expect_error(429, Some("insufficient_quota"));
    state.clock().advance(Duration::from_secs(1)).unwrap();
    assert_eq!(
        post(&app, "/v1/chat/completions", chat_body("gpt-4", 20))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_admin_api_changes_tier_and_limits_at_runtime() {
    let (_, app) = router(manual_config());
    let token = Some("admin-secret");
    let reply = send(
        &app,
        request(
            Method::PUT,
            "/_admin/tier",
            token,
            Some(&json!({"tier": "free"})),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The free tier does not offer gpt-4o.
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5))
        .await
        .expect_error(404, Some("model_not_found"));
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-3.5-turbo", 5)).await;
    assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("3"));

    send(
        &app,
        request(
            Method::PUT,
            "/_admin/tier",
            token,
            Some(&json!({"tier": "tier-9"})),
        ),
    )
    .await
    .expect_error(400, None);

    let change = json!({"model": "gpt-3.5-turbo", "limits": {"rpm": 7, "tpm": 7000}});
    let reply = send(
        &app,
        request(Method::PUT, "/_admin/limits", token, Some(&change)),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-3.5-turbo", 5)).await;
    assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("7"));
    assert_eq!(reply.header("x-ratelimit-limit-tokens"), Some("7000"));

    let state = send(&app, request(Method::GET, "/_admin/state", token, None))
        .await
        .json();
    assert_eq!(state["limits"]["default_tier"], "free");
    assert_eq!(
        state["limits"]["organizations"]["org-ratelab"]["limits"]["gpt-3.5-turbo"]["rpm"],
        7
    );
}

#[tokio::test]
async fn reset_refills_every_bucket() {
    let (_, app) = router(small_tpm_config());
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 600)).await;
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 600))
        .await
        .expect_error(429, Some("rate_limit_exceeded"));
    let reply = send(
        &app,
        request(Method::POST, "/_admin/reset", Some("admin-secret"), None),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 600))
            .await
            .status,
        200
    );
}

/// `[latency]` with no waits, as `LatencyConfig::instant()`: a manual clock would hold them.
const INSTANT_LATENCY: &str =
    "[latency]\nttft = \"0s\"\nper_output_token = \"0s\"\njitter = 0.0\nreject = \"0s\"\n";

/// A manual-clock config from TOML, with no latency: `[limiter]` as given, and one key acting for
/// org-acme/proj_web with the given gpt-4o limit sets (an empty one is left out).
fn limiter_config(limiter: &str, organization_set: &str, project_set: &str) -> ServerConfig {
    let mut text = format!(
        "clock = \"manual\"\nadmin_token = \"admin-secret\"\n{INSTANT_LATENCY}[limiter]\n{limiter}\n\
         [[organizations]]\nid = \"org-acme\"\n"
    );
    if !organization_set.is_empty() {
        text.push_str(&format!(
            "[organizations.limits.gpt-4o]\n{organization_set}\n"
        ));
    }
    text.push_str(&format!(
        "[[organizations.projects]]\nid = \"proj_web\"\nkeys = [\"{KEY}\"]\n"
    ));
    if !project_set.is_empty() {
        text.push_str(&format!(
            "[organizations.projects.limits.gpt-4o]\n{project_set}\n"
        ));
    }
    ServerConfig::from_toml_str(&text, "serve.toml").unwrap()
}

#[tokio::test]
async fn limiter_quantization_applies_to_organization_and_project_limit_sets() {
    // 120 RPM quantized to one second is 2 per second: a third request at once is refused.
    for (organization_set, project_set, scope) in [
        ("rpm = 120", "", "in organization org-acme"),
        (
            "rpm = 6000",
            "rpm = 120",
            "in project proj_web organization org-acme",
        ),
    ] {
        let (_, app) = router(limiter_config(
            "quantum_ms = 1000",
            organization_set,
            project_set,
        ));
        for _ in 0..2 {
            let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5)).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
        let error = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5))
            .await
            .expect_error(429, Some("rate_limit_exceeded"));
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(scope),
            "{organization_set} / {project_set}: {message}"
        );
    }
}

/// Whether, with 1 RPM, a request a minute after an admitted and a rejected one is admitted:
/// yes when rejections are free, no when the rejection was counted.
/// With 1 RPM: admitted at 0 s, rejected at 30 s, then tried at 60 s. Under `free` the bucket
/// has refilled by 60 s; a counted rejection took the half request refilled by 30 s, so it has
/// not.
async fn admitted_a_minute_after_a_rejection(config: ServerConfig) -> bool {
    let (state, app) = router(config);
    let first = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    state.clock().advance(Duration::from_secs(30)).unwrap();
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5))
        .await
        .expect_error(429, Some("rate_limit_exceeded"));
    state.clock().advance(Duration::from_secs(30)).unwrap();
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5))
        .await
        .status
        == 200
}

#[tokio::test]
async fn the_limiter_rejection_rule_applies_to_limit_sets_unless_they_write_their_own() {
    const FREE: &str = "rejected_requests = \"free\"";
    const COUNT: &str = "rejected_requests = \"count-per-minute\"";
    // (`[limiter]`, organization set, project set, admitted a minute later)
    let cases = [
        (FREE, "rpm = 1".to_owned(), String::new(), true),
        (COUNT, "rpm = 1".to_owned(), String::new(), false),
        (FREE, "rpm = 1000".to_owned(), "rpm = 1".to_owned(), true),
        (COUNT, "rpm = 1000".to_owned(), "rpm = 1".to_owned(), false),
        // A rule written in the limit set itself wins over `[limiter]`.
        (FREE, format!("rpm = 1\n{COUNT}"), String::new(), false),
        (COUNT, format!("rpm = 1\n{FREE}"), String::new(), true),
        (
            COUNT,
            "rpm = 1000".to_owned(),
            format!("rpm = 1\n{FREE}"),
            true,
        ),
    ];
    for (limiter, organization_set, project_set, expected) in cases {
        let config = limiter_config(limiter, &organization_set, &project_set);
        assert_eq!(
            admitted_a_minute_after_a_rejection(config).await,
            expected,
            "[limiter] {limiter}; organization: {organization_set}; project: {project_set}"
        );
    }
}

#[tokio::test]
async fn the_admin_state_shows_the_limiter_options_a_limit_set_is_enforced_with() {
    let (_, app) = router(limiter_config(
        "algorithm = \"fixed-window\"\nquantum_ms = 2000",
        "rpm = 100",
        "rpm = 10\nquantum_ms = 5000",
    ));
    let change = json!({"organization": "org-acme", "model": "gpt-4o-mini", "limits": {"rpm": 7}});
    let reply = send(
        &app,
        request(
            Method::PUT,
            "/_admin/limits",
            Some("admin-secret"),
            Some(&change),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let organization = &reply.json()["organizations"]["org-acme"];
    let organization_set = &organization["limits"]["gpt-4o"];
    assert_eq!(organization_set["algorithm"], "fixed-window");
    assert_eq!(organization_set["quantum_ms"], 2000);
    let project_set = &organization["projects"]["proj_web"]["gpt-4o"];
    assert_eq!(project_set["algorithm"], "fixed-window");
    assert_eq!(project_set["quantum_ms"], 5000);
    let changed = &organization["limits"]["gpt-4o-mini"];
    assert_eq!(changed["algorithm"], "fixed-window");
    assert_eq!(changed["quantum_ms"], 2000);
}

/// Tokens the TPM bucket holds in use after one request, read from its headers.
fn tokens_charged(reply: &crate::support::Reply) -> u64 {
    30_000
        - reply
            .header("x-ratelimit-remaining-tokens")
            .expect("rate-limit headers")
            .parse::<u64>()
            .unwrap()
}

#[tokio::test]
async fn the_token_charge_follows_the_guide_by_default_and_the_cookbook_when_asked() {
    let long_prompt = "word ".repeat(800); // 4,000 characters, 800 tokens
    let body = |max_tokens: Option<u32>| {
        let mut body = json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": long_prompt}],
        });
        if let Some(max_tokens) = max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        body
    };
    // Without max_tokens: the estimate alone, characters / 4.
    let (_, app) = router(manual_config());
    let reply = post(&app, "/v1/chat/completions", body(None)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(tokens_charged(&reply), 1_000);
    // With a larger max_tokens: max_tokens.
    let (_, app) = router(manual_config());
    let reply = post(&app, "/v1/chat/completions", body(Some(1_500))).await;
    assert_eq!(tokens_charged(&reply), 1_500);
    // The cookbook's rule, chosen in [limiter]: counted prompt tokens plus max_tokens.
    let config = ServerConfig::from_toml_str(
        &format!(
            "clock = \"manual\"\n{INSTANT_LATENCY}[limiter]\ntoken_charge = \"prompt-plus-max\"\n"
        ),
        "serve.toml",
    )
    .unwrap();
    let (_, app) = router(config);
    let reply = post(&app, "/v1/chat/completions", body(Some(1_500))).await;
    let prompt = reply.json()["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(tokens_charged(&reply), prompt + 1_500);
}
