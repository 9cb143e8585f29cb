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

/// A response body that writes its own JSON: compact, exactly as `serde_json::to_writer`
/// writes its `Serialize` form. The default is `serde_json` itself; the chat completion, the
/// reply on the hot path, writes its fixed shape directly (see [`chat::ChatCompletion`]).
pub trait WriteJson: Serialize {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

/// Writes `value` as a JSON string, escaped as `serde_json` escapes it.
pub(crate) fn write_json_str(out: &mut Vec<u8>, value: &str) -> serde_json::Result<()> {
    serde_json::to_writer(out, value)
}

/// Writes `value` as a JSON number.
pub(crate) fn write_json_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Token accounting for chat and legacy completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    /// Writes the same bytes as `serde_json::to_writer`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"prompt_tokens":"#);
        write_json_u64(out, self.prompt_tokens);
        out.extend_from_slice(br#","completion_tokens":"#);
        write_json_u64(out, self.completion_tokens);
        out.extend_from_slice(br#","total_tokens":"#);
        write_json_u64(out, self.total_tokens);
        out.push(b'}');
    }

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
