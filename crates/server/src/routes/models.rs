//! `GET /v1/models` and `GET /v1/models/{id}`: the catalog models the caller's tier offers
//! (`model::ServerModel::offered_models`), the same ones a request may name without a 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::pipeline;
use crate::state::AppState;
use crate::wire::models::{Model, ModelList};

/// A fixed `created` for catalog models, so listings are reproducible: 2024-05-13.
const CATALOG_CREATED: u64 = 1_715_558_400;

pub async fn list_models(State(state): State<AppState>, principal: Principal) -> Response {
    let now = state.clock().now();
    let data = state
        .model()
        .offered_models(now, &principal.organization)
        .into_iter()
        .map(|id| Model::new(id, CATALOG_CREATED))
        .collect();
    let list = ModelList {
        object: "list",
        data,
    };
    pipeline::respond(&state, &principal, Ok(Json(list).into_response()))
}

pub async fn retrieve_model(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    let now = state.clock().now();
    let result = if state
        .model()
        .offers_model(now, &principal.organization, &id)
    {
        Ok(Json(Model::new(id, CATALOG_CREATED)).into_response())
    } else {
        Err(ApiError::ModelNotFound { model: id })
    };
    pipeline::respond(&state, &principal, result)
}
