//! `POST /v1/embeddings`: the request and the list of vectors (float or base64).

use serde::{Deserialize, Serialize};

/// The request fields the mock reads.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default)]
    pub encoding_format: Option<EncodingFormat>,
    #[serde(default)]
    pub dimensions: Option<u32>,
}

/// What to embed: one or many strings, or pre-tokenized input.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// How vectors are encoded in the response. The SDKs ask for base64 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    Float,
    Base64,
}

/// `{"object": "list", "data": [...], "model", "usage"}`.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingList {
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

impl super::WriteJson for EmbeddingList {}

/// One vector.
#[derive(Debug, Clone, Serialize)]
pub struct Embedding {
    pub object: &'static str,
    pub index: u32,
    pub embedding: EmbeddingVector,
}

/// Floats, or base64 of little-endian float32 bytes.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

/// Embeddings charge input tokens only.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}
