//! Injected faults: scripts, the timeline's windows, error kinds, mid-stream errors, hangs, and
//! the reject latency refusals are answered after.

use std::time::Duration;

use model::{
    Fault, FaultConfig, FaultRates, FaultScript, HumanDuration, LatencyConfig, ScriptStep,
    ServerConfig, TimelineEntry,
};
use serde_json::json;

use crate::support::{KEY, chat_body, manual_config, post, router, sse_events};

/// A timeline entry injecting `fault` from `at` to `until` seconds of server time.
fn window(at: u64, until: u64, fault: Fault, probability: Option<f64>) -> TimelineEntry {
    TimelineEntry {
        at: HumanDuration(Duration::from_secs(at)),
        until: Some(HumanDuration(Duration::from_secs(until))),
        tier: None,
        limits: None,
        fault: Some(fault),
        probability,
        latency: None,
    }
}

fn script(key: Option<&str>, fault: Fault, count: u32) -> FaultScript {
    FaultScript {
        key: key.map(str::to_owned),
        steps: vec![ScriptStep {
            fault: Some(fault),
            count,
        }],
    }
}

#[tokio::test]
async fn a_scripted_rate_limit_hits_the_next_requests_then_they_succeed() {
    let (state, app) = router(manual_config());
    state.model().faults_mut().add_script(script(
        Some(KEY),
        Fault::RateLimited {
            retry_after: Some(HumanDuration(Duration::from_secs(1))),
        },
        2,
    ));
    for _ in 0..2 {
        let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5)).await;
        reply.expect_error(429, Some("rate_limit_exceeded"));
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(reply.header("retry-after-ms").is_none(), "off by default");
        assert_eq!(reply.header("openai-organization"), Some("org-ratelab"));
    }
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn each_error_fault_has_openais_status_and_code() {
    let (state, app) = router(manual_config());
    for (fault, status, code) in [
        (Fault::ServerError, 500, "server_error"),
        (Fault::Overloaded, 503, "server_is_overloaded"),
        (Fault::SlowDown, 429, "slow_down"),
        (Fault::InsufficientQuota, 429, "insufficient_quota"),
        (Fault::StreamError, 500, "server_error"),
    ] {
        state
            .model()
            .faults_mut()
            .add_script(script(None, fault, 1));
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5))
            .await
            .expect_error(status, Some(code));
    }
}

#[tokio::test]
async fn an_outage_window_follows_the_server_clock() {
    let (state, app) = router(ServerConfig {
        timeline: vec![window(30, 40, Fault::Overloaded, None)],
        ..manual_config()
    });
    let status = || async {
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5))
            .await
            .status
    };
    assert_eq!(status().await, 200);
    state.clock().advance(Duration::from_secs(30)).unwrap();
    assert_eq!(status().await, 503);
    state.clock().advance(Duration::from_secs(10)).unwrap();
    assert_eq!(status().await, 200);
}

#[tokio::test]
async fn a_stream_error_arrives_in_band_after_the_stream_opened() {
    let (state, app) = router(manual_config());
    state
        .model()
        .faults_mut()
        .add_script(script(None, Fault::StreamError, 1));
    let mut body = chat_body("gpt-4o", 20);
    body["stream"] = json!(true);
    let reply = post(&app, "/v1/chat/completions", body).await;
    assert_eq!(reply.status, 200);
    let events = sse_events(&reply.text());
    let (_, last) = events.last().unwrap();
    let error: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(error["error"]["code"], "server_error");
    assert!(events.iter().all(|(_, data)| data != "[DONE]"));
    assert!(events.len() > 2, "some content came first");
}

#[tokio::test]
async fn a_hang_lasts_until_the_manual_clock_passes_it() {
    let (state, app) = router(manual_config());
    let hang = Fault::Hang {
        duration: Some(HumanDuration(Duration::from_secs(5))),
    };
    state.model().faults_mut().add_script(script(None, hang, 1));
    let pending =
        tokio::spawn(
            async move { post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5)).await },
        );
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(!pending.is_finished());
    state.clock().advance(Duration::from_secs(5)).unwrap();
    pending
        .await
        .unwrap()
        .expect_error(503, Some("server_is_overloaded"));
}

/// The statuses of 40 chat requests to a fresh server with `config`.
async fn forty_statuses(config: ServerConfig) -> Vec<u16> {
    let (_, app) = router(config);
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(
            post(&app, "/v1/chat/completions", chat_body("gpt-4o", 2))
                .await
                .status
                .as_u16(),
        );
    }
    statuses
}

#[tokio::test]
async fn seeded_rates_give_the_same_outcomes_on_every_run() {
    let config = ServerConfig {
        faults: FaultConfig {
            rates: FaultRates {
                server_error: 0.3,
                overloaded: 0.2,
                ..Default::default()
            },
            ..FaultConfig::default()
        },
        ..manual_config()
    };
    let first = forty_statuses(config.clone()).await;
    assert_eq!(first, forty_statuses(config).await);
    assert!(
        first.contains(&500) && first.contains(&503) && first.contains(&200),
        "{first:?}"
    );
}

#[tokio::test]
async fn a_window_with_a_probability_fails_its_share_alike_on_every_run() {
    let config = ServerConfig {
        timeline: vec![window(0, 60, Fault::ServerError, Some(0.5))],
        ..manual_config()
    };
    let first = forty_statuses(config.clone()).await;
    assert_eq!(
        first,
        forty_statuses(config).await,
        "the same seed draws the same requests"
    );
    let failed = first.iter().filter(|status| **status == 500).count();
    assert!(
        (8..=32).contains(&failed),
        "{failed} of 40 at 0.5: {first:?}"
    );
    assert!(first.iter().all(|status| [200, 500].contains(status)));
}

/// Refusals (an injected error, a 429 of a limit) take `latency.reject` of server time, as
/// the simulator answers them; admitted requests follow the rest of the latency, here none.
#[tokio::test]
async fn refusals_answer_after_the_reject_latency_of_server_time() {
    let (state, app) = router(ServerConfig {
        latency: LatencyConfig {
            reject: HumanDuration(Duration::from_millis(300)),
            ..LatencyConfig::instant()
        },
        ..manual_config()
    });
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 2)).await;
    assert_eq!(reply.status, 200, "an admitted request does not wait");
    state
        .model()
        .faults_mut()
        .add_script(script(None, Fault::ServerError, 1));
    let pending = {
        let app = app.clone();
        tokio::spawn(
            async move { post(&app, "/v1/chat/completions", chat_body("gpt-4o", 2)).await },
        )
    };
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(
        !pending.is_finished(),
        "the 500 waits 300 ms of server time"
    );
    state.clock().advance(Duration::from_millis(299)).unwrap();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(!pending.is_finished(), "299 ms are not enough");
    state.clock().advance(Duration::from_millis(1)).unwrap();
    pending
        .await
        .unwrap()
        .expect_error(500, Some("server_error"));
    // A request the model does not know is a request error: answered at once.
    post(&app, "/v1/chat/completions", chat_body("gpt-nope", 2))
        .await
        .expect_error(404, Some("model_not_found"));
}
