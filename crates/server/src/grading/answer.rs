//! What the server answered a graded attempt, as grading needs it: the answer its response
//! head shows, the tokens its handler noted, and whether the server broke a 2xx off.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::response::Response;
use model::LateFault;
use results::LimitKind;

use crate::error::Exhausted;

/// What the server answered one attempt, as grading needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx.
    Success,
    /// A 429: the wait it stated (the smaller retry header), and whether waiting never helps
    /// (`insufficient_quota`).
    RateLimited {
        /// The stated wait, if any.
        retry_after: Option<Duration>,
        /// The 429 was `insufficient_quota`.
        insufficient_quota: bool,
        /// The limit it is recorded under in the report, as the simulator records it.
        limit: LimitKind,
    },
    /// Any other status.
    Failed {
        /// The HTTP status.
        status: u16,
    },
    /// A 2xx whose body the server broke off, so the client got no success: an injected
    /// connection reset (`reset`), or a stream's in-band error.
    Broken {
        /// The connection was reset, rather than an error event sent.
        reset: bool,
    },
    /// No answer: the client closed the connection (a timeout, a cancel) while the attempt
    /// was being served.
    Abandoned,
}

/// The tokens of one attempt, as the handler that served it noted them ([`GradingNote`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptTokens {
    /// The prompt's tokens: the usage of a served reply, else the count the limiter was asked
    /// about; 0 for an attempt refused before (a 400, a 401).
    pub prompt: u32,
    /// The output the request reserves: its `max_tokens` (or `max_completion_tokens`,
    /// `max_output_tokens`) times the choices it asks for; 0 when it sets no cap.
    pub reserved_output: u32,
    /// Completion tokens of the reply the server built; 0 when it built none.
    pub completion: u32,
    /// What the limiter charged: the request's token charge when admitted, else 0.
    pub charged: u32,
}

/// What the handler serving a graded attempt tells grading that the answer does not show: its
/// tokens and whether the reply will be broken off. [`GradedApi`](crate::GradedApi) attaches
/// one to each graded request, the principal the key resolves to carries it to the
/// pipeline, and an ungraded request has none, so the ungraded hot path does not pay for it.
#[derive(Debug, Default)]
pub struct GradingNote(Mutex<Noted>);

#[derive(Debug, Clone, Copy, Default)]
struct Noted {
    tokens: AttemptTokens,
    late_fault: Option<LateFault>,
}

fn saturating_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl GradingNote {
    fn noted(&self) -> MutexGuard<'_, Noted> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The limiter is asked about `prompt` tokens with `reserved_output` more reserved.
    pub(crate) fn asked(&self, prompt: u64, reserved_output: u64) {
        let mut noted = self.noted();
        noted.tokens.prompt = saturating_u32(prompt);
        noted.tokens.reserved_output = saturating_u32(reserved_output);
    }

    /// The limiter admitted the attempt, charging `charged` tokens; `late_fault` will strike
    /// its reply.
    pub(crate) fn admitted(&self, charged: u64, late_fault: Option<LateFault>) {
        let mut noted = self.noted();
        noted.tokens.charged = saturating_u32(charged);
        noted.late_fault = late_fault;
    }

    /// The reply is built with this usage.
    pub(crate) fn served(&self, prompt: u64, completion: u64) {
        let mut noted = self.noted();
        noted.tokens.prompt = saturating_u32(prompt);
        noted.tokens.completion = saturating_u32(completion);
    }

    fn read(&self) -> Noted {
        *self.noted()
    }
}

/// How an attempt ended, as grading records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// What the server answered.
    pub answer: Answer,
    /// The answer said `x-should-retry: false`.
    pub should_not_retry: bool,
    /// The attempt's tokens.
    pub tokens: AttemptTokens,
}

impl Ending {
    /// An end with `answer`, no `x-should-retry: false` and no tokens.
    pub fn answered(answer: Answer) -> Ending {
        Ending {
            answer,
            should_not_retry: false,
            tokens: AttemptTokens::default(),
        }
    }

    /// The end of an attempt the client closed before its answer.
    pub fn abandoned(note: &GradingNote) -> Ending {
        Ending {
            tokens: note.read().tokens,
            ..Ending::answered(Answer::Abandoned)
        }
    }
}

/// How an answered attempt ended: the answer as the response head shows it, unless the note
/// says the server will break a 2xx off; whether it said not to retry; the noted tokens.
pub fn classify(response: &Response, note: &GradingNote) -> Ending {
    let noted = note.read();
    let (answer, should_not_retry) = classify_head(response);
    let answer = match (answer, noted.late_fault) {
        (Answer::Success, Some(LateFault::ConnectionReset)) => Answer::Broken { reset: true },
        (Answer::Success, Some(LateFault::StreamError)) => Answer::Broken { reset: false },
        (answer, _) => answer,
    };
    Ending {
        answer,
        should_not_retry,
        tokens: noted.tokens,
    }
}

/// What grading reads of a response head: the answer, and whether it said not to retry.
fn classify_head(response: &Response) -> (Answer, bool) {
    let headers = response.headers();
    let should_not_retry = headers
        .get("x-should-retry")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"false"));
    let status = response.status().as_u16();
    let answer = match status {
        200..=299 => Answer::Success,
        429 => {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<f64>().ok())
                    .filter(|value| value.is_finite() && *value >= 0.0)
            };
            let millis = header("retry-after-ms").map(|ms| Duration::from_secs_f64(ms / 1000.0));
            let seconds = header("retry-after").map(Duration::from_secs_f64);
            let retry_after = match (millis, seconds) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let insufficient_quota = response
                .extensions()
                .get::<Exhausted>()
                .is_some_and(|Exhausted(kind)| kind == "insufficient_quota");
            // Set on every 429 the server writes; another (a handler's own) counts as `Other`.
            let limit = response
                .extensions()
                .get::<LimitKind>()
                .copied()
                .unwrap_or(LimitKind::Other);
            Answer::RateLimited {
                retry_after,
                insufficient_quota,
                limit,
            }
        }
        status => Answer::Failed { status },
    };
    (answer, should_not_retry)
}
