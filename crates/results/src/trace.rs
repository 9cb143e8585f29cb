//! The trace: one record per attempt, as executors (simulated or live) emit them.
//!
//! Times are integer nanoseconds since the scenario start, so a trace is exact and its JSONL
//! form is byte-identical for the same seed.

use scenario::ClientId;
use serde::{Deserialize, Serialize};

/// Which limit rejected an attempt with a 429: each of quota's limit kinds by name (executors
/// map them exhaustively), plus the 429s no limit of the limiter's explains.
///
/// ```
/// use results::LimitKind;
///
/// assert_eq!(LimitKind::Ipm.as_str(), "ipm");
/// assert_eq!(serde_json::to_string(&LimitKind::Ipm).unwrap(), "\"ipm\"");
/// assert_eq!(serde_json::to_string(&LimitKind::TooLarge).unwrap(), "\"too_large\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Requests per minute.
    Rpm,
    /// Requests per day.
    Rpd,
    /// Tokens per minute.
    Tpm,
    /// Tokens per day.
    Tpd,
    /// Images per minute.
    Ipm,
    /// The request alone exceeds a token limit: it can never fit.
    TooLarge,
    /// Any other 429 (quota exhausted, slow down).
    Other,
}

impl LimitKind {
    /// The limit a 429 of the server model is recorded under, by the simulator and by the mock
    /// server's grading alike: a scripted fault's is `Other`, a request no bucket can ever hold
    /// is `TooLarge`, else the kind of the limit that refused it.
    pub fn of_refusal(limited: &model::RateLimited) -> LimitKind {
        if limited.scripted {
            LimitKind::Other
        } else if limited.rejection.is_request_too_large() {
            LimitKind::TooLarge
        } else {
            // Exhaustive: a new kind of limit must be named in the trace, not counted as some
            // other 429.
            match limited.rejection.kind {
                quota::LimitKind::Rpm => LimitKind::Rpm,
                quota::LimitKind::Rpd => LimitKind::Rpd,
                quota::LimitKind::Tpm => LimitKind::Tpm,
                quota::LimitKind::Tpd => LimitKind::Tpd,
                quota::LimitKind::Ipm => LimitKind::Ipm,
            }
        }
    }

    /// The name used in reports, e.g. `tpm`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rpm => "rpm",
            LimitKind::Rpd => "rpd",
            LimitKind::Tpm => "tpm",
            LimitKind::Tpd => "tpd",
            LimitKind::Ipm => "ipm",
            LimitKind::TooLarge => "too_large",
            LimitKind::Other => "other",
        }
    }
}

/// What came back for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// 200: the request was served.
    Success,
    /// 429 from a rate limit.
    RateLimited {
        /// Which limit.
        limit: LimitKind,
        /// The wait the server said would be enough, in nanoseconds, if it said one.
        retry_after_ns: Option<u64>,
    },
    /// A 5xx from a fault window (a fault window's 429s are `RateLimited` with
    /// [`LimitKind::Other`]).
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// The client's timeout fired before the response.
    Timeout,
    /// The strategy refused to send (circuit open, client-side throttling): no HTTP call was
    /// made, and the record's send and end times are equal.
    NotSent,
}

/// What the client did after the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptDecision {
    /// The request succeeded; nothing more to do.
    Done,
    /// Another attempt after this wait.
    Retry {
        /// Wait before the next attempt, in nanoseconds.
        after_ns: u64,
    },
    /// The client gave the request up.
    GiveUp {
        /// Why, as the strategy said; `None` when a strategy ended a failed request as done.
        reason: Option<retry::GiveUpReason>,
    },
}

/// One attempt of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Index of the run (server variant x strategy) in [`crate::RunReport::runs`].
    pub run: u32,
    /// The client that sent it.
    pub client: ClientId,
    /// The request's sequence number within its client, from 0; the same request has the same
    /// number under every strategy for open-loop clients.
    pub request: u64,
    /// Attempt number within the request, from 0.
    pub attempt: u32,
    /// When the request first arrived at the client.
    pub arrived_ns: u64,
    /// When this attempt was sent.
    pub sent_ns: u64,
    /// When its outcome reached the client.
    pub ended_ns: u64,
    /// Prompt tokens of the request.
    pub prompt_tokens: u32,
    /// `max_tokens` of the request.
    pub max_tokens: u32,
    /// Completion tokens generated, on success; otherwise 0.
    pub completion_tokens: u32,
    /// What came back.
    pub outcome: AttemptOutcome,
    /// What the client did next.
    pub decision: AttemptDecision,
}

impl AttemptRecord {
    /// Whether an HTTP call was made (every outcome except [`AttemptOutcome::NotSent`]).
    #[inline]
    pub fn was_sent(&self) -> bool {
        self.outcome != AttemptOutcome::NotSent
    }

    /// Whether this attempt ended its request (success or give-up).
    #[inline]
    pub fn is_final(&self) -> bool {
        !matches!(self.decision, AttemptDecision::Retry { .. })
    }

    /// The request's end-to-end latency, when this attempt ended it.
    pub fn request_latency_ns(&self) -> Option<u64> {
        self.is_final()
            .then(|| self.ended_ns.saturating_sub(self.arrived_ns))
    }
}
