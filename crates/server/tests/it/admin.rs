//! The admin API: token checks, clock control, fault changes, reset, and `/metrics`.

use axum::http::Method;
use ratelab_server::{ClockKind, ServerConfig};
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
