//! OpenAI's JSON shapes as the official SDKs send and parse them; they never leave this crate.
//!
//! Requests are parsed leniently (unknown fields are ignored, as OpenAI does for fields a model
//! does not use) so that every SDK version's extra parameters pass; responses carry every field
//! the SDKs read.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod models;
pub mod responses;

use serde::{Deserialize, Serialize};

/// Token accounting for chat and legacy completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// `stream_options` of chat and legacy completions.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

impl StreamOptions {
    /// Whether a stream ends with a usage chunk: only when the request asks for it.
    pub fn wants_usage(options: Option<StreamOptions>) -> bool {
        options.and_then(|options| options.include_usage) == Some(true)
    }
}
