//! The router: OpenAI's endpoints, `/metrics`, `/_admin`, and the layer that stamps every
//! response with OpenAI's common headers and counts it.

mod chat;
mod completions;
mod embeddings;
mod models;
mod responses;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Bytes, HttpBody};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{get, post};
use serde::Serialize;
use tower::Service;

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

/// The routes, each also the `endpoint` label its requests carry in `/metrics`.
const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";
const EMBEDDINGS: &str = "/v1/embeddings";
const RESPONSES: &str = "/v1/responses";
const MODELS: &str = "/v1/models";
const MODEL: &str = "/v1/models/{id}";
const METRICS: &str = "/metrics";
const ADMIN: &str = "/_admin";
/// The label of requests no route matches.
const UNMATCHED: &str = "unmatched";
/// Every label `endpoint` gives requests that `/metrics` counts (it does not count itself).
pub(crate) const ENDPOINTS: [&str; 8] = [
    CHAT_COMPLETIONS,
    COMPLETIONS,
    EMBEDDINGS,
    RESPONSES,
    MODELS,
    MODEL,
    ADMIN,
    UNMATCHED,
];

/// The whole server as one tower service: serve it with `axum::serve` (through
/// `axum::ServiceExt::into_make_service`), mount it with `Router::fallback_service`, or test it
/// with `oneshot`.
pub fn app(state: AppState) -> MockApi {
    let router = Router::new()
        .route(CHAT_COMPLETIONS, post(chat::chat_completions))
        .route(COMPLETIONS, post(completions::completions))
        .route(EMBEDDINGS, post(embeddings::embeddings))
        .route(RESPONSES, post(responses::responses))
        .route(MODELS, get(models::list_models))
        .route(MODEL, get(models::retrieve_model))
        .route(METRICS, get(metrics))
        .nest(ADMIN, crate::admin::router(state.clone()))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(state.clone());
    MockApi { router, state }
}

/// The router wrapped in the work every response shares: OpenAI's common headers, metrics and
/// the access log.
///
/// This runs outside the router rather than as a router layer: a layer is cloned and boxed
/// again for every request on every route, which cost the hot path about a dozen allocations.
#[derive(Debug, Clone)]
pub struct MockApi {
    router: Router,
    state: AppState,
}

impl<B> Service<axum::http::Request<B>> for MockApi
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = MockApiFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> MockApiFuture {
        let seen = Seen::new(&self.state, &request);
        MockApiFuture {
            routed: self.router.call(request),
            seen: Some(seen),
            state: self.state.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's future, stamped when it completes: a named type rather than a boxed
    /// `async` block, which cost an allocation and a copy of the state per request.
    pub struct MockApiFuture {
        #[pin]
        routed: RouteFuture<Infallible>,
        seen: Option<Seen>,
        state: AppState,
    }
}

impl Future for MockApiFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.routed.poll(context));
        Poll::Ready(Ok(match this.seen.take() {
            Some(seen) => seen.stamp(this.state, response),
            // Polled again after completion, which a future's caller must not do.
            None => response,
        }))
    }
}

/// What the service notes of a request before the router takes it.
pub struct Seen {
    started: std::time::Duration,
    request_id: String,
    endpoint: &'static str,
    method: Method,
}

impl Seen {
    fn new<B>(state: &AppState, request: &axum::http::Request<B>) -> Seen {
        let is_retry = request
            .headers()
            .get("x-stainless-retry-count")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u32>().ok())
            .is_some_and(|count| count > 0);
        if is_retry {
            state.metrics().record_retry();
        }
        Seen {
            started: state.clock().now(),
            request_id: state.next_request_id(),
            endpoint: endpoint(request.uri().path()),
            method: request.method().clone(),
        }
    }

    /// Adds `x-request-id`, `openai-version` and `openai-processing-ms`, records metrics, and
    /// logs the request with the caller's redacted key.
    fn stamp(self, state: &AppState, mut response: Response) -> Response {
        let elapsed = state.clock().now().saturating_sub(self.started);
        let headers = response.headers_mut();
        // The id string (exactly as long as its allocation) becomes the header value without a
        // copy; the log line reads it back from the headers.
        if let Ok(value) = HeaderValue::try_from(self.request_id) {
            headers.insert(REQUEST_ID, value);
        }
        headers.insert(
            OPENAI_VERSION_HEADER,
            HeaderValue::from_static(OPENAI_VERSION),
        );
        headers.insert(PROCESSING_MS, milliseconds_header(elapsed));
        let status = response.status().as_u16();
        let endpoint = self.endpoint;
        if endpoint != METRICS {
            state.metrics().record_request(endpoint, status, elapsed);
        }
        if let Some(Exhausted(kind)) = response.extensions().get::<Exhausted>() {
            state.metrics().record_rate_limited(kind);
        }
        // The macros below check the level too, but only after their arguments are prepared;
        // checking first keeps a quiet server (RUST_LOG=warn) from doing any logging work.
        if tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO) {
            let method = self.method;
            let request_id = response
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            match response.extensions().get::<Principal>() {
                Some(principal) => tracing::info!(
                    target: ACCESS_LOG,
                    request_id,
                    %method,
                    endpoint,
                    status,
                    organization = &*principal.organization,
                    key = principal.redacted_key(),
                    "served"
                ),
                None => {
                    tracing::info!(target: ACCESS_LOG, request_id, %method, endpoint, status, "served")
                }
            }
        }
        response
    }
}

/// A duration in whole milliseconds as a header value. Below 10 ms, the usual case without a
/// latency model, the value is a constant and costs no allocation.
fn milliseconds_header(duration: std::time::Duration) -> HeaderValue {
    const DIGITS: [HeaderValue; 10] = [
        HeaderValue::from_static("0"),
        HeaderValue::from_static("1"),
        HeaderValue::from_static("2"),
        HeaderValue::from_static("3"),
        HeaderValue::from_static("4"),
        HeaderValue::from_static("5"),
        HeaderValue::from_static("6"),
        HeaderValue::from_static("7"),
        HeaderValue::from_static("8"),
        HeaderValue::from_static("9"),
    ];
    let milliseconds = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    match usize::try_from(milliseconds) {
        Ok(digit @ 0..=9) => DIGITS[digit].clone(),
        _ => milliseconds.into(),
    }
}

/// The `tracing` target of the one-line-per-request access log; handlers attach the caller to
/// the response for it only when this target logs at INFO.
pub(crate) const ACCESS_LOG: &str = "ratelab_server::access";

/// The `endpoint` label of a path: its route pattern, `/_admin` for the whole admin API, or
/// `unmatched`.
fn endpoint(path: &str) -> &'static str {
    match path {
        CHAT_COMPLETIONS => CHAT_COMPLETIONS,
        COMPLETIONS => COMPLETIONS,
        EMBEDDINGS => EMBEDDINGS,
        RESPONSES => RESPONSES,
        MODELS => MODELS,
        METRICS => METRICS,
        _ if path
            .strip_prefix("/v1/models/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')) =>
        {
            MODEL
        }
        _ if path == ADMIN || path.starts_with("/_admin/") => ADMIN,
        _ => UNMATCHED,
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics().render();
    if let Some(grader) = state.grader() {
        text.push_str(&state.metrics().render_graded(&grader.live_key_counts()));
    }
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::UnknownRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_labelled_by_route_pattern() {
        for (path, label) in [
            ("/v1/chat/completions", "/v1/chat/completions"),
            ("/v1/completions", "/v1/completions"),
            ("/v1/embeddings", "/v1/embeddings"),
            ("/v1/responses", "/v1/responses"),
            ("/v1/models", "/v1/models"),
            ("/v1/models/gpt-4o", "/v1/models/{id}"),
            ("/metrics", "/metrics"),
            ("/_admin/clock/advance", "/_admin"),
            ("/v1/models/", "unmatched"),
            ("/v1/models/a/b", "unmatched"),
            ("/v1/chat/completions/", "unmatched"),
            ("/_adminx", "unmatched"),
        ] {
            assert_eq!(endpoint(path), label, "{path}");
        }
    }

    #[test]
    fn processing_times_print_as_whole_milliseconds() {
        for (micros, text) in [
            (0, "0"),
            (999, "0"),
            (9_999, "9"),
            (10_000, "10"),
            (1_234_567, "1234"),
        ] {
            let header = milliseconds_header(std::time::Duration::from_micros(micros));
            assert_eq!(header.to_str().unwrap(), text, "{micros} us");
        }
    }
}
