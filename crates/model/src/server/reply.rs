//! What the model decides for a request: who sends it (`Caller`), what it asks (`Cost`), and
//! the typed answer (`Reply`: admitted, or refused with a 429 of a limit, an injected error or a
//! hang), with the 429's body and headers built only when asked.

use std::time::Duration;

use quota::{ErrorBody, LimitStatus, ModelKind, Rejection, Scope};

use crate::config::DEFAULT_ORGANIZATION;

/// Who sends a request: the organization and project its key acts for, and the key.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub organization: &'a str,
    pub project: &'a str,
    pub key: &'a str,
}

impl Caller<'static> {
    /// The caller of a server that declares no organizations (and of a simulated scenario).
    pub const DEFAULT: Caller<'static> = Caller {
        organization: DEFAULT_ORGANIZATION,
        project: crate::config::DEFAULT_PROJECT,
        key: "",
    };
}

/// What a request asks of the limits: its model and measurements.
#[derive(Debug, Clone, Copy)]
pub struct Cost<'a> {
    pub model: &'a str,
    /// The prompt's tokens; for legacy completions with several prompts, the longest one's.
    pub prompt_tokens: u64,
    /// Characters of the prompt text, the token charge's estimate; `None` where the request
    /// has no text to estimate from (token arrays, embeddings), and the count stands in.
    pub prompt_characters: Option<u64>,
    /// `max_tokens` per choice, when the request sets it.
    pub max_output_tokens: Option<u64>,
    /// `n`, at least 1.
    pub choices: u64,
}

impl Cost<'_> {
    #[inline]
    pub(super) fn size(&self) -> quota::RequestSize {
        quota::RequestSize {
            prompt_characters: self.prompt_characters,
            prompt_tokens: Some(self.prompt_tokens),
            max_output_tokens: self.max_output_tokens,
            choices: self.choices,
        }
    }
}

/// What the model decides for a request.
#[derive(Debug)]
pub enum Reply {
    /// Served: charged to its limits.
    Admitted(Admission),
    /// Answered with an error instead.
    Refused(Refusal),
}

/// A request the limits admitted.
#[derive(Debug, Default)]
pub struct Admission {
    /// Every charged limit's status after the charge, for the `x-ratelimit-*` headers; empty
    /// when the caller did not ask for them or the header policy sends none on successes.
    pub statuses: Vec<LimitStatus>,
    /// A fault that strikes once the request is being served.
    pub late_fault: Option<LateFault>,
    /// The tokens the limiter charged the request (its token charge rule's figure, once, even
    /// when both the organization's and the project's limits were charged).
    pub charged_tokens: u64,
}

/// Faults that happen once a request is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateFault {
    /// The connection drops at the end of the reply's latency (a stream: partway through).
    ConnectionReset,
    /// A stream carries an in-band error; a whole reply is a 500.
    StreamError,
}

/// Why a request was not served.
#[derive(Debug)]
pub enum Refusal {
    /// 404: the model is not offered (unknown, a pool, or absent from the tier).
    ModelNotFound,
    /// 429 `rate_limit_exceeded`: a limit, or a scripted `rate_limited` fault.
    RateLimited(RateLimited),
    /// 429 `insufficient_quota`: the spend cap is reached, or an injected fault.
    InsufficientQuota,
    /// 500 `server_error`.
    ServerError,
    /// 503 `server_is_overloaded`.
    Overloaded,
    /// 429 `slow_down`.
    SlowDown,
    /// No answer for this long, then a 503.
    Hang(Duration),
}

impl Refusal {
    /// The HTTP status the refusal is answered with (a hang's, when it ends).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::ModelNotFound => 404,
            Refusal::RateLimited(_) | Refusal::InsufficientQuota | Refusal::SlowDown => 429,
            Refusal::ServerError => 500,
            Refusal::Overloaded | Refusal::Hang(_) => 503,
        }
    }

    /// The error body's `code` (its `type` where OpenAI sends a null code).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::ModelNotFound => "model_not_found",
            Refusal::RateLimited(_) => "rate_limit_exceeded",
            Refusal::InsufficientQuota => "insufficient_quota",
            Refusal::ServerError => "server_error",
            Refusal::Overloaded | Refusal::Hang(_) => "server_is_overloaded",
            Refusal::SlowDown => "slow_down",
        }
    }
}

/// A 429 of a limit: the rejection as the request found it, and what the headers carry.
#[derive(Debug, Clone)]
pub struct RateLimited {
    /// The limit, as found before any charge for the rejection.
    pub rejection: Rejection,
    /// `retry-after` in whole seconds, when the header policy sends it and the limit can fit.
    pub retry_after_seconds: Option<u64>,
    /// `retry-after-ms`, likewise.
    pub retry_after_ms: Option<u64>,
    /// Every limit's status as the request found it, when the policy sends `x-ratelimit-*`
    /// on 429s and the caller asked for them.
    pub statuses: Option<Vec<LimitStatus>>,
    /// Whether a scripted fault, not a limit, sent it.
    pub scripted: bool,
}

impl RateLimited {
    /// OpenAI's error body for it, naming the limit, the model and the holder.
    pub fn body(&self, model: &str, caller: &Caller<'_>) -> ErrorBody {
        ErrorBody::rate_limit(
            &self.rejection,
            model,
            caller.organization,
            Some(caller.project),
        )
    }

    /// Which limit ran out, for metrics: `rpm`, `project_tpm`, `request_too_large`, ...
    pub fn exhausted(&self) -> String {
        if self.rejection.is_request_too_large() {
            return "request_too_large".to_owned();
        }
        let scope = match self.rejection.scope {
            Scope::Organization => "",
            Scope::Project => "project_",
        };
        format!(
            "{scope}{}",
            self.rejection.kind.abbreviation().to_lowercase()
        )
    }
}

/// A model's per-request limits from the catalog, which OpenAI enforces with a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub kind: ModelKind,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
}
