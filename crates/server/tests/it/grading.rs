//! Grading through the real request pipeline: scripted clients on the manual clock, through
//! `oneshot`, with known answers for logical requests, early retries, give-ups and the tokens
//! the limiter charged and wasted.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use futures_util::FutureExt;
use model::{
    ClockKind, Fault, FaultScript, HumanDuration, LatencyConfig, ScriptStep, ServerConfig,
};
use ratelab_server::{AppState, GradedApi, Grader};
use serde_json::json;
use tower::ServiceExt;

use crate::support::{Sent, exchange, scripted_chat};

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
        Scripted::with_config(two_rpm_config())
    }

    fn with_config(config: ServerConfig) -> Scripted {
        let state = AppState::new(config).unwrap();
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
        let sent = self.exchange(key, prompt, extra).await;
        (sent.status, sent.retry_after)
    }

    /// Sends prompt `prompt` with `key` and reads the whole answer, which may break off.
    async fn exchange(&self, key: &str, prompt: &str, extra: Option<(&str, &str)>) -> Sent {
        exchange(&self.service, scripted_chat(Some(key), prompt, extra)).await
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

/// Every attempt of `client` aggregated as `ratelab test` aggregates them.
fn aggregated(grader: &Grader) -> results::RunResult {
    let mut metrics = results::RunMetrics::new(vec!["client".into()], 1_000_000_000);
    for record in grader.attempt_records() {
        if record.attempt == 0 {
            metrics.record_arrival(record.client, record.arrived_ns);
        }
        metrics.record_send(record.sent_ns, record.attempt);
        metrics.record_attempt(&record);
    }
    metrics.finish("tier-1".into(), "client".into())
}

#[tokio::test]
async fn tokens_charged_and_wasted_are_what_the_limiter_charged() {
    let client = Scripted::new();
    let key = "sk-tokens-000000001";
    // Every admitted attempt is charged max(5 max_tokens, 1 token estimated from 3
    // characters) = 5 tokens, by the default guide rule.
    let one = client.exchange(key, "one", None).await;
    assert_eq!(one.status, 200);
    // Admitted, then the connection drops: the head said 200, the body broke off.
    client.state.model().faults_mut().add_script(FaultScript {
        key: Some(key.to_owned()),
        steps: vec![ScriptStep {
            fault: Some(Fault::ConnectionReset),
            count: 1,
        }],
    });
    let reset = client.exchange(key, "two", None).await;
    assert_eq!((reset.status, reset.usage), (200, (0, 0)));
    // Its retry finds both requests of the minute spent: a 429 is charged no tokens.
    let limited = client.exchange(key, "two", None).await;
    assert_eq!(limited.status, 429);
    client.advance(Duration::from_secs(limited.retry_after.unwrap()));
    let two = client.exchange(key, "two", None).await;
    assert_eq!(two.status, 200);
    let grade = client.grader.grade().total;
    assert_eq!((grade.tokens_charged, grade.tokens_wasted), (15, 5));
    // The reset was no success, so the two later attempts are its retries.
    assert_eq!(
        (grade.logical_requests, grade.retries, grade.succeeded),
        (2, 2, 2)
    );
    // The report's tokens are the replies' usage, no longer 0.
    let result = aggregated(&client.grader);
    assert_eq!(
        (result.totals.prompt_tokens, result.totals.completion_tokens),
        (one.usage.0 + two.usage.0, one.usage.1 + two.usage.1)
    );
    assert!(result.totals.prompt_tokens > 0 && result.totals.completion_tokens > 0);
    // Prompt plus max_tokens of the three attempts that reached the model (the reset is the
    // trace's timeout, as in the simulator), the 429 not.
    assert_eq!(result.totals.timeouts, 1);
    let admitted: u64 = result.bins.iter().map(|bin| bin.admitted_tokens).sum();
    assert_eq!(
        admitted,
        one.usage.0 + 5 + two.usage.0 + 5 + two.usage.0 + 5
    );
}

#[tokio::test]
async fn an_attempt_the_client_leaves_wastes_its_charge_and_its_retry_joins_it() {
    // The first token after 1 s of server time, which the manual clock only gives when told.
    let client = Scripted::with_config(ServerConfig {
        latency: LatencyConfig {
            ttft: HumanDuration(Duration::from_secs(1)),
            ..LatencyConfig::instant()
        },
        ..two_rpm_config()
    });
    let key = "sk-leaver-000000001";
    let mut left = Box::pin(
        client
            .service
            .clone()
            .oneshot(scripted_chat(Some(key), "slow", None)),
    );
    assert!((&mut left).now_or_never().is_none(), "admitted, waiting");
    // The client gives up: the call is dropped before its answer.
    drop(left);
    let mut retry = Box::pin(client.service.clone().oneshot(scripted_chat(
        Some(key),
        "slow",
        None,
    )));
    assert!((&mut retry).now_or_never().is_none(), "admitted, waiting");
    client.advance(Duration::from_secs(1));
    assert_eq!(retry.await.unwrap().status(), 200);
    let grade = client.grader.grade().total;
    assert_eq!(
        (grade.requests, grade.logical_requests, grade.retries),
        (2, 1, 1)
    );
    assert_eq!((grade.tokens_charged, grade.tokens_wasted), (10, 5));
    assert_eq!((grade.succeeded, grade.gave_up), (1, 0));
    let result = aggregated(&client.grader);
    assert_eq!((result.totals.timeouts, result.totals.succeeded), (1, 1));
}

/// Polls `done` until it holds, for at most about ten seconds of real time: what is awaited
/// is the server's own reaction, which no clock of ours decides.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if done() {
            return true;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}

#[tokio::test]
async fn a_client_that_hangs_up_while_served_is_graded_as_abandoned() {
    let config = ServerConfig {
        latency: LatencyConfig {
            ttft: HumanDuration(Duration::from_secs(1)),
            ..LatencyConfig::instant()
        },
        ..two_rpm_config()
    };
    let grader = Grader::new();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = ratelab_server::MockServer::bind_graded(config, address, Some(grader.clone()))
        .await
        .unwrap();
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}], "max_tokens": 5}).to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer sk-hangup-00000001\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut socket, format!("{head}{body}").as_bytes())
        .await
        .unwrap();
    // Its tokens are booked once it is admitted; then it waits for the manual clock.
    let admitted = eventually(|| {
        !server
            .state()
            .metrics()
            .render()
            .contains("ratelab_tokens_total{direction=\"prompt\"} 0")
    })
    .await;
    assert!(admitted, "the request was never admitted");
    drop(socket);
    let abandoned = eventually(|| grader.grade().total.tokens_wasted == 5).await;
    let grade = grader.grade().total;
    assert!(abandoned, "the attempt was not graded abandoned: {grade:?}");
    assert_eq!((grade.requests, grade.tokens_charged), (1, 5));
    let records = grader.attempt_records();
    assert_eq!(records[0].outcome, results::AttemptOutcome::Timeout);
    server.shutdown().await.unwrap();
}

/// A 429 is recorded under the limit that refused it, as the simulator records it, so a real
/// client's report breaks rejections down as its simulated model's does.
#[tokio::test]
async fn a_rejection_is_recorded_under_the_limit_that_refused_it() {
    // 100 requests but 12 tokens a minute: two requests charged 5 tokens each fit, the third
    // is refused by the TPM.
    let catalog: toml::Table =
        toml::from_str("[models.gpt-4o.tiers]\ntier-1 = { rpm = 100, tpm = 12 }\n").unwrap();
    let client = Scripted::with_config(ServerConfig {
        catalog: Some(catalog),
        ..two_rpm_config()
    });
    let key = "sk-tokens-000000002";
    assert_eq!(client.send(key, "one", None).await.0, 200);
    assert_eq!(client.send(key, "two", None).await.0, 200);
    assert_eq!(client.send(key, "three", None).await.0, 429);
    // And an RPM refusal on the default config, for contrast.
    let rpm = Scripted::new();
    for prompt in ["one", "two", "three"] {
        rpm.send(key, prompt, None).await;
    }
    let by_limit = |grader: &Grader| aggregated(grader).rejections;
    assert_eq!(
        by_limit(&client.grader).into_iter().collect::<Vec<_>>(),
        [("tpm".to_owned(), 1)]
    );
    assert_eq!(
        by_limit(&rpm.grader).into_iter().collect::<Vec<_>>(),
        [("rpm".to_owned(), 1)]
    );
}
