//! `POST /v1/chat/completions`: the request, the completion and the streamed chunk.

use serde::{Deserialize, Serialize};

use super::{StreamOptions, Usage, WriteJson, write_json_str, write_json_u64};

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
        self.output_token_param().map(|(_, cap)| cap)
    }

    /// The output cap with the name of the parameter that set it, which OpenAI's 400 names.
    pub fn output_token_param(&self) -> Option<(&'static str, u32)> {
        match (self.max_completion_tokens, self.max_tokens) {
            (Some(cap), _) => Some(("max_completion_tokens", cap)),
            (None, Some(cap)) => Some(("max_tokens", cap)),
            (None, None) => None,
        }
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
    /// Characters of the text, without building it: what the token charge estimates from.
    pub fn characters(&self) -> u64 {
        match self {
            MessageContent::Text(text) => text.chars().count() as u64,
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|part| part.text.as_deref())
                .map(|text| text.chars().count() as u64)
                .sum(),
        }
    }

    /// Bytes of the text the tokenizer sees.
    pub fn text_bytes(&self) -> usize {
        match self {
            MessageContent::Text(text) => text.len(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|part| part.text.as_deref())
                .map(str::len)
                .sum(),
        }
    }

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

/// Every non-streamed chat completion goes through here, so it skips `serde_json`'s
/// field-by-field machinery (about a quarter of the server's own work per request): the keys
/// are constant bytes, and only the values go through `serde_json`'s string escaping. A
/// property test holds this to the derived `Serialize`, byte for byte.
impl WriteJson for ChatCompletion {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(br#"{"id":"#);
        write_json_str(out, &self.id)?;
        out.extend_from_slice(br#","object":"#);
        write_json_str(out, self.object)?;
        out.extend_from_slice(br#","created":"#);
        write_json_u64(out, self.created);
        out.extend_from_slice(br#","model":"#);
        write_json_str(out, &self.model)?;
        out.extend_from_slice(br#","choices":["#);
        for (position, choice) in self.choices.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"index":"#);
            write_json_u64(out, choice.index.into());
            out.extend_from_slice(br#","message":{"role":"#);
            write_json_str(out, choice.message.role)?;
            out.extend_from_slice(br#","content":"#);
            write_json_str(out, &choice.message.content)?;
            // `Option<()>` is `null` either way.
            out.extend_from_slice(br#","refusal":null},"finish_reason":"#);
            write_json_str(out, choice.finish_reason)?;
            out.extend_from_slice(br#","logprobs":null}"#);
        }
        out.extend_from_slice(br#"],"usage":"#);
        self.usage.write_json(out);
        out.extend_from_slice(br#","system_fingerprint":"#);
        write_json_str(out, self.system_fingerprint)?;
        out.extend_from_slice(br#","service_tier":"#);
        write_json_str(out, self.service_tier)?;
        out.push(b'}');
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The values the server can put in a reply's `&'static str` fields.
    const FINISH_REASONS: [&str; 3] = ["stop", "length", "content_filter"];

    fn completion() -> impl Strategy<Value = ChatCompletion> {
        // Any Unicode, with control characters, quotes and backslashes made common, since
        // those are what escaping is about.
        let text = "(\\PC|[\"\\\\\\x00-\\x1f\\x7f]){0,40}";
        let choice =
            (any::<u32>(), text, 0..FINISH_REASONS.len()).prop_map(|(index, content, reason)| {
                ChatChoice {
                    index,
                    message: AssistantMessage {
                        role: "assistant",
                        content,
                        refusal: None,
                    },
                    finish_reason: FINISH_REASONS[reason],
                    logprobs: None,
                }
            });
        (
            text,
            text,
            any::<u64>(),
            prop::collection::vec(choice, 0..4),
            any::<(u32, u32)>(),
        )
            .prop_map(|(id, model, created, choices, (prompt, completion))| {
                ChatCompletion {
                    id,
                    object: "chat.completion",
                    created,
                    model,
                    choices,
                    usage: Usage::new(u64::from(prompt), u64::from(completion)),
                    system_fingerprint: "fp_ratelab",
                    service_tier: "default",
                }
            })
    }

    proptest! {
        #[test]
        fn the_hand_written_json_is_the_derived_json(completion in completion()) {
            let mut written = Vec::new();
            completion.write_json(&mut written).unwrap_or_else(|error| panic!("{error}"));
            let derived = serde_json::to_vec(&completion).unwrap_or_else(|error| panic!("{error}"));
            prop_assert_eq!(String::from_utf8_lossy(&written), String::from_utf8_lossy(&derived));
        }
    }

    #[test]
    fn a_reply_with_escapes_and_two_choices_is_written_exactly() {
        let completion = ChatCompletion {
            id: "chatcmpl-1".to_owned(),
            object: "chat.completion",
            created: 1_700_000_000,
            model: "gpt-\"4o\"".to_owned(),
            choices: (0..2)
                .map(|index| ChatChoice {
                    index,
                    message: AssistantMessage {
                        role: "assistant",
                        content: format!("line {index}\n\ttab\\"),
                        refusal: None,
                    },
                    finish_reason: "stop",
                    logprobs: None,
                })
                .collect(),
            usage: Usage::new(3, 4),
            system_fingerprint: "fp_ratelab",
            service_tier: "default",
        };
        let mut written = Vec::new();
        completion
            .write_json(&mut written)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            String::from_utf8_lossy(&written),
            concat!(
                r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"#,
                r#""model":"gpt-\"4o\"","choices":["#,
                r#"{"index":0,"message":{"role":"assistant","content":"line 0\n\ttab\\","#,
                r#""refusal":null},"finish_reason":"stop","logprobs":null},"#,
                r#"{"index":1,"message":{"role":"assistant","content":"line 1\n\ttab\\","#,
                r#""refusal":null},"finish_reason":"stop","logprobs":null}],"#,
                r#""usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7},"#,
                r#""system_fingerprint":"fp_ratelab","service_tier":"default"}"#
            )
        );
    }
}
