//! Bad input gets OpenAI-shaped JSON errors: 400, 401, 404, 413, never a panic or HTML.

use axum::body::Body;
use axum::http::{Method, Request};
use model::{OrganizationConfig, ProjectConfig, ServerConfig};
use serde_json::json;

use crate::support::{KEY, chat_body, manual_config, post, request, router, send};

#[tokio::test]
async fn a_missing_key_is_a_401() {
    let (_, app) = router(manual_config());
    let body = chat_body("gpt-4o", 5);
    let reply = send(
        &app,
        request(Method::POST, "/v1/chat/completions", None, Some(&body)),
    )
    .await;
    let error = reply.expect_error(401, Some("invalid_api_key"));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("didn't provide an API key")
    );
}

fn config_with_keys() -> ServerConfig {
    ServerConfig {
        organizations: vec![OrganizationConfig {
            id: "org-acme".to_owned(),
            tier: None,
            budget_usd: None,
            limits: Default::default(),
            projects: vec![ProjectConfig {
                id: "proj_web".to_owned(),
                keys: vec![KEY.to_owned()],
                limits: Default::default(),
            }],
        }],
        ..manual_config()
    }
}

#[tokio::test]
async fn an_unknown_key_is_a_401_that_shows_only_its_ends() {
    let (_, app) = router(config_with_keys());
    let body = chat_body("gpt-4o", 5);
    let reply = send(
        &app,
        request(
            Method::POST,
            "/v1/chat/completions",
            Some("sk-wrong-secret-7777"),
            Some(&body),
        ),
    )
    .await;
    let error = reply.expect_error(401, Some("invalid_api_key"));
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("sk-*************7777"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn a_declared_key_acts_for_its_organization() {
    let (_, app) = router(config_with_keys());
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 5)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("openai-organization"), Some("org-acme"));
}

#[tokio::test]
async fn an_unknown_model_is_a_404() {
    let (_, app) = router(manual_config());
    let error = post(&app, "/v1/chat/completions", chat_body("gpt-9-ultra", 5))
        .await
        .expect_error(404, Some("model_not_found"));
    assert_eq!(
        error["message"],
        "The model `gpt-9-ultra` does not exist or you do not have access to it."
    );
}

#[tokio::test]
async fn malformed_json_and_missing_fields_are_400s_naming_the_field() {
    let (_, app) = router(manual_config());
    let raw = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("authorization", format!("Bearer {KEY}"))
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let error = send(&app, raw).await.expect_error(400, None);
    assert_eq!(error["type"], "invalid_request_error");

    let error = post(&app, "/v1/chat/completions", json!({"model": "gpt-4o"}))
        .await
        .expect_error(400, Some("missing_required_parameter"));
    assert_eq!(error["param"], "messages");

    let error = post(
        &app,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "n": "two"}),
    )
    .await
    .expect_error(400, Some("invalid_type"));
    assert_eq!(error["param"], "n");

    let error = post(&app, "/v1/embeddings", json!({"input": "x"}))
        .await
        .expect_error(400, Some("missing_required_parameter"));
    assert_eq!(error["param"], "model");
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let (_, app) = router(ServerConfig {
        max_body_bytes: 1024,
        ..manual_config()
    });
    let huge =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let error = post(&app, "/v1/chat/completions", huge)
        .await
        .expect_error(413, Some("request_too_large"));
    assert!(error["message"].as_str().unwrap().contains("1024 bytes"));
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_a_413_before_the_body_is_read() {
    let (_, app) = router(ServerConfig {
        max_body_bytes: 1024,
        ..manual_config()
    });
    // The body itself is small: the declared length alone decides.
    let request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("content-length", "5000")
        .body(Body::from("{}"))
        .unwrap();
    send(&app, request)
        .await
        .expect_error(413, Some("request_too_large"));
}

/// A body sent in `chunks` frames with no declared length, as a chunked upload arrives.
fn chunked_chat_request(body: &str, chunks: usize) -> Request<Body> {
    let bytes = body.as_bytes();
    let size = bytes.len().div_ceil(chunks);
    let frames: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(size).map(|chunk| Ok(chunk.to_vec())).collect();
    Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(frames)))
        .unwrap()
}

#[tokio::test]
async fn a_body_in_several_frames_is_read_whole_and_held_to_the_limit() {
    let (_, app) = router(ServerConfig {
        max_body_bytes: 1024,
        ..manual_config()
    });
    let body = chat_body("gpt-4o", 5).to_string();
    let reply = send(&app, chunked_chat_request(&body, 4)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["usage"]["completion_tokens"], 5);

    let huge =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    send(&app, chunked_chat_request(&huge.to_string(), 8))
        .await
        .expect_error(413, Some("request_too_large"));
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let (_, app) = router(manual_config());
    let error = post(&app, "/v1/nope", json!({}))
        .await
        .expect_error(404, None);
    assert_eq!(error["message"], "Invalid URL (POST /v1/nope)");
    assert_eq!(error["type"], "invalid_request_error");
}

/// OpenAI answers a known path with the wrong method as it answers an unknown path: 404
/// `invalid_request_error` "Invalid URL (METHOD /path)", not 405. Reports of exactly this body
/// come from clients whose POST was turned into a GET (a redirect, a proxy forwarding GET).
#[tokio::test]
async fn a_wrong_method_is_a_404_invalid_url_like_openai() {
    let (_, app) = router(manual_config());
    for (method, path) in [
        (Method::GET, "/v1/chat/completions"),
        (Method::GET, "/v1/embeddings"),
        (Method::DELETE, "/v1/completions"),
        (Method::POST, "/v1/models"),
    ] {
        let reply = send(&app, request(method.clone(), path, Some(KEY), None)).await;
        let error = reply.expect_error(404, None);
        assert_eq!(error["message"], format!("Invalid URL ({method} {path})"));
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"], serde_json::Value::Null);
    }
}
