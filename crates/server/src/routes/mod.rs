//! The router: OpenAI's endpoints, `/metrics`, `/_admin`, and the layer that stamps every
//! response with OpenAI's common headers and counts it.

mod chat;
mod completions;
mod embeddings;
mod models;
mod responses;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::auth::Principal;
use crate::error::{ApiError, Exhausted};
use crate::sse::StreamEvent;
use crate::state::AppState;

/// The API version OpenAI reports in `openai-version`.
const OPENAI_VERSION: &str = "2020-10-01";
/// The common headers' names as constants, so they are not parsed per request.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const OPENAI_VERSION_HEADER: HeaderName = HeaderName::from_static("openai-version");
const PROCESSING_MS: HeaderName = HeaderName::from_static("openai-processing-ms");
/// OpenAI caps `n` at 128.
const MAX_CHOICES: u32 = 128;

/// The whole server as a router; serve it with `axum::serve` or test it with `oneshot`.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config().max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/responses", post(responses::responses))
        .route("/v1/models", get(models::list_models))
        .route("/v1/models/{id}", get(models::retrieve_model))
        .route("/metrics", get(metrics))
        .nest("/_admin", crate::admin::router(state.clone()))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            stamp_and_count,
        ))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics().render(),
    )
        .into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::UnknownRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// Adds `x-request-id`, `openai-version` and `openai-processing-ms`, logs the request with the
/// caller's redacted key, and records metrics.
async fn stamp_and_count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = state.clock().now();
    let request_id = state.next_request_id();
    // `MatchedPath` is a shared string: cloning it copies a pointer, not the path.
    let matched_path = request.extensions().get::<MatchedPath>().cloned();
    let endpoint = matched_path
        .as_ref()
        .map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let is_retry = request
        .headers()
        .get("x-stainless-retry-count")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u32>().ok())
        .is_some_and(|count| count > 0);
    if is_retry {
        state.metrics().record_retry();
    }

    let mut response = next.run(request).await;

    let elapsed = state.clock().now().saturating_sub(started);
    let headers = response.headers_mut();
    // The id string (exactly as long as its allocation) becomes the header value without a
    // copy; the log line reads it back from the headers.
    if let Ok(value) = HeaderValue::try_from(request_id) {
        headers.insert(REQUEST_ID, value);
    }
    headers.insert(
        OPENAI_VERSION_HEADER,
        HeaderValue::from_static(OPENAI_VERSION),
    );
    headers.insert(PROCESSING_MS, (elapsed.as_millis() as u64).into());
    let status = response.status().as_u16();
    if endpoint != "/metrics" {
        state.metrics().record_request(endpoint, status, elapsed);
    }
    if let Some(Exhausted(kind)) = response.extensions().get::<Exhausted>() {
        state.metrics().record_rate_limited(kind);
    }
    // The macros below check the level too, but only after their arguments are prepared;
    // checking first keeps a quiet server (RUST_LOG=warn) from doing any logging work.
    if tracing::enabled!(tracing::Level::INFO) {
        let request_id = response
            .headers()
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        match response.extensions().get::<Principal>() {
            Some(principal) => tracing::info!(
                request_id,
                %method,
                endpoint,
                status,
                organization = &*principal.organization,
                key = principal.redacted_key(),
                "served"
            ),
            None => tracing::info!(request_id, %method, endpoint, status, "served"),
        }
    }
    response
}

/// Validates `n`.
fn choice_count(n: Option<u32>) -> Result<u32, ApiError> {
    match n.unwrap_or(1) {
        n @ 1..=MAX_CHOICES => Ok(n),
        n => Err(ApiError::InvalidParameter {
            param: "n".to_owned(),
            message: format!("{n} is not between 1 and {MAX_CHOICES} - 'n'"),
            code: "invalid_value",
        }),
    }
}

/// Serializes a wire value; these types cannot fail to serialize.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|error| {
        tracing::error!(%error, "a wire type failed to serialize");
        String::from("{}")
    })
}

/// The `data: {"error": ...}` event a chat or completions stream breaks with.
fn in_band_server_error() -> StreamEvent {
    let envelope = crate::wire::error::ErrorEnvelope {
        error: ApiError::ServerError.error_object(),
    };
    StreamEvent::data(to_json(&envelope), false)
}
