//! The steps every model request shares: the per-request checks, the server model's decision
//! (fault, limits, latency draw) under one lock, the refusals' errors and waits, and the
//! headers and latency of a served response.

use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use model::{Caller, Cost, LateFault, LatencyPlan, Refusal, Reply};
use quota::{LimitStatus, ModelKind};

use crate::auth::Principal;
use crate::error::{ApiError, ContextOverflow};
use crate::extract::JsonBody;
use crate::sse::{self, StreamBreak, StreamEvent};
use crate::state::{AppState, ModelState};
use crate::wire::WriteJson;

/// A request the server model admitted, with what the rest of its life looks like.
#[derive(Debug)]
pub struct Admitted {
    /// Every charged limit's status at admission, which the `x-ratelimit-*` headers report
    /// (empty when the header policy sends none on successes).
    pub statuses: Vec<LimitStatus>,
    /// Server time at admission: latency deadlines count from here, so a slow reader of a
    /// stream does not stretch the schedule.
    pub admitted_at: Duration,
    pub latency: LatencyPlan,
    /// A fault that strikes after admission: a connection reset or a mid-stream error.
    pub late_fault: Option<LateFault>,
}

/// The endpoint a request came in on: OpenAI words its per-request 400s differently on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Responses,
}

/// What a request asks of its model, for [`check_model_request`].
#[derive(Debug, Clone, Copy)]
pub struct ModelRequest<'a> {
    pub endpoint: Endpoint,
    pub model: &'a str,
    /// The prompt's tokens; for legacy completions with several prompts, the longest one's.
    pub prompt_tokens: u64,
    /// The output cap per choice and the parameter that set it (`max_tokens`, ...).
    pub output_cap: Option<(&'static str, u64)>,
}

/// Refuses what OpenAI refuses whatever the limits say: an unknown model (or a pool named as
/// one), a chat request to an embedding model, an output cap above the model's, a request
/// longer than its context window. Runs before admission, so a refused request charges no
/// limit: OpenAI does not say whether these count, and a request that can never be served is
/// not traffic the limiter should see (docs/model-limits.md).
pub fn check_model_request(state: &AppState, request: ModelRequest<'_>) -> Result<(), ApiError> {
    let Some(limits) = state.model().request_limits(request.model) else {
        return Err(ApiError::ModelNotFound {
            model: request.model.to_owned(),
        });
    };
    if request.endpoint == Endpoint::ChatCompletions && limits.kind == ModelKind::Embedding {
        return Err(ApiError::NotAChatModel);
    }
    if let (Some((param, requested)), Some(limit)) = (request.output_cap, limits.max_output_tokens)
        && requested > limit
    {
        return Err(ApiError::OutputCapTooLarge {
            param,
            requested,
            limit,
        });
    }
    let Some(window) = limits.context_window else {
        return Ok(());
    };
    let prompt = request.prompt_tokens;
    let overflow = match request.endpoint {
        Endpoint::ChatCompletions => {
            (prompt > window).then_some(ContextOverflow::Messages { window, prompt })
        }
        Endpoint::Responses => (prompt > window).then_some(ContextOverflow::Input),
        // The legacy endpoint's message counts the completion's cap into the request.
        Endpoint::Completions => {
            let completion = request.output_cap.map_or(0, |(_, cap)| cap);
            (prompt.saturating_add(completion) > window).then_some(ContextOverflow::Prompt {
                window,
                prompt,
                completion,
            })
        }
    };
    overflow.map_or(Ok(()), |overflow| {
        Err(ApiError::ContextLengthExceeded(overflow))
    })
}

/// Decides the request with the server model (`model::ServerModel::decide`, the simulator's
/// decision) at the current server time, taking the model's lock once: the fault, the limits
/// and, when admitted, the draw of its latency. A refusal is answered after the latency's
/// `reject` of server time, as the simulator answers it; a `hang` waits out its duration, then
/// gets a 503.
pub async fn admit(
    state: &AppState,
    principal: &Principal,
    cost: Cost<'_>,
) -> Result<Admitted, ApiError> {
    let now = state.clock().now();
    let caller = principal.caller();
    let note = principal.grading_note();
    if let Some(note) = note {
        let reserved_output = cost
            .max_output_tokens
            .map_or(0, |cap| cap.saturating_mul(cost.choices.max(1)));
        note.asked(cost.prompt_tokens, reserved_output);
    }
    let (refusal, reject) = {
        let mut guard = state.model();
        let ModelState {
            model,
            fault_rng,
            latency_rng,
        } = &mut *guard;
        let reply = model.decide(now, &caller, &cost, fault_rng, true);
        let latency = model.latency_at(now);
        match reply {
            Reply::Admitted(admission) => {
                if let Some(note) = note {
                    note.admitted(admission.charged_tokens, admission.late_fault);
                }
                let factor = latency.draw_factor(latency_rng);
                return Ok(Admitted {
                    statuses: admission.statuses,
                    admitted_at: now,
                    latency: latency.plan(cost.prompt_tokens, factor),
                    late_fault: admission.late_fault,
                });
            }
            Reply::Refused(refusal) => (refusal, latency.reject.0),
        }
    };
    if let Refusal::Hang(hang) = refusal {
        tracing::info!(
            ?principal,
            hang_ms = u64::try_from(hang.as_millis()).unwrap_or(u64::MAX),
            "injected hang"
        );
        // The client is expected to give up first; if it does not (or the server stops), it
        // gets a 503.
        let _ = state.wait_until(now.saturating_add(hang)).await;
        return Err(ApiError::Overloaded);
    }
    let error = refusal_error(refusal, cost.model, &caller);
    // A 404 is a request error, answered at once like the 400s; the server's own refusals
    // (429s, injected errors) take the reject latency. An early end on shutdown answers now.
    if !reject.is_zero() && !matches!(error, ApiError::ModelNotFound { .. }) {
        let _ = state.wait_until(now.saturating_add(reject)).await;
    }
    Err(error)
}

/// The error a refusal is answered with; a 429's body and headers are built only here.
fn refusal_error(refusal: Refusal, model: &str, caller: &Caller<'_>) -> ApiError {
    match refusal {
        Refusal::ModelNotFound => ApiError::ModelNotFound {
            model: model.to_owned(),
        },
        Refusal::RateLimited(limited) => ApiError::rate_limited(&limited, model, caller),
        Refusal::InsufficientQuota => ApiError::insufficient_quota(),
        Refusal::ServerError => ApiError::ServerError,
        Refusal::SlowDown => ApiError::SlowDown,
        Refusal::Overloaded | Refusal::Hang(_) => ApiError::Overloaded,
    }
}

/// Runs an endpoint's `serve` on a parsed body (or passes the parse error on) and turns the
/// result into the response.
pub async fn handle<Request>(
    state: AppState,
    principal: Principal,
    body: Result<JsonBody<Request>, ApiError>,
    serve: impl AsyncFnOnce(&AppState, &Principal, Request) -> Result<Response, ApiError>,
) -> Response {
    let result = match body {
        Ok(JsonBody(request)) => serve(&state, &principal, request).await,
        Err(error) => Err(error),
    };
    respond(&state, &principal, result)
}

/// Books a served request's tokens: spend towards budgets, the token metrics, and a graded
/// attempt's note.
pub fn account(state: &AppState, principal: &Principal, model: &str, input: u64, output: u64) {
    state
        .model()
        .record_spend(&principal.caller(), model, input, output);
    state
        .metrics()
        .record_tokens(principal.key_slot(), input, output);
    if let Some(note) = principal.grading_note() {
        note.served(input, output);
    }
}

/// Streams `events` on the admission's latency schedule; a late fault breaks the stream with
/// `in_band_error` or a connection reset.
pub fn stream(
    state: &AppState,
    admitted: Admitted,
    events: Vec<StreamEvent>,
    in_band_error: impl FnOnce() -> StreamEvent,
) -> Response {
    let fault = admitted.late_fault.map(|fault| match fault {
        LateFault::ConnectionReset => StreamBreak::Reset,
        LateFault::StreamError => StreamBreak::InBandError(in_band_error()),
    });
    let response = sse::paced(
        state.clone(),
        admitted.admitted_at,
        admitted.latency,
        events,
        fault,
    );
    with_rate_limit_headers(response, admitted)
}

/// Turns a handler's result into the response, adding the caller's organization header (sent
/// on errors too, once the key is known), and counts it in the caller's per-key metrics.
pub fn respond(
    state: &AppState,
    principal: &Principal,
    result: Result<Response, ApiError>,
) -> Response {
    const OPENAI_ORGANIZATION: HeaderName = HeaderName::from_static("openai-organization");
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    state
        .metrics()
        .record_key_request(principal.key_slot(), response.status().as_u16());
    if let Some(organization) = principal.organization_header() {
        response
            .headers_mut()
            .insert(OPENAI_ORGANIZATION, organization.clone());
    }
    // Only the access log reads the caller back, and the extension costs allocations.
    if tracing::enabled!(target: crate::routes::ACCESS_LOG, tracing::Level::INFO) {
        response.extensions_mut().insert(principal.clone());
    }
    response
}

/// Adds the admission headers to a served response.
fn with_rate_limit_headers(mut response: Response, admitted: Admitted) -> Response {
    crate::headers::insert_rate_limit_headers(response.headers_mut(), &admitted.statuses);
    response
}

/// Headers a served model response ends up with: `content-type`, six `x-ratelimit-*`,
/// `openai-organization`, `x-request-id`, `openai-version` and `openai-processing-ms`.
/// Reserving them at once spares the map two rounds of growing; a key with project limits adds
/// three more, and one round.
const SERVED_HEADERS: usize = 11;

/// A JSON reply of a model endpoint: like `axum::Json`, but sized for a served response's body
/// and headers up front.
pub struct JsonReply<T>(pub T);

impl<T: WriteJson> IntoResponse for JsonReply<T> {
    fn into_response(self) -> Response {
        const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
        // A chat reply of a few dozen tokens fits; bigger ones grow as usual.
        let mut body = Vec::with_capacity(1024);
        if let Err(error) = self.0.write_json(&mut body) {
            tracing::error!(%error, "a wire type failed to serialize");
            return ApiError::ServerError.into_response();
        }
        let mut response = Response::new(axum::body::Body::from(body));
        let headers = response.headers_mut();
        headers.reserve(SERVED_HEADERS);
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        response
    }
}

/// Waits the latency of a whole non-streamed reply, then applies a late fault.
pub async fn serve_whole(
    state: &AppState,
    admitted: Admitted,
    output_tokens: u64,
    body: impl IntoResponse,
) -> Result<Response, ApiError> {
    let latency = admitted.latency.total(output_tokens);
    // Without a latency model there is nothing to wait for, not even a clock to read.
    if !latency.is_zero() {
        state
            .wait_until(admitted.admitted_at + latency)
            .await
            .map_err(|_| ApiError::Overloaded)?;
    }
    let response = match admitted.late_fault {
        None => body.into_response(),
        Some(LateFault::StreamError) => return Err(ApiError::ServerError),
        Some(LateFault::ConnectionReset) => crate::sse::reset_connection(),
    };
    Ok(with_rate_limit_headers(response, admitted))
}
