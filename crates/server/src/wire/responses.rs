//! `POST /v1/responses`: the request, the response object and its streamed events.

use serde::{Deserialize, Serialize};

/// The request fields the mock reads. `input` is a string or a list of items whose shapes vary
/// by item type, so it stays a JSON value and only its text is extracted.
#[derive(Debug, Clone, Deserialize)]
pub struct ResponseRequest {
    pub model: String,
    pub input: serde_json::Value,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub stream: Option<bool>,
}

impl ResponseRequest {
    /// Every piece of text in `instructions` and `input`, in order, for token counting.
    pub fn texts(&self) -> Vec<String> {
        let mut texts: Vec<String> = self.instructions.iter().cloned().collect();
        collect_texts(&self.input, &mut texts);
        texts
    }
}

fn collect_texts(value: &serde_json::Value, texts: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => texts.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_texts(item, texts)),
        serde_json::Value::Object(fields) => {
            for key in ["content", "text"] {
                if let Some(inner) = fields.get(key) {
                    collect_texts(inner, texts);
                }
            }
        }
        _ => {}
    }
}

/// A response object, as returned whole or carried by `response.created`,
/// `response.completed` and `response.incomplete`.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseObject {
    pub id: String,
    pub object: &'static str,
    pub created_at: u64,
    pub status: &'static str,
    pub error: Option<()>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub model: String,
    pub output: Vec<OutputItem>,
    pub parallel_tool_calls: bool,
    pub temperature: f64,
    pub tool_choice: &'static str,
    pub tools: Vec<()>,
    pub top_p: f64,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub usage: Option<ResponseUsage>,
}

impl super::WriteJson for ResponseObject {}

/// Why a response stopped early.
#[derive(Debug, Clone, Serialize)]
pub struct IncompleteDetails {
    pub reason: &'static str,
}

/// One output item; the mock only produces assistant messages.
#[derive(Debug, Clone, Serialize)]
pub struct OutputItem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub status: &'static str,
    pub role: &'static str,
    pub content: Vec<OutputText>,
}

/// `{"type": "output_text", "text", "annotations": []}`.
#[derive(Debug, Clone, Serialize)]
pub struct OutputText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    pub annotations: Vec<()>,
}

impl OutputText {
    pub fn new(text: impl Into<String>) -> OutputText {
        OutputText {
            kind: "output_text",
            text: text.into(),
            annotations: Vec::new(),
        }
    }
}

/// Token accounting of the Responses API.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: CachedTokens,
    pub output_tokens: u64,
    pub output_tokens_details: ReasoningTokens,
    pub total_tokens: u64,
}

impl ResponseUsage {
    pub fn new(input_tokens: u64, output_tokens: u64) -> ResponseUsage {
        ResponseUsage {
            input_tokens,
            input_tokens_details: CachedTokens { cached_tokens: 0 },
            output_tokens,
            output_tokens_details: ReasoningTokens {
                reasoning_tokens: 0,
            },
            total_tokens: input_tokens + output_tokens,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CachedTokens {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReasoningTokens {
    pub reasoning_tokens: u64,
}

/// One streamed event; the SSE `event:` line repeats `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum ResponseStreamEvent {
    #[serde(rename = "response.created")]
    Created {
        sequence_number: u64,
        response: ResponseObject,
    },
    #[serde(rename = "response.in_progress")]
    InProgress {
        sequence_number: u64,
        response: ResponseObject,
    },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        sequence_number: u64,
        output_index: u32,
        item: OutputItem,
    },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        sequence_number: u64,
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: OutputText,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        sequence_number: u64,
        item_id: String,
        output_index: u32,
        content_index: u32,
        delta: String,
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        sequence_number: u64,
        item_id: String,
        output_index: u32,
        content_index: u32,
        text: String,
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        sequence_number: u64,
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: OutputText,
    },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        sequence_number: u64,
        output_index: u32,
        item: OutputItem,
    },
    #[serde(rename = "response.completed")]
    Completed {
        sequence_number: u64,
        response: ResponseObject,
    },
    /// The last event of a response cut short (by `max_output_tokens`), in place of
    /// `response.completed`; its response carries `status: "incomplete"` and the reason.
    #[serde(rename = "response.incomplete")]
    Incomplete {
        sequence_number: u64,
        response: ResponseObject,
    },
}

impl ResponseStreamEvent {
    /// The `event:` name, identical to the `type` field.
    pub fn name(&self) -> &'static str {
        match self {
            ResponseStreamEvent::Created { .. } => "response.created",
            ResponseStreamEvent::InProgress { .. } => "response.in_progress",
            ResponseStreamEvent::OutputItemAdded { .. } => "response.output_item.added",
            ResponseStreamEvent::ContentPartAdded { .. } => "response.content_part.added",
            ResponseStreamEvent::OutputTextDelta { .. } => "response.output_text.delta",
            ResponseStreamEvent::OutputTextDone { .. } => "response.output_text.done",
            ResponseStreamEvent::ContentPartDone { .. } => "response.content_part.done",
            ResponseStreamEvent::OutputItemDone { .. } => "response.output_item.done",
            ResponseStreamEvent::Completed { .. } => "response.completed",
            ResponseStreamEvent::Incomplete { .. } => "response.incomplete",
        }
    }
}
