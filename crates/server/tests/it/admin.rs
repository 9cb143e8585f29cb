//! The admin API: token checks, clock control, fault changes, reset, and `/metrics`.

use std::time::Duration;

use axum::http::Method;
use model::{
    ClockKind, Fault, FaultScript, HumanDuration, ScriptStep, ServerConfig, TimelineEntry,
};
use serde_json::{Value, json};

use crate::support::{chat_body, manual_config, post, request, router, send};

async fn admin(
    app: &ratelab_server::MockApi,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> crate::support::Reply {
    send(app, request(method, path, token, body.as_ref())).await
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_token_and_guarded_with_one() {
    let (_, app) = router(ServerConfig {
        admin_token: None,
        ..manual_config()
    });
    admin(&app, Method::GET, "/_admin/state", Some("anything"), None)
        .await
        .expect_error(404, Some("admin_disabled"));

    let (_, app) = router(manual_config());
    admin(&app, Method::GET, "/_admin/state", None, None)
        .await
        .expect_error(401, Some("invalid_admin_token"));
    admin(&app, Method::GET, "/_admin/state", Some("wrong"), None)
        .await
        .expect_error(401, Some("invalid_admin_token"));
    let state = admin(
        &app,
        Method::GET,
        "/_admin/state",
        Some("admin-secret"),
        None,
    )
    .await;
    assert_eq!(state.status, 200, "{}", state.text());
    assert_eq!(state.json()["clock"]["kind"], "manual");
}

#[tokio::test]
async fn the_manual_clock_advances_through_the_api_and_the_real_one_refuses() {
    let (state, app) = router(manual_config());
    let reply = admin(
        &app,
        Method::POST,
        "/_admin/clock/advance",
        Some("admin-secret"),
        Some(json!({"ms": 1500})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["now_ms"], 1500);
    assert_eq!(state.clock().now().as_millis(), 1500);

    let (_, app) = router(ServerConfig {
        clock: ClockKind::Real,
        ..manual_config()
    });
    let error = admin(
        &app,
        Method::POST,
        "/_admin/clock/advance",
        Some("admin-secret"),
        Some(json!({"ms": 1})),
    )
    .await
    .expect_error(409, None);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("--clock manual")
    );
}

#[tokio::test]
async fn an_advance_past_the_clock_range_is_a_400_and_leaves_the_clock_alone() {
    let (state, app) = router(manual_config());
    let advance = |ms: u64| {
        admin(
            &app,
            Method::POST,
            "/_admin/clock/advance",
            Some("admin-secret"),
            Some(json!({ "ms": ms })),
        )
    };
    // The first u64::MAX ms is past the range at once; repeating it once overflowed
    // `Duration` and dropped the connection.
    for _ in 0..3 {
        let error = advance(u64::MAX).await.expect_error(400, None);
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with("cannot advance the clock by 18446744073709551615 ms"),
            "{message}"
        );
        assert!(
            message.contains("advance by at most 18446744073709 ms"),
            "{message}"
        );
    }
    assert_eq!(state.clock().now(), std::time::Duration::ZERO);
    // Up to the end of the range is fine, one millisecond more is not, and the clock still
    // serves requests there.
    let reply = advance(18_446_744_073_709).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    advance(1).await.expect_error(400, None);
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn faults_are_replaced_scripted_and_reset_through_the_api() {
    let (_, app) = router(manual_config());
    let token = Some("admin-secret");
    let reply = admin(
        &app,
        Method::POST,
        "/_admin/faults/scripts",
        token,
        Some(json!({"steps": [{"fault": {"kind": "server_error"}, "count": 1}]})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 2))
        .await
        .expect_error(500, Some("server_error"));
    assert_eq!(
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 2))
            .await
            .status,
        200
    );

    let reply = admin(
        &app,
        Method::PUT,
        "/_admin/faults",
        token,
        Some(json!({"rates": {"overloaded": 1.0}})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 2))
            .await
            .status,
        503
    );
    let faults = admin(&app, Method::GET, "/_admin/faults", token, None)
        .await
        .json();
    assert_eq!(faults["rates"]["overloaded"], 1.0);

    admin(
        &app,
        Method::PUT,
        "/_admin/faults",
        token,
        Some(json!({"rates": {"overloaded": 2.0}})),
    )
    .await
    .expect_error(400, None);
    admin(
        &app,
        Method::POST,
        "/_admin/faults/scripts",
        token,
        Some(json!({"steps": []})),
    )
    .await
    .expect_error(400, None);

    assert_eq!(
        admin(&app, Method::POST, "/_admin/reset", token, None)
            .await
            .status,
        200
    );
    assert_eq!(
        post(&app, "/v1/chat/completions", chat_body("gpt-4o", 2))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_rate_limits() {
    let (state, app) = router(manual_config());
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 3)).await;
    state.model().faults_mut().add_script(FaultScript {
        key: None,
        steps: vec![ScriptStep {
            fault: Some(Fault::SlowDown),
            count: 1,
        }],
    });
    post(&app, "/v1/chat/completions", chat_body("gpt-4o", 3)).await;
    let mut retried = request(
        Method::POST,
        "/v1/chat/completions",
        Some(crate::support::KEY),
        Some(&chat_body("gpt-4o", 3)),
    );
    retried
        .headers_mut()
        .insert("x-stainless-retry-count", "1".parse().unwrap());
    send(&app, retried).await;
    let reply = send(&app, request(Method::GET, "/metrics", None, None)).await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    for expected in [
        "ratelab_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2",
        "ratelab_requests_total{endpoint=\"/v1/chat/completions\",status=\"429\"} 1",
        "ratelab_rate_limited_total{kind=\"slow_down\"} 1",
        "ratelab_tokens_total{direction=\"completion\"} 6",
        "ratelab_retries_total 1",
        "ratelab_request_duration_seconds_count 3",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[tokio::test]
async fn the_state_shows_the_timeline_and_a_fault_plan_takes_no_windows() {
    let config = ServerConfig {
        timeline: vec![TimelineEntry {
            at: HumanDuration(Duration::from_secs(30)),
            until: Some(HumanDuration(Duration::from_secs(40))),
            tier: None,
            limits: None,
            fault: Some(Fault::Overloaded),
            probability: None,
            latency: None,
        }],
        ..manual_config()
    };
    let (_, app) = router(config);
    let token = Some("admin-secret");
    let state = admin(&app, Method::GET, "/_admin/state", token, None)
        .await
        .json();
    assert_eq!(
        state["timeline"],
        json!([{
            "at": "30s", "until": "40s", "fault": {"kind": "overloaded"},
            "tier": null, "limits": null, "probability": null, "latency": null,
        }]),
        "{state}"
    );
    // Windows of faults are timeline entries now, not part of the plan.
    let error = admin(
        &app,
        Method::PUT,
        "/_admin/faults",
        token,
        Some(json!({"windows": [{"start_s": 10, "end_s": 20, "fault": {"kind": "overloaded"}}]})),
    )
    .await
    .expect_error(400, Some("invalid_type"));
    assert_eq!(error["param"], "windows");
}

#[tokio::test]
async fn the_report_route_answers_what_the_report_source_builds_at_the_servers_time() {
    let (state, app) = router(manual_config());
    // Nobody grades this server: the route says how to get a report.
    let error = admin(
        &app,
        Method::GET,
        "/_admin/report",
        Some("admin-secret"),
        None,
    )
    .await
    .expect_error(409, None);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("ratelab serve --scenario FILE"),
        "{error}"
    );

    assert!(state.set_report_source(|now| json!({ "at_ms": now.as_millis() as u64 })));
    // Only the first source takes.
    assert!(!state.set_report_source(|_| json!({ "second": true })));
    state.clock().advance(Duration::from_millis(2500)).unwrap();
    let reply = admin(
        &app,
        Method::GET,
        "/_admin/report",
        Some("admin-secret"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({ "at_ms": 2500 }));
    admin(&app, Method::GET, "/_admin/report", None, None)
        .await
        .expect_error(401, Some("invalid_admin_token"));
}
