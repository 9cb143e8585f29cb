//! Per-key series in `/metrics`: declared keys counted apart under their redacted form, every
//! other key pooled as `other`, and the grader's counters per key when a grader is attached.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use model::{LatencyConfig, ServerConfig};
use ratelab_server::{AppState, GradedApi, Grader};
use serde_json::json;
use tower::ServiceExt;

use crate::support::{exchange, scripted_chat};

const ALPHA: &str = "sk-alpha-0000000001";
const BRAVO: &str = "sk-bravo-0000000002";
const ALPHA_LABEL: &str = "sk-************0001";
const BRAVO_LABEL: &str = "sk-************0002";

/// Two organizations of one key each, gpt-4o at 2 requests per minute, on the manual clock
/// with no latency.
fn two_keys_config() -> ServerConfig {
    let text = format!(
        r#"
        clock = "manual"
        [catalog.models.gpt-4o.tiers]
        tier-1 = {{ rpm = 2 }}
        [[organizations]]
        id = "org-alpha"
        [[organizations.projects]]
        id = "proj-alpha"
        keys = ["{ALPHA}"]
        [[organizations]]
        id = "org-bravo"
        [[organizations.projects]]
        id = "proj-bravo"
        keys = ["{BRAVO}"]
        "#
    );
    ServerConfig {
        latency: LatencyConfig::instant(),
        ..ServerConfig::from_toml_str(&text, "two keys").unwrap()
    }
}

struct Client {
    state: AppState,
    service: GradedApi,
}

impl Client {
    fn new() -> Client {
        let state = AppState::new(two_keys_config()).unwrap();
        let service = GradedApi::new(state.clone(), Some(Grader::new()));
        Client { state, service }
    }

    /// Sends a chat completion of `prompt` (`max_tokens` 5) with `key`; returns the status,
    /// the reply's usage (prompt, completion) and its Retry-After in seconds.
    async fn chat(&self, key: Option<&str>, prompt: &str) -> (u16, (u64, u64), Option<u64>) {
        let sent = exchange(&self.service, scripted_chat(key, prompt, None)).await;
        (sent.status, sent.usage, sent.retry_after)
    }

    async fn get(&self, path: &str, key: &str) -> (u16, String) {
        let request = Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        let response = self.service.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

fn add(total: &mut (u64, u64), usage: (u64, u64)) {
    total.0 += usage.0;
    total.1 += usage.1;
}

#[tokio::test]
async fn declared_keys_are_counted_apart_and_unknown_keys_are_pooled() {
    let client = Client::new();
    let mut alpha_tokens = (0, 0);
    let mut bravo_tokens = (0, 0);
    // Alpha: two successes, a 429, and its retry after the stated wait.
    for prompt in ["alpha one", "alpha two"] {
        let (status, usage, _) = client.chat(Some(ALPHA), prompt).await;
        assert_eq!(status, 200);
        add(&mut alpha_tokens, usage);
    }
    let (status, _, wait) = client.chat(Some(ALPHA), "alpha three").await;
    assert_eq!(status, 429);
    client
        .state
        .clock()
        .advance(Duration::from_secs(wait.unwrap()))
        .unwrap();
    let (status, usage, _) = client.chat(Some(ALPHA), "alpha three").await;
    assert_eq!(status, 200);
    add(&mut alpha_tokens, usage);
    // Bravo, in its own organization: two successes, a 429 retried at once, then given up;
    // and a model listing, which is counted but not graded.
    for prompt in ["bravo one", "bravo two"] {
        let (status, usage, _) = client.chat(Some(BRAVO), prompt).await;
        assert_eq!(status, 200);
        add(&mut bravo_tokens, usage);
    }
    for _ in 0..2 {
        assert_eq!(client.chat(Some(BRAVO), "bravo three").await.0, 429);
    }
    assert_eq!(client.get("/v1/models", BRAVO).await.0, 200);
    // Five random keys and no key at all: 401s, all in one pool.
    for index in 0..5 {
        let key = format!("sk-random-{index:04}-{}", index * 7919);
        assert_eq!(client.chat(Some(&key), "who am I").await.0, 401);
    }
    assert_eq!(client.chat(None, "no key").await.0, 401);

    let (status, text) = client.get("/metrics", ALPHA).await;
    assert_eq!(status, 200);
    assert!(alpha_tokens.0 > 0 && alpha_tokens.1 > 0, "{alpha_tokens:?}");
    let expected = [
        format!("ratelab_key_requests_total{{key=\"{ALPHA_LABEL}\",status=\"200\"}} 3"),
        format!("ratelab_key_requests_total{{key=\"{ALPHA_LABEL}\",status=\"429\"}} 1"),
        format!("ratelab_key_requests_total{{key=\"{BRAVO_LABEL}\",status=\"200\"}} 3"),
        format!("ratelab_key_requests_total{{key=\"{BRAVO_LABEL}\",status=\"429\"}} 2"),
        "ratelab_key_requests_total{key=\"other\",status=\"401\"} 6".to_owned(),
        format!(
            "ratelab_key_tokens_total{{key=\"{ALPHA_LABEL}\",direction=\"prompt\"}} {}",
            alpha_tokens.0
        ),
        format!(
            "ratelab_key_tokens_total{{key=\"{ALPHA_LABEL}\",direction=\"completion\"}} {}",
            alpha_tokens.1
        ),
        format!(
            "ratelab_key_tokens_total{{key=\"{BRAVO_LABEL}\",direction=\"prompt\"}} {}",
            bravo_tokens.0
        ),
        format!(
            "ratelab_key_tokens_total{{key=\"{BRAVO_LABEL}\",direction=\"completion\"}} {}",
            bravo_tokens.1
        ),
        "ratelab_key_tokens_total{key=\"other\",direction=\"prompt\"} 0".to_owned(),
        // The grader's counters. Every admitted attempt is charged max(5, prompt characters
        // / 4) = 5 tokens (the guide rule), a 429 none.
        format!("ratelab_key_logical_requests_total{{key=\"{ALPHA_LABEL}\"}} 3"),
        format!("ratelab_key_retries_total{{key=\"{ALPHA_LABEL}\"}} 1"),
        format!("ratelab_key_early_retries_total{{key=\"{ALPHA_LABEL}\"}} 0"),
        format!("ratelab_key_succeeded_total{{key=\"{ALPHA_LABEL}\"}} 3"),
        format!("ratelab_key_gave_up{{key=\"{ALPHA_LABEL}\"}} 0"),
        format!("ratelab_key_tokens_charged_total{{key=\"{ALPHA_LABEL}\"}} 15"),
        format!("ratelab_key_tokens_wasted_total{{key=\"{ALPHA_LABEL}\"}} 0"),
        format!("ratelab_key_logical_requests_total{{key=\"{BRAVO_LABEL}\"}} 3"),
        format!("ratelab_key_retries_total{{key=\"{BRAVO_LABEL}\"}} 1"),
        format!("ratelab_key_early_retries_total{{key=\"{BRAVO_LABEL}\"}} 1"),
        format!("ratelab_key_succeeded_total{{key=\"{BRAVO_LABEL}\"}} 2"),
        format!("ratelab_key_gave_up{{key=\"{BRAVO_LABEL}\"}} 1"),
        format!("ratelab_key_tokens_charged_total{{key=\"{BRAVO_LABEL}\"}} 10"),
        "ratelab_key_logical_requests_total{key=\"other\"} 6".to_owned(),
        "ratelab_key_gave_up{key=\"other\"} 6".to_owned(),
        "ratelab_key_tokens_charged_total{key=\"other\"} 0".to_owned(),
    ];
    let lines: BTreeSet<&str> = text.lines().collect();
    for line in &expected {
        assert!(lines.contains(line.as_str()), "missing {line} in\n{text}");
    }
    // Three labels and no more, whatever keys were sent; no key is shown whole.
    let labels: BTreeSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("ratelab_key_"))
        .filter_map(|line| line.split("key=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        labels,
        BTreeSet::from([ALPHA_LABEL, BRAVO_LABEL, "other"]),
        "{text}"
    );
    for secret in [ALPHA, BRAVO, "sk-random-0001"] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
}

#[tokio::test]
async fn an_ungraded_server_shows_no_graded_series() {
    let state = AppState::new(two_keys_config()).unwrap();
    let app = ratelab_server::app(state);
    let request = |key: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
                    .to_string(),
            ))
            .unwrap()
    };
    for key in [ALPHA, "sk-nobody-000000000"] {
        app.clone().oneshot(request(key)).await.unwrap();
    }
    let metrics = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(metrics).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for expected in [
        format!("ratelab_key_requests_total{{key=\"{ALPHA_LABEL}\",status=\"200\"}} 1"),
        "ratelab_key_requests_total{key=\"other\",status=\"401\"} 1".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected} in\n{text}");
    }
    assert!(
        !text.contains("ratelab_key_logical_requests_total"),
        "{text}"
    );
}
