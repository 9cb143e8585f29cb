//! `POST /v1/chat/completions`: the request, the completion and the streamed chunk.

use serde::{Deserialize, Serialize};

use super::{StreamOptions, Usage};

/// The request fields the mock reads; everything else the SDKs send is accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

impl ChatCompletionRequest {
    /// `max_completion_tokens` supersedes the deprecated `max_tokens`.
    pub fn output_token_cap(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A message body: a plain string or a list of typed parts (only text parts carry tokens here).
#[derive(Debug, Clone)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl<'de> Deserialize<'de> for MessageContent {
    /// Decides by the JSON type it meets, where `#[serde(untagged)]` would first buffer the
    /// value and then try each variant: every chat message has a content, so this runs on
    /// every request.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> serde::de::Visitor<'de> for ContentVisitor {
            type Value = MessageContent;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a string or an array of content parts")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                sequence: A,
            ) -> Result<MessageContent, A::Error> {
                let parts = Deserialize::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(sequence),
                )?;
                Ok(MessageContent::Parts(parts))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One part of a multi-part message.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl MessageContent {
    /// The text the tokenizer sees: the string, or the text parts joined.
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(text) => text.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|part| part.text.as_deref())
                .collect::<Vec<_>>()
                .join(""),
        }
    }
}

/// A non-streamed chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
    pub system_fingerprint: &'static str,
    pub service_tier: &'static str,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: &'static str,
    pub logprobs: Option<()>,
}

/// The assistant's reply.
#[derive(Debug, Clone, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
    pub refusal: Option<()>,
}

/// One `data:` event of a streamed chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    pub system_fingerprint: &'static str,
    /// Present (as null until the last chunk) only when `include_usage` was asked for.
    #[serde(skip_serializing_if = "UsageSlot::is_absent")]
    pub usage: UsageSlot,
}

/// Whether a chunk carries a `usage` field and what it holds.
#[derive(Debug, Clone, Copy)]
pub enum UsageSlot {
    Absent,
    Null,
    Value(Usage),
}

impl UsageSlot {
    fn is_absent(&self) -> bool {
        matches!(self, UsageSlot::Absent)
    }
}

impl Serialize for UsageSlot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            UsageSlot::Absent | UsageSlot::Null => serializer.serialize_none(),
            UsageSlot::Value(usage) => usage.serialize(serializer),
        }
    }
}

/// One choice's delta within a chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<&'static str>,
    pub logprobs: Option<()>,
}

/// The incremental part of a streamed message.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}
