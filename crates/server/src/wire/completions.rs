//! `POST /v1/completions` (legacy): the request and the text completion.

use serde::{Deserialize, Serialize};

use super::{StreamOptions, Usage};

/// Legacy completions default to 16 output tokens when `max_tokens` is absent.
pub const LEGACY_DEFAULT_MAX_TOKENS: u32 = 16;

/// The request fields the mock reads.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: Prompt,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

/// A prompt: a string, a list of strings, or pre-tokenized input.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// A legacy text completion, streamed or not (a stream sends several with partial `text`).
#[derive(Debug, Clone, Serialize)]
pub struct TextCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<TextChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl super::WriteJson for TextCompletion {}

/// One choice of a text completion.
#[derive(Debug, Clone, Serialize)]
pub struct TextChoice {
    pub text: String,
    pub index: u32,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}
