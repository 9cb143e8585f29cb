//! The exact JSON bodies of OpenAI's 429 responses, built from a [`Rejection`].

use serde::{Deserialize, Serialize};

use crate::go_duration::format_go_duration;
use crate::limiter::Rejection;
use crate::limits::{Scope, Unit};

const RATE_LIMITS_PAGE: &str =
    "Visit https://platform.openai.com/account/rate-limits to learn more.";

/// An OpenAI error response body: `{"error": {"message", "type", "param", "code"}}`.
///
/// `code` is a string or null, never a number: some clients break on a numeric code.
///
/// ```
/// use std::time::Duration;
/// use quota::{ErrorBody, LimitKind, Rejection, Scope};
///
/// let rejection = Rejection {
///     scope: Scope::Organization,
///     kind: LimitKind::Tpm,
///     limit: 30_000,
///     used: 29_937,
///     requested: 385,
///     retry_after: Some(Duration::from_millis(644)),
/// };
/// let body = ErrorBody::rate_limit(&rejection, "gpt-4o", "org-abc", None);
/// assert_eq!(body.error.message, "Rate limit reached for gpt-4o in organization org-abc on \
///     tokens per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 644ms. \
///     Visit https://platform.openai.com/account/rate-limits to learn more.");
/// assert_eq!(
///     serde_json::to_value(&body).unwrap()["error"]["code"],
///     "rate_limit_exceeded"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The human-readable message.
    pub message: String,
    /// The error type, e.g. `tokens`, `requests`, `insufficient_quota`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending request parameter, if any.
    pub param: Option<String>,
    /// The machine-readable code, e.g. `rate_limit_exceeded`.
    pub code: Option<String>,
}

impl ErrorBody {
    /// The 429 body for a rejection: "Rate limit reached ..." for every limit kind and scope,
    /// or "Request too large ..." when the request never fits. `project` names the project in
    /// the message when the project's limit rejected.
    pub fn rate_limit(
        rejection: &Rejection,
        model: &str,
        organization: &str,
        project: Option<&str>,
    ) -> ErrorBody {
        let holder = match (rejection.scope, project) {
            (Scope::Project, Some(project)) => {
                format!("in project {project} organization {organization}")
            }
            _ => format!("in organization {organization}"),
        };
        let kind = rejection.kind;
        let message = match rejection.retry_after {
            Some(wait) => format!(
                "Rate limit reached for {model} {holder} on {}: Limit {}, Used {}, Requested {}. \
                 Please try again in {}. {RATE_LIMITS_PAGE}",
                kind.phrase(),
                rejection.limit,
                rejection.used,
                rejection.requested,
                format_go_duration(wait),
            ),
            None => format!(
                "Request too large for {model} {holder} on {}: Limit {}, Requested {}. The input \
                 or output tokens must be reduced in order to run successfully. {RATE_LIMITS_PAGE}",
                kind.phrase(),
                rejection.limit,
                rejection.requested,
            ),
        };
        let error_type = match kind.unit() {
            Unit::Requests => "requests",
            Unit::Tokens => "tokens",
            Unit::Images => "images",
        };
        ErrorBody {
            error: ErrorDetail {
                message,
                kind: error_type.to_owned(),
                param: None,
                code: Some("rate_limit_exceeded".to_owned()),
            },
        }
    }

    /// The 429 body for an exhausted quota or billing limit; retrying never helps.
    ///
    /// ```
    /// let body = quota::ErrorBody::insufficient_quota();
    /// assert_eq!(body.error.kind, "insufficient_quota");
    /// assert!(body.error.message.starts_with("You exceeded your current quota"));
    /// ```
    pub fn insufficient_quota() -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: "You exceeded your current quota, please check your plan and billing \
                          details. For more information on this error, read the docs: \
                          https://platform.openai.com/docs/guides/error-codes/api-errors."
                    .to_owned(),
                kind: "insufficient_quota".to_owned(),
                param: None,
                code: Some("insufficient_quota".to_owned()),
            },
        }
    }
}
