//! `POST /v1/embeddings`: deterministic unit vectors, as floats or base64.

use axum::extract::State;
use axum::response::Response;
use base64::Engine;

use crate::auth::Principal;
use crate::content::embedding;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::limits::Charge;
use crate::pipeline;
use crate::state::AppState;
use crate::wire::embeddings::{
    Embedding, EmbeddingInput, EmbeddingList, EmbeddingRequest, EmbeddingUsage, EmbeddingVector,
    EncodingFormat,
};

/// The native width of an embedding model's vectors.
fn native_dimensions(model: &str) -> usize {
    match model {
        "text-embedding-3-large" => 3072,
        _ => 1536,
    }
}

pub async fn embeddings(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<JsonBody<EmbeddingRequest>, ApiError>,
) -> Response {
    pipeline::handle(state, principal, body, serve).await
}

async fn serve(
    state: &AppState,
    principal: &Principal,
    request: EmbeddingRequest,
) -> Result<Response, ApiError> {
    let native = native_dimensions(&request.model);
    let dimensions = match request.dimensions {
        None => native,
        Some(wanted) if (1..=native as u32).contains(&wanted) => wanted as usize,
        Some(wanted) => {
            return Err(ApiError::InvalidParameter {
                param: "dimensions".to_owned(),
                message: format!(
                    "Invalid value for 'dimensions': {wanted}; {} supports 1 to {native}.",
                    request.model
                ),
                code: "invalid_value",
            });
        }
    };
    let (texts, prompt_tokens): (Vec<String>, u64) = {
        let count = |text: &String| state.token_counts().text(&request.model, text);
        match request.input {
            EmbeddingInput::Text(text) => {
                let tokens = count(&text);
                (vec![text], tokens)
            }
            EmbeddingInput::Texts(texts) => {
                let tokens = texts.iter().map(count).sum();
                (texts, tokens)
            }
            EmbeddingInput::Tokens(tokens) => (vec![format!("{tokens:?}")], tokens.len() as u64),
            EmbeddingInput::TokenLists(lists) => {
                let tokens = lists.iter().map(|list| list.len() as u64).sum();
                (
                    lists.iter().map(|list| format!("{list:?}")).collect(),
                    tokens,
                )
            }
        }
    };
    if texts.is_empty() || texts.iter().any(String::is_empty) {
        return Err(ApiError::InvalidParameter {
            param: "input".to_owned(),
            message: "'input' must not be empty nor contain empty strings.".to_owned(),
            code: "invalid_value",
        });
    }
    let admitted = pipeline::admit(
        state,
        principal,
        Charge {
            model: &request.model,
            prompt_tokens,
            // Embeddings are charged their input tokens, counted exactly.
            prompt_characters: None,
            max_output_tokens: None,
            choices: 1,
        },
    )
    .await?;
    pipeline::account(state, principal, &request.model, prompt_tokens, 0);

    let base64 = request.encoding_format == Some(EncodingFormat::Base64);
    let data = texts
        .iter()
        .zip(0..)
        .map(|(text, index)| {
            let vector = embedding(state.config().seed, &request.model, text, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Float(vector)
            };
            Embedding {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let body = EmbeddingList {
        object: "list",
        data,
        model: request.model.clone(),
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    pipeline::serve_whole(state, admitted, 1, pipeline::JsonReply(body)).await
}
