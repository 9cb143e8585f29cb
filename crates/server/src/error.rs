//! `ApiError`: every way a request can fail, rendered as OpenAI's JSON error envelope.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{Caller, HumanDuration, RateLimited};

use crate::wire::error::{ErrorEnvelope, ErrorObject};

const API_KEYS_URL: &str = "https://platform.openai.com/account/api-keys";

/// A failed request. Its response is always `application/json` with OpenAI's envelope.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No `Authorization: Bearer` header.
    MissingApiKey,
    /// A key the configuration does not know; only a redacted form is kept.
    InvalidApiKey { redacted_key: String },
    /// The model is not in the catalog.
    ModelNotFound { model: String },
    /// The body is not JSON at all.
    UnparsableJson,
    /// A required field is absent.
    MissingParameter { param: String },
    /// A field has the wrong type or an unacceptable value.
    InvalidParameter {
        param: String,
        message: String,
        code: &'static str,
    },
    /// A chat completion asked of a model that is not a chat model (an embedding model).
    NotAChatModel,
    /// The output cap (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) is above
    /// what the model can produce.
    OutputCapTooLarge {
        param: &'static str,
        requested: u64,
        limit: u64,
    },
    /// The request does not fit the model's context window.
    ContextLengthExceeded(ContextOverflow),
    /// An embeddings `input` OpenAI's schema refuses: more than 2,048 items.
    EmbeddingInputsInvalid,
    /// One embeddings input is longer than the model takes.
    EmbeddingInputTooLong { index: usize, limit: u64 },
    /// An embeddings request whose inputs add up to more tokens than one request may carry.
    EmbeddingRequestTooLarge { requested: u64, limit: u64 },
    /// The body exceeds the configured size limit.
    PayloadTooLarge { limit_bytes: usize },
    /// The body did not arrive within `connections.body_read_timeout`.
    BodyReadTimeout { timeout: HumanDuration },
    /// No such route.
    UnknownRoute { method: String, path: String },
    /// A 429 of the server model (a limit, a scripted fault, the spend cap), with its exact
    /// body and headers.
    Limited(Box<LimitedResponse>),
    /// A `slow_down` 429 fault.
    SlowDown,
    /// A 500 fault.
    ServerError,
    /// A 503 fault.
    Overloaded,
    /// `/_admin` was called but no admin token is configured.
    AdminDisabled,
    /// `/_admin` was called without the right admin token.
    AdminUnauthorized,
    /// An admin request that cannot be carried out in the server's current mode.
    AdminConflict { message: String },
    /// An admin request with a bad body.
    AdminBadRequest { message: String },
}

/// A prebuilt 429: the error object, the headers to send with it, and what was exhausted
/// (`rpm`, `project_tpm`, `insufficient_quota`, ...) for metrics.
#[derive(Debug, Clone)]
pub struct LimitedResponse {
    pub error: ErrorObject,
    pub headers: HeaderMap,
    pub exhausted: String,
    /// The limit the trace records it under, as the simulator records the same refusal.
    pub limit: results::LimitKind,
}

/// How a request overflowed its model's context window; OpenAI words the 400 differently on
/// each endpoint (docs/model-limits.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextOverflow {
    /// Chat completions: the messages alone are longer than the window.
    Messages { window: u64, prompt: u64 },
    /// The Responses API: the input is longer than the window.
    Input,
    /// Legacy completions: the prompt plus `max_tokens` are longer than the window.
    Prompt {
        window: u64,
        prompt: u64,
        completion: u64,
    },
}

/// Attached to 429 responses so the metrics layer can count them by exhausted limit.
#[derive(Debug, Clone)]
pub struct Exhausted(pub String);

impl ApiError {
    /// The 429 of a limit (or a scripted `rate_limited` fault): OpenAI's body naming the limit,
    /// the model and the holder, and the headers the model's header policy lets it carry.
    pub fn rate_limited(limited: &RateLimited, model: &str, caller: &Caller<'_>) -> ApiError {
        let mut headers = HeaderMap::new();
        crate::headers::insert_retry_headers(
            &mut headers,
            limited.retry_after_seconds,
            limited.retry_after_ms,
        );
        if let Some(statuses) = &limited.statuses {
            crate::headers::insert_rate_limit_headers(&mut headers, statuses);
        }
        ApiError::Limited(Box::new(LimitedResponse {
            error: limited.body(model, caller).error,
            headers,
            exhausted: limited.exhausted(),
            limit: results::LimitKind::of_refusal(limited),
        }))
    }

    /// The `insufficient_quota` 429; it carries no retry headers because waiting never helps.
    pub fn insufficient_quota() -> ApiError {
        ApiError::Limited(Box::new(LimitedResponse {
            error: quota::ErrorBody::insufficient_quota().error,
            headers: HeaderMap::new(),
            exhausted: "insufficient_quota".to_owned(),
            limit: results::LimitKind::Other,
        }))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingApiKey | ApiError::InvalidApiKey { .. } => StatusCode::UNAUTHORIZED,
            ApiError::ModelNotFound { .. }
            | ApiError::NotAChatModel
            | ApiError::UnknownRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::AdminDisabled => StatusCode::NOT_FOUND,
            ApiError::UnparsableJson
            | ApiError::MissingParameter { .. }
            | ApiError::InvalidParameter { .. }
            | ApiError::OutputCapTooLarge { .. }
            | ApiError::ContextLengthExceeded(_)
            | ApiError::EmbeddingInputsInvalid
            | ApiError::EmbeddingInputTooLong { .. }
            | ApiError::EmbeddingRequestTooLarge { .. }
            | ApiError::AdminBadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyReadTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Limited(_) | ApiError::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AdminConflict { .. } => StatusCode::CONFLICT,
        }
    }

    /// The error object inside the envelope.
    pub fn error_object(&self) -> ErrorObject {
        let invalid_request = |message: String, param: Option<&str>, code: Option<&str>| {
            error_object(message, "invalid_request_error", param, code)
        };
        match self {
            ApiError::MissingApiKey => invalid_request(
                format!(
                    "You didn't provide an API key. You need to provide your API key in an \
                     Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). \
                     You can obtain an API key from {API_KEYS_URL}."
                ),
                None,
                Some("invalid_api_key"),
            ),
            ApiError::InvalidApiKey { redacted_key } => invalid_request(
                format!(
                    "Incorrect API key provided: {redacted_key}. You can find your API key at \
                     {API_KEYS_URL}."
                ),
                None,
                Some("invalid_api_key"),
            ),
            ApiError::ModelNotFound { model } => invalid_request(
                format!("The model `{model}` does not exist or you do not have access to it."),
                None,
                Some("model_not_found"),
            ),
            ApiError::UnparsableJson => invalid_request(
                "We could not parse the JSON body of your request. (HINT: This likely means you \
                 aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
                 but what was sent was not valid JSON.)"
                    .to_owned(),
                None,
                None,
            ),
            ApiError::MissingParameter { param } => invalid_request(
                format!("Missing required parameter: '{param}'."),
                Some(param),
                Some("missing_required_parameter"),
            ),
            ApiError::InvalidParameter {
                param,
                message,
                code,
            } => invalid_request(message.clone(), Some(param), Some(code)),
            // The wording of these three is OpenAI's, from the public samples cited in
            // docs/model-limits.md.
            ApiError::NotAChatModel => invalid_request(
                "This is not a chat model and thus not supported in the v1/chat/completions \
                 endpoint. Did you mean to use v1/completions?"
                    .to_owned(),
                Some("model"),
                None,
            ),
            ApiError::OutputCapTooLarge {
                param,
                requested,
                limit,
            } => invalid_request(
                format!(
                    "{param} is too large: {requested}. This model supports at most {limit} \
                     completion tokens, whereas you provided {requested}."
                ),
                Some(param),
                Some("invalid_value"),
            ),
            ApiError::ContextLengthExceeded(overflow) => {
                let (message, param) = match *overflow {
                    ContextOverflow::Messages { window, prompt } => (
                        format!(
                            "This model's maximum context length is {window} tokens. However, \
                             your messages resulted in {prompt} tokens. Please reduce the length \
                             of the messages."
                        ),
                        "messages",
                    ),
                    ContextOverflow::Input => (
                        "Your input exceeds the context window of this model. Please adjust \
                         your input and try again."
                            .to_owned(),
                        "input",
                    ),
                    ContextOverflow::Prompt {
                        window,
                        prompt,
                        completion,
                    } => (
                        format!(
                            "This model's maximum context length is {window} tokens, however you \
                             requested {} tokens ({prompt} in your prompt; {completion} for the \
                             completion). Please reduce your prompt; or completion length.",
                            prompt.saturating_add(completion)
                        ),
                        "prompt",
                    ),
                };
                invalid_request(message, Some(param), Some("context_length_exceeded"))
            }
            // The embeddings limits' wording, param, code and type are OpenAI's where public
            // samples show them (docs/model-limits.md).
            ApiError::EmbeddingInputsInvalid => invalid_request(
                "'$.input' is invalid. Please check the API reference: \
                 https://platform.openai.com/docs/api-reference."
                    .to_owned(),
                None,
                None,
            ),
            ApiError::EmbeddingInputTooLong { index, limit } => invalid_request(
                format!("Invalid 'input[{index}]': maximum input length is {limit} tokens."),
                Some("input"),
                None,
            ),
            ApiError::EmbeddingRequestTooLarge { requested, limit } => error_object(
                format!("Requested {requested} tokens, max {limit} tokens per request"),
                "max_tokens_per_request",
                None,
                Some("max_tokens_per_request"),
            ),
            ApiError::PayloadTooLarge { limit_bytes } => invalid_request(
                format!(
                    "The request body is too large: the limit is {limit_bytes} bytes. Send a \
                     smaller request or raise `max_body_bytes` in the server configuration."
                ),
                None,
                Some("request_too_large"),
            ),
            ApiError::BodyReadTimeout { timeout } => invalid_request(
                format!(
                    "The request body did not arrive within {timeout}. Send it faster or raise \
                     `connections.body_read_timeout` in the server configuration."
                ),
                None,
                Some("request_timeout"),
            ),
            ApiError::UnknownRoute { method, path } => {
                invalid_request(format!("Invalid URL ({method} {path})"), None, None)
            }
            ApiError::Limited(limited) => limited.error.clone(),
            ApiError::SlowDown => error_object(
                "We are ramping up capacity for your organization; please slow down your request \
                 rate and try again."
                    .to_owned(),
                "rate_limit_error",
                None,
                Some("slow_down"),
            ),
            ApiError::ServerError => error_object(
                "The server had an error processing your request. Sorry about that! You can retry \
                 your request, or contact us through our help center if you keep seeing this error."
                    .to_owned(),
                "server_error",
                None,
                Some("server_error"),
            ),
            ApiError::Overloaded => error_object(
                "Our servers are currently overloaded. Please try again later.".to_owned(),
                "service_unavailable_error",
                None,
                Some("server_is_overloaded"),
            ),
            ApiError::AdminDisabled => invalid_request(
                "the admin API is off: start the server with `--admin-token TOKEN` (or \
                 `admin_token` in the config file) to enable it"
                    .to_owned(),
                None,
                Some("admin_disabled"),
            ),
            ApiError::AdminUnauthorized => invalid_request(
                "the admin API needs `Authorization: Bearer <admin token>` with the token the \
                 server was started with"
                    .to_owned(),
                None,
                Some("invalid_admin_token"),
            ),
            ApiError::AdminConflict { message } | ApiError::AdminBadRequest { message } => {
                invalid_request(message.clone(), None, None)
            }
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ApiError::MissingApiKey | ApiError::InvalidApiKey { .. } => "invalid_api_key",
            ApiError::ModelNotFound { .. } => "model_not_found",
            ApiError::NotAChatModel => "not_a_chat_model",
            ApiError::ContextLengthExceeded(_) => "context_length_exceeded",
            ApiError::EmbeddingInputsInvalid
            | ApiError::EmbeddingInputTooLong { .. }
            | ApiError::EmbeddingRequestTooLarge { .. } => "invalid_request",
            ApiError::UnparsableJson
            | ApiError::MissingParameter { .. }
            | ApiError::InvalidParameter { .. }
            | ApiError::OutputCapTooLarge { .. } => "invalid_request",
            ApiError::PayloadTooLarge { .. } => "request_too_large",
            ApiError::BodyReadTimeout { .. } => "request_timeout",
            ApiError::UnknownRoute { .. } => "unknown_route",
            ApiError::Limited(_) => "rate_limited",
            ApiError::SlowDown => "slow_down",
            ApiError::ServerError => "server_error",
            ApiError::Overloaded => "overloaded",
            ApiError::AdminDisabled
            | ApiError::AdminUnauthorized
            | ApiError::AdminConflict { .. }
            | ApiError::AdminBadRequest { .. } => "admin",
        }
    }
}

fn error_object(
    message: String,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> ErrorObject {
    ErrorObject {
        message,
        kind: kind.to_owned(),
        param: param.map(str::to_owned),
        code: code.map(str::to_owned),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let envelope = ErrorEnvelope {
            error: self.error_object(),
        };
        // Grading reads which limit a 429 is recorded under (`results::LimitKind`).
        let limit = match &self {
            ApiError::Limited(limited) => Some(limited.limit),
            ApiError::SlowDown => Some(results::LimitKind::Other),
            _ => None,
        };
        let exhausted = match &self {
            ApiError::Limited(limited) => Some(limited.exhausted.clone()),
            ApiError::SlowDown => Some("slow_down".to_owned()),
            _ => None,
        };
        let mut response = (status, Json(envelope)).into_response();
        if let ApiError::Limited(limited) = self {
            response.headers_mut().extend(limited.headers);
        }
        if let Some(exhausted) = exhausted {
            response.extensions_mut().insert(Exhausted(exhausted));
        }
        if let Some(limit) = limit {
            response.extensions_mut().insert(limit);
        }
        response
    }
}
