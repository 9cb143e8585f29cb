//! Injected faults: scripts, windows, error kinds, mid-stream errors and hangs.

use std::time::Duration;

use ratelab_server::faults::FaultWindow;
use ratelab_server::{Fault, FaultConfig, FaultScript, ScriptStep, ServerConfig};
use serde_json::json;

use crate::support::{KEY, chat_body, manual_config, post, router, sse_events};

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
    state.faults().add_script(script(
        Some(KEY),
        Fault::RateLimited {
            retry_after_ms: Some(1000),
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
        state.faults().add_script(script(None, fault, 1));
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5))
            .await
            .expect_error(status, Some(code));
    }
}

#[tokio::test]
async fn an_outage_window_follows_the_server_clock() {
    let (state, app) = router(ServerConfig {
        faults: FaultConfig {
            windows: vec![FaultWindow {
                start_s: 30.0,
                end_s: 40.0,
                fault: Fault::Overloaded,
            }],
            ..FaultConfig::default()
        },
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
        .faults()
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
    state
        .faults()
        .add_script(script(None, Fault::Hang { ms: Some(5_000) }, 1));
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

#[tokio::test]
async fn seeded_rates_give_the_same_outcomes_on_every_run() {
    let config = ServerConfig {
        faults: FaultConfig {
            rates: ratelab_server::faults::FaultRates {
                server_error: 0.3,
                overloaded: 0.2,
                ..Default::default()
            },
            ..FaultConfig::default()
        },
        ..manual_config()
    };
    let run = |config: ServerConfig| async move {
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
    };
    let first = run(config.clone()).await;
    assert_eq!(first, run(config).await);
    assert!(
        first.contains(&500) && first.contains(&503) && first.contains(&200),
        "{first:?}"
    );
}
