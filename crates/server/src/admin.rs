//! `/_admin`: read the server model's state and change its tiers, limits and faults at runtime,
//! reset it, and advance the manual clock. Off unless an admin token is configured; every call
//! needs it as a bearer token.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use model::{ClockKind, ConfiguredLimits, FaultConfig, FaultScript, validate_script};
use serde::Deserialize;

use crate::clock::AdvanceError;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The admin routes, to be nested under `/_admin`.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/state", get(read_state))
        .route("/tier", put(set_tier))
        .route("/limits", put(set_limits))
        .route("/reset", post(reset))
        .route("/faults", get(read_faults).put(replace_faults))
        .route("/faults/scripts", post(add_script))
        .route("/clock", get(read_clock))
        .route("/clock/advance", post(advance_clock))
        .route("/report", get(read_report))
        .layer(middleware::from_fn_with_state(state, require_admin_token))
}

async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let expected = state
        .config()
        .admin_token
        .as_deref()
        .ok_or(ApiError::AdminDisabled)?;
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .map(|value| value.as_bytes())
        .and_then(|value| value.strip_prefix(b"Bearer "));
    if !presented.is_some_and(|presented| token_matches(presented, expected.as_bytes())) {
        return Err(ApiError::AdminUnauthorized);
    }
    Ok(next.run(request).await)
}

/// Whether the presented admin token is the configured one, in time that does not depend on
/// where they first differ: `==` stops at the first differing byte, which lets a client that
/// can reach the admin API guess the token a byte at a time by timing. (subtle answers a
/// length mismatch at once, so the token's length is all the timing can tell.)
fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(presented.ct_eq(expected))
}

async fn read_state(State(state): State<AppState>) -> Response {
    let clock = clock_json(&state);
    let mut model = state.model();
    Json(serde_json::json!({
        "clock": clock,
        "limits": model.snapshot(),
        "faults": model.faults_mut().snapshot(),
        "timeline": model.timeline().entries(),
    }))
    .into_response()
}

/// Body of `PUT /_admin/tier`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierChange {
    tier: String,
    /// The organization to change; the default organization when absent.
    #[serde(default)]
    organization: Option<String>,
}

async fn set_tier(
    State(state): State<AppState>,
    JsonBody(change): JsonBody<TierChange>,
) -> Result<Response, ApiError> {
    state
        .model()
        .set_tier(change.organization.as_deref(), &change.tier)
        .map_err(|error| ApiError::AdminBadRequest {
            message: error.to_string(),
        })?;
    Ok(
        Json(serde_json::json!({ "tier": change.tier, "organization": change.organization }))
            .into_response(),
    )
}

/// Body of `PUT /_admin/limits`: `limits` absent (or null) removes the override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsChange {
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    project: Option<String>,
    model: String,
    #[serde(default)]
    limits: Option<ConfiguredLimits>,
}

async fn set_limits(
    State(state): State<AppState>,
    JsonBody(change): JsonBody<LimitsChange>,
) -> Result<Response, ApiError> {
    let mut model = state.model();
    model
        .set_limits(
            change.organization.as_deref(),
            change.project.as_deref(),
            &change.model,
            change.limits,
        )
        .map_err(|error| ApiError::AdminBadRequest {
            message: error.to_string(),
        })?;
    Ok(Json(model.snapshot()).into_response())
}

async fn reset(State(state): State<AppState>) -> Response {
    {
        let mut model = state.model();
        model.reset();
        model.faults_mut().replace(&state.config().faults);
    }
    state.metrics().reset();
    Json(serde_json::json!({ "reset": true })).into_response()
}

async fn read_faults(State(state): State<AppState>) -> Response {
    Json(state.model().faults_mut().snapshot()).into_response()
}

async fn replace_faults(
    State(state): State<AppState>,
    JsonBody(faults): JsonBody<FaultConfig>,
) -> Result<Response, ApiError> {
    faults
        .validate()
        .map_err(|error| ApiError::AdminBadRequest {
            message: error.to_string(),
        })?;
    let mut model = state.model();
    model.faults_mut().replace(&faults);
    Ok(Json(model.faults_mut().snapshot()).into_response())
}

async fn add_script(
    State(state): State<AppState>,
    JsonBody(script): JsonBody<FaultScript>,
) -> Result<Response, ApiError> {
    validate_script(&script).map_err(|message| ApiError::AdminBadRequest { message })?;
    let mut model = state.model();
    model.faults_mut().add_script(script);
    Ok(Json(model.faults_mut().snapshot()).into_response())
}

fn clock_json(state: &AppState) -> serde_json::Value {
    serde_json::json!({
        "kind": match state.clock().kind() {
            ClockKind::Real => "real",
            ClockKind::Manual => "manual",
        },
        "now_ms": state.clock().now().as_millis() as u64,
        "unix_seconds": state.clock().unix_seconds(),
    })
}

async fn read_clock(State(state): State<AppState>) -> Response {
    Json(clock_json(&state)).into_response()
}

/// `GET /_admin/report`: the graded clients' report so far, when the server grades them.
async fn read_report(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    // Building it aggregates every graded attempt: blocking work, off the async workers.
    let report = tokio::task::spawn_blocking(move || state.report())
        .await
        .map_err(|_| ApiError::AdminConflict {
            message: "building the report failed; see the server's log".to_owned(),
        })?;
    report.map(Json).ok_or_else(|| ApiError::AdminConflict {
        message:
            "this server grades no clients, so it has no report: start it with `ratelab serve \
                  --scenario FILE` (or run the client under `ratelab test`)"
                .to_owned(),
    })
}

/// Body of `POST /_admin/clock/advance`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    ms: u64,
}

async fn advance_clock(
    State(state): State<AppState>,
    JsonBody(advance): JsonBody<Advance>,
) -> Result<Response, ApiError> {
    state
        .clock()
        .advance(Duration::from_millis(advance.ms))
        .map_err(|error| match error {
            AdvanceError::NotManualClock => ApiError::AdminConflict {
                message: error.to_string(),
            },
            // A body no clock can honour: the request is wrong, not the server's mode.
            _ => ApiError::AdminBadRequest {
                message: error.to_string(),
            },
        })?;
    Ok(Json(clock_json(&state)).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_exact_token_matches() {
        let expected = b"admin-secret";
        assert!(super::token_matches(b"admin-secret", expected));
        for presented in [
            &b""[..],
            b"admin-secre",
            b"admin-secret ",
            b"admin-secreT",
            b"Admin-secret",
            b"\xffdmin-secret",
        ] {
            assert!(!super::token_matches(presented, expected), "{presented:?}");
        }
    }
}
