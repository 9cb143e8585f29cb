//! `GET /v1/models` and `GET /v1/models/{id}` bodies.

use serde::Serialize;

/// One model as listed by `/v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

impl Model {
    pub fn new(id: impl Into<String>, created: u64) -> Model {
        Model {
            id: id.into(),
            object: "model",
            created,
            owned_by: "system",
        }
    }
}

/// `{"object": "list", "data": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<Model>,
}
