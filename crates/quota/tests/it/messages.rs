//! The exact 429 message texts for every limit kind, scope, request-too-large and
//! insufficient_quota.

use std::time::Duration;

use quota::{ErrorBody, LimitKind, Rejection, Scope};

fn rejection(scope: Scope, kind: LimitKind, retry_after: Option<Duration>) -> Rejection {
    Rejection {
        scope,
        kind,
        limit: 30_000,
        used: 29_937,
        requested: 385,
        retry_after,
    }
}

#[track_caller]
fn check(rejection: Rejection, project: Option<&str>, message: &str, error_type: &str) {
    let body = ErrorBody::rate_limit(&rejection, "gpt-4o", "org-abc", project);
    let json = serde_json::to_value(&body).unwrap();
    assert_eq!(json["error"]["message"], message);
    assert_eq!(json["error"]["type"], error_type);
    assert_eq!(json["error"]["code"], "rate_limit_exceeded");
    assert!(json["error"]["param"].is_null());
}

const VISIT: &str = "Visit https://platform.openai.com/account/rate-limits to learn more.";

#[test]
fn every_rate_limit_kind_has_openais_message() {
    let wait = Some(Duration::from_millis(644));
    let cases = [
        (LimitKind::Tpm, "tokens per min (TPM)", "tokens"),
        (LimitKind::Tpd, "tokens per day (TPD)", "tokens"),
        (LimitKind::Rpm, "requests per min (RPM)", "requests"),
        (LimitKind::Rpd, "requests per day (RPD)", "requests"),
        (LimitKind::Ipm, "images per min (IPM)", "images"),
    ];
    for (kind, phrase, error_type) in cases {
        check(
            rejection(Scope::Organization, kind, wait),
            Some("proj-1"),
            &format!(
                "Rate limit reached for gpt-4o in organization org-abc on {phrase}: Limit 30000, \
                 Used 29937, Requested 385. Please try again in 644ms. {VISIT}"
            ),
            error_type,
        );
    }
}

#[test]
fn project_limits_name_the_project() {
    check(
        rejection(
            Scope::Project,
            LimitKind::Tpm,
            Some(Duration::from_millis(1_146)),
        ),
        Some("proj_abc"),
        &format!(
            "Rate limit reached for gpt-4o in project proj_abc organization org-abc on tokens \
             per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 1.146s. \
             {VISIT}"
        ),
        "tokens",
    );
}

#[test]
fn request_too_large_has_no_wait() {
    check(
        rejection(Scope::Organization, LimitKind::Tpm, None),
        None,
        &format!(
            "Request too large for gpt-4o in organization org-abc on tokens per min (TPM): \
             Limit 30000, Requested 385. The input or output tokens must be reduced in order to \
             run successfully. {VISIT}"
        ),
        "tokens",
    );
}

#[test]
fn insufficient_quota_body() {
    let json = serde_json::to_value(ErrorBody::insufficient_quota()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"error": {
            "message": "You exceeded your current quota, please check your plan and billing \
                        details. For more information on this error, read the docs: \
                        https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "type": "insufficient_quota",
            "param": null,
            "code": "insufficient_quota",
        }})
    );
}
