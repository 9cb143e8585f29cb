//! Helpers: build a router from a config and send it requests without a socket.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use model::{ClockKind, LatencyConfig, ServerConfig};
use ratelab_server::{AppState, MockApi, app};
use serde_json::Value;
use tower::{Service, ServiceExt};

pub const KEY: &str = "sk-test-key-0001";

/// A manual-clock config with no latency, so nothing in a test waits on real time, and no
/// request waits for the clock to move (the default latency is realistic, 200 ms to the first
/// token, and a manual clock holds every wait until it is advanced).
pub fn manual_config() -> ServerConfig {
    ServerConfig {
        clock: ClockKind::Manual,
        admin_token: Some("admin-secret".to_owned()),
        latency: LatencyConfig::instant(),
        ..ServerConfig::default()
    }
}

/// The default config with no latency, for tests on the real clock that are not about
/// latency: every answer at once.
pub fn instant_config() -> ServerConfig {
    ServerConfig {
        latency: LatencyConfig::instant(),
        ..ServerConfig::default()
    }
}

pub fn router(config: ServerConfig) -> (AppState, MockApi) {
    let state = AppState::new(config).expect("a valid test config");
    (state.clone(), app(state))
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    /// Asserts an OpenAI error envelope with this status and code; returns the error object.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: Option<&str>) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        let error = self.json()["error"].clone();
        assert_eq!(error["code"].as_str(), code, "error: {error}");
        assert!(error["message"].is_string(), "error: {error}");
        assert!(error["type"].is_string(), "error: {error}");
        assert!(error.get("param").is_some(), "error: {error}");
        error
    }
}

pub fn request(
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).unwrap()
}

pub async fn send(app: &MockApi, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn post(app: &MockApi, path: &str, body: Value) -> Reply {
    send(app, request(Method::POST, path, Some(KEY), Some(&body))).await
}

pub async fn get(app: &MockApi, path: &str) -> Reply {
    send(app, request(Method::GET, path, Some(KEY), None)).await
}

/// A gpt-4o chat completion of `prompt` capped at 5 tokens, with `key` (when given) and one
/// extra header: what the grading tests' scripted clients send.
pub fn scripted_chat(
    key: Option<&str>,
    prompt: &str,
    extra: Option<(&str, &str)>,
) -> Request<Body> {
    let body = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 5,
    });
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/v1/chat/completions")
        .header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    if let Some((name, value)) = extra {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// What a client saw of one call.
pub struct Sent {
    pub status: u16,
    /// Retry-After, in seconds.
    pub retry_after: Option<u64>,
    /// The reply's usage (prompt, completion); (0, 0) when it had none or broke off.
    pub usage: (u64, u64),
}

/// Sends `request` through `service` and reads the whole answer, which may break off.
pub async fn exchange<S>(service: &S, request: Request<Body>) -> Sent
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    let response = service.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    // An injected reset fails the body: the client sees no reply.
    let usage = match response.into_body().collect().await {
        Ok(collected) => {
            let reply: Value = serde_json::from_slice(&collected.to_bytes()).unwrap_or_default();
            (
                reply["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
                reply["usage"]["completion_tokens"].as_u64().unwrap_or(0),
            )
        }
        Err(_) => (0, 0),
    };
    Sent {
        status,
        retry_after,
        usage,
    }
}

pub fn chat_body(model: &str, max_tokens: u32) -> Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to ratelab."}],
        "max_tokens": max_tokens,
    })
}

/// Parses an SSE body into its `(event name, data)` pairs.
pub fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            (name, data)
        })
        .collect()
}
