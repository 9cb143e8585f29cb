//! `GET /v1/models` and `GET /v1/models/{id}`: the models of the tier catalog.

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
    let data = state
        .model()
        .model_ids()
        .into_iter()
        .map(|id| Model::new(id, CATALOG_CREATED))
        .collect();
    let list = ModelList {
        object: "list",
        data,
    };
    pipeline::respond(&principal, Ok(Json(list).into_response()))
}

pub async fn retrieve_model(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    let result = if state.model().knows_model(&id) {
        Ok(Json(Model::new(id, CATALOG_CREATED)).into_response())
    } else {
        Err(ApiError::ModelNotFound { model: id })
    };
    pipeline::respond(&principal, result)
}
