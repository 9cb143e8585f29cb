//! `POST /v1/embeddings`: deterministic unit vectors, as floats or base64, within OpenAI's
//! per-request limits and streamed one vector at a time.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use base64::Engine;
use model::Cost;

use crate::auth::Principal;
use crate::content::embedding;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::pipeline;
use crate::state::AppState;
use crate::token_count::count_off_workers;
use crate::wire::embeddings::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingUsage, EmbeddingVector, EncodingFormat,
};

/// The most inputs one request may carry (OpenAI's API reference: "any array must be 2048
/// dimensions or less"; docs/model-limits.md).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;
/// The most tokens one request may carry, summed over its inputs (OpenAI's API reference: "all
/// embedding models enforce a maximum of 300,000 tokens summed across all inputs").
pub const MAX_EMBEDDING_REQUEST_TOKENS: u64 = 300_000;

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
    // Refused before any input is counted or copied: an unknown model, too many inputs.
    let Some(model_limits) = state.model().request_limits(&request.model) else {
        return Err(ApiError::ModelNotFound {
            model: request.model,
        });
    };
    let items = match &request.input {
        EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
        EmbeddingInput::Texts(texts) => texts.len(),
        EmbeddingInput::TokenLists(lists) => lists.len(),
    };
    if items > MAX_EMBEDDING_INPUTS {
        return Err(ApiError::EmbeddingInputsInvalid);
    }
    let (texts, per_input_tokens): (Vec<String>, Vec<u64>) = match request.input {
        EmbeddingInput::Text(text) => count_texts(state, &request.model, vec![text]).await?,
        EmbeddingInput::Texts(texts) => count_texts(state, &request.model, texts).await?,
        EmbeddingInput::Tokens(tokens) => (vec![format!("{tokens:?}")], vec![tokens.len() as u64]),
        EmbeddingInput::TokenLists(lists) => (
            lists.iter().map(|list| format!("{list:?}")).collect(),
            lists.iter().map(|list| list.len() as u64).collect(),
        ),
    };
    if texts.is_empty() || texts.iter().any(String::is_empty) {
        return Err(ApiError::InvalidParameter {
            param: "input".to_owned(),
            message: "'input' must not be empty nor contain empty strings.".to_owned(),
            code: "invalid_value",
        });
    }
    if let Some(limit) = model_limits.context_window
        && let Some(index) = per_input_tokens.iter().position(|&tokens| tokens > limit)
    {
        return Err(ApiError::EmbeddingInputTooLong { index, limit });
    }
    let prompt_tokens = per_input_tokens
        .iter()
        .fold(0u64, |sum, &n| sum.saturating_add(n));
    if prompt_tokens > MAX_EMBEDDING_REQUEST_TOKENS {
        return Err(ApiError::EmbeddingRequestTooLarge {
            requested: prompt_tokens,
            limit: MAX_EMBEDDING_REQUEST_TOKENS,
        });
    }
    let admitted = pipeline::admit(
        state,
        principal,
        Cost {
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

    let list = ListWriter {
        seed: state.seed(),
        model: request.model,
        dimensions,
        base64: request.encoding_format == Some(EncodingFormat::Base64),
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    pipeline::serve_whole(state, admitted, 1, list.into_response(texts)).await
}

/// Counts each of `texts` in `model`'s encoding, off the async workers when they are long.
async fn count_texts(
    state: &AppState,
    model: &str,
    texts: Vec<String>,
) -> Result<(Vec<String>, Vec<u64>), ApiError> {
    let bytes = texts.iter().map(String::len).sum();
    let model = model.to_owned();
    count_off_workers(state, bytes, texts, move |counts, texts| {
        texts.iter().map(|text| counts.text(&model, text)).collect()
    })
    .await
}

/// Writes `{"object": "list", "data": [...], "model", "usage"}` as a stream of one vector per
/// frame. 2,048 inputs of 3,072 floats are about 130 MB of JSON; generated lazily, the memory a
/// reply holds is its inputs (within `max_body_bytes`) and one vector, and a slow reader slows
/// the generation instead of piling it up.
struct ListWriter {
    seed: u64,
    model: String,
    dimensions: usize,
    base64: bool,
    usage: EmbeddingUsage,
}

impl ListWriter {
    fn head() -> Bytes {
        Bytes::from_static(br#"{"object":"list","data":["#)
    }

    /// The vector of input `index`, with the comma that separates it from the one before.
    fn item(&self, index: u32, text: &str) -> Bytes {
        let vector = embedding(self.seed, &self.model, text, self.dimensions);
        let embedding = if self.base64 {
            let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            EmbeddingVector::Float(vector)
        };
        let item = Embedding {
            object: "embedding",
            index,
            embedding,
        };
        let mut out = Vec::with_capacity(64 + self.dimensions * 12);
        if index > 0 {
            out.push(b',');
        }
        // Plain structs of numbers and strings always serialize.
        let _ = serde_json::to_writer(&mut out, &item);
        Bytes::from(out)
    }

    fn tail(&self) -> Bytes {
        let mut out = Vec::with_capacity(96 + self.model.len());
        out.extend_from_slice(br#"],"model":"#);
        let _ = serde_json::to_writer(&mut out, &self.model);
        out.extend_from_slice(br#","usage":"#);
        let _ = serde_json::to_writer(&mut out, &self.usage);
        out.push(b'}');
        Bytes::from(out)
    }

    fn into_response(self, texts: Vec<String>) -> Response {
        const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
        let tail = self.tail();
        let items = texts
            .into_iter()
            .zip(0..)
            .map(move |(text, index)| self.item(index, &text));
        let frames = std::iter::once(ListWriter::head())
            .chain(items)
            .chain(std::iter::once(tail))
            .map(Ok::<Bytes, std::convert::Infallible>);
        let mut response = Response::new(Body::from_stream(futures_util::stream::iter(frames)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, APPLICATION_JSON);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::embeddings::EmbeddingList;
    use http_body_util::BodyExt;

    /// The streamed list is byte for byte what the derived `Serialize` of the whole list writes.
    #[tokio::test]
    async fn the_streamed_list_equals_the_serialized_list() {
        for (base64, texts) in [
            (false, vec!["alpha".to_owned()]),
            (
                false,
                vec!["alpha".to_owned(), "beta".to_owned(), "γ\"".to_owned()],
            ),
            (true, vec!["alpha".to_owned(), "beta".to_owned()]),
        ] {
            let writer = ListWriter {
                seed: 7,
                model: "text-embedding-3-small".to_owned(),
                dimensions: 8,
                base64,
                usage: EmbeddingUsage {
                    prompt_tokens: 3,
                    total_tokens: 3,
                },
            };
            let whole = EmbeddingList {
                object: "list",
                data: texts
                    .iter()
                    .zip(0..)
                    .map(|(text, index)| {
                        let vector = embedding(7, "text-embedding-3-small", text, 8);
                        Embedding {
                            object: "embedding",
                            index,
                            embedding: if base64 {
                                let bytes: Vec<u8> =
                                    vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                                EmbeddingVector::Base64(
                                    base64::engine::general_purpose::STANDARD.encode(bytes),
                                )
                            } else {
                                EmbeddingVector::Float(vector)
                            },
                        }
                    })
                    .collect(),
                model: "text-embedding-3-small".to_owned(),
                usage: writer.usage,
            };
            let expected = serde_json::to_vec(&whole).unwrap();
            let streamed = writer
                .into_response(texts)
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes();
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&expected)
            );
        }
    }
}
