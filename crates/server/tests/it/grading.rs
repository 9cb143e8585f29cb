//! Grading through the real request pipeline: scripted clients on the manual clock, through
//! `oneshot`, with known answers for logical requests, early retries and give-ups.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use model::{ClockKind, LatencyConfig, ServerConfig};
use ratelab_server::{AppState, GradedApi, Grader};
use serde_json::json;
use tower::ServiceExt;

/// gpt-4o at 2 requests per minute, so the third request within a minute gets a 429.
fn two_rpm_config() -> ServerConfig {
    let catalog: toml::Table =
        toml::from_str("[models.gpt-4o.tiers]\ntier-1 = { rpm = 2 }\n").unwrap();
    ServerConfig {
        clock: ClockKind::Manual,
        catalog: Some(catalog),
        latency: LatencyConfig::instant(),
        ..ServerConfig::default()
    }
}

struct Scripted {
    state: AppState,
    service: GradedApi,
    grader: Grader,
}

impl Scripted {
    fn new() -> Scripted {
        let state = AppState::new(two_rpm_config()).unwrap();
        let grader = Grader::new();
        let service = GradedApi::new(state.clone(), Some(grader.clone()));
        Scripted {
            state,
            service,
            grader,
        }
    }

    /// Sends prompt `prompt` with `key`; returns the status and the Retry-After in seconds.
    async fn send(
        &self,
        key: &str,
        prompt: &str,
        extra: Option<(&str, &str)>,
    ) -> (u16, Option<u64>) {
        let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}], "max_tokens": 5});
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json");
        if let Some((name, value)) = extra {
            builder = builder.header(name, value);
        }
        let request = builder.body(Body::from(body.to_string())).unwrap();
        let response = self.service.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().parse().unwrap());
        let _ = response.into_body().collect().await.unwrap();
        (status, retry_after)
    }

    fn advance(&self, by: Duration) {
        self.state.clock().advance(by).unwrap();
    }
}

#[tokio::test]
async fn a_client_that_waits_out_retry_after_has_no_early_retries() {
    let client = Scripted::new();
    let key = "sk-polite-0000000001";
    assert_eq!(client.send(key, "one", None).await.0, 200);
    assert_eq!(client.send(key, "two", None).await.0, 200);
    let (status, wait) = client.send(key, "three", None).await;
    assert_eq!(status, 429);
    client.advance(Duration::from_secs(wait.expect("a retry-after")));
    assert_eq!(client.send(key, "three", None).await.0, 200);
    let grade = client.grader.grade().total;
    assert_eq!(
        (grade.requests, grade.logical_requests, grade.retries),
        (4, 3, 1)
    );
    assert_eq!(
        (grade.early_retries, grade.gave_up, grade.succeeded),
        (0, 0, 3)
    );
    assert_eq!((grade.rate_limited, grade.max_attempts), (1, 2));
}

#[tokio::test]
async fn a_client_that_retries_at_once_is_early_every_time_and_gives_up() {
    let client = Scripted::new();
    let key = "sk-stormy-000000001";
    client.send(key, "one", None).await;
    client.send(key, "two", None).await;
    for _ in 0..4 {
        assert_eq!(client.send(key, "three", None).await.0, 429);
        client.advance(Duration::from_millis(100));
    }
    let grade = client.grader.grade().total;
    assert_eq!(
        (grade.requests, grade.logical_requests, grade.retries),
        (6, 3, 3)
    );
    assert_eq!(
        (grade.early_retries, grade.gave_up, grade.max_attempts),
        (3, 1, 4)
    );
    // The server's own records say the same when aggregated as a trace.
    let records = client.grader.attempt_records();
    assert_eq!(records.len(), 6);
    assert_eq!(records.iter().filter(|record| record.is_final()).count(), 3);
}

#[tokio::test]
async fn an_outer_wrapper_is_seen_through_its_logical_id_and_sdk_hints_are_only_hints() {
    let client = Scripted::new();
    let key = "sk-wrapped-00000001";
    client.send(key, "one", None).await;
    client.send(key, "two", None).await;
    // Each call of an outer wrapper sends a different body but the same logical id, and its
    // SDK restarts the retry count.
    let id = Some(("x-ratelab-logical-id", "call-7"));
    assert_eq!(client.send(key, "three (try 1)", id).await.0, 429);
    let hinted = Some(("x-stainless-retry-count", "1"));
    assert_eq!(client.send(key, "unrelated", hinted).await.0, 429);
    client.advance(Duration::from_secs(60));
    assert_eq!(client.send(key, "three (try 2)", id).await.0, 200);
    let grade = client.grader.grade().total;
    assert_eq!(
        (grade.requests, grade.logical_requests, grade.retries),
        (5, 4, 1)
    );
    assert_eq!(grade.sdk_retry_hints, 1);
    assert_eq!((grade.early_retries, grade.gave_up), (0, 1));
}

#[tokio::test]
async fn admin_and_model_list_calls_are_not_graded() {
    let client = Scripted::new();
    let request = Request::builder()
        .uri("/v1/models")
        .header("authorization", "Bearer sk-x")
        .body(Body::empty())
        .unwrap();
    let response = client.service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(client.grader.grade().total.requests, 0);
}
