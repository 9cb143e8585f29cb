//! `POST /v1/chat/completions`, whole or streamed.

use std::borrow::Cow;

use axum::extract::State;
use axum::response::Response;
use model::Cost;

use crate::auth::Principal;
use crate::content::{SyntheticReply, fingerprint, reply};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::pipeline::{self, Admitted, Endpoint, ModelRequest};
use crate::sse::StreamEvent;
use crate::state::AppState;
use crate::token_count::count_off_workers;
use crate::wire::chat::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest,
    ChunkChoice, Delta, MessageContent, UsageSlot,
};
use crate::wire::{StreamOptions, Usage};

const SYSTEM_FINGERPRINT: &str = "fp_ratelab";

pub async fn chat_completions(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<JsonBody<ChatCompletionRequest>, ApiError>,
) -> Response {
    pipeline::handle(state, principal, body, serve).await
}

async fn serve(
    state: &AppState,
    principal: &Principal,
    request: ChatCompletionRequest,
) -> Result<Response, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::InvalidParameter {
            param: "messages".to_owned(),
            message: "[] is too short - 'messages'".to_owned(),
            code: "empty_array",
        });
    }
    let choices = super::choice_count(request.n)?;
    let prompt_bytes = request
        .messages
        .iter()
        .map(|message| {
            message.role.len()
                + message
                    .content
                    .as_ref()
                    .map_or(0, MessageContent::text_bytes)
                + message.name.as_ref().map_or(0, String::len)
        })
        .sum();
    // Characters are counted with the tokens: both walk the whole prompt.
    let (request, (prompt_tokens, prompt_characters)) =
        count_off_workers(state, prompt_bytes, request, |counts, request| {
            let characters = request
                .messages
                .iter()
                .filter_map(|message| message.content.as_ref())
                .map(MessageContent::characters)
                .fold(0u64, u64::saturating_add);
            (counts.chat(&request.model, &request.messages), characters)
        })
        .await?;
    let cap = request.output_token_cap();
    pipeline::check_model_request(
        state,
        ModelRequest {
            endpoint: Endpoint::ChatCompletions,
            model: &request.model,
            prompt_tokens,
            output_cap: request
                .output_token_param()
                .map(|(param, cap)| (param, u64::from(cap))),
        },
    )?;
    let admitted = pipeline::admit(
        state,
        principal,
        Cost {
            model: &request.model,
            prompt_tokens,
            prompt_characters: Some(prompt_characters),
            max_output_tokens: cap.map(u64::from),
            choices: u64::from(choices),
        },
    )
    .await?;

    // The parts borrow from the request; only multi-part contents need joining.
    let mut prompt_parts: Vec<Cow<'_, str>> = Vec::with_capacity(1 + 2 * request.messages.len());
    prompt_parts.push(Cow::Borrowed(&request.model));
    for message in &request.messages {
        prompt_parts.push(Cow::Borrowed(&message.role));
        prompt_parts.extend(message.content.as_ref().map(|content| match content {
            MessageContent::Text(text) => Cow::Borrowed(text.as_str()),
            parts => Cow::Owned(parts.text()),
        }));
    }
    let prompt_fingerprint = fingerprint(prompt_parts.iter().map(AsRef::as_ref));
    // The parts borrow the request, whose model moves into the reply below.
    drop(prompt_parts);
    let replies: Vec<SyntheticReply> = (0..choices)
        .map(|index| {
            reply(
                state.seed(),
                prompt_fingerprint,
                index,
                &state.config().completion,
                cap,
            )
        })
        .collect();
    let completion_tokens: u64 = replies.iter().map(SyntheticReply::token_count).sum();
    let usage = Usage::new(prompt_tokens, completion_tokens);
    pipeline::account(
        state,
        principal,
        &request.model,
        prompt_tokens,
        completion_tokens,
    );

    let id = state.next_id("chatcmpl-");
    let created = state.clock().unix_seconds_at(admitted.admitted_at);
    if request.stream == Some(true) {
        let stream = ChunkStream {
            id,
            created,
            model: request.model.clone(),
            include_usage: StreamOptions::wants_usage(request.stream_options),
        };
        return Ok(stream_reply(state, admitted, &stream, &replies, usage));
    }
    let longest = replies
        .iter()
        .map(|reply| reply.token_count())
        .max()
        .unwrap_or(0);
    let completion = ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: request.model,
        choices: replies
            .into_iter()
            .zip(0..)
            .map(|(reply, index)| ChatChoice {
                index,
                finish_reason: reply.finish_reason.as_str(),
                message: AssistantMessage {
                    role: "assistant",
                    content: reply.into_text(),
                    refusal: None,
                },
                logprobs: None,
            })
            .collect(),
        usage,
        system_fingerprint: SYSTEM_FINGERPRINT,
        service_tier: "default",
    };
    pipeline::serve_whole(state, admitted, longest, pipeline::JsonReply(completion)).await
}

struct ChunkStream {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
}

impl ChunkStream {
    fn event(
        &self,
        choices: Vec<ChunkChoice>,
        usage: Option<Usage>,
        carries_token: bool,
    ) -> StreamEvent {
        let usage = match (self.include_usage, usage) {
            (false, _) => UsageSlot::Absent,
            (true, None) => UsageSlot::Null,
            (true, Some(usage)) => UsageSlot::Value(usage),
        };
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            system_fingerprint: SYSTEM_FINGERPRINT,
            usage,
        };
        StreamEvent::data(super::to_json(&chunk), carries_token)
    }
}

fn delta_choice(index: u32, delta: Delta, finish_reason: Option<&'static str>) -> ChunkChoice {
    ChunkChoice {
        index,
        delta,
        finish_reason,
        logprobs: None,
    }
}

fn stream_reply(
    state: &AppState,
    admitted: Admitted,
    stream: &ChunkStream,
    replies: &[SyntheticReply],
    usage: Usage,
) -> Response {
    let mut events = Vec::new();
    for (reply, index) in replies.iter().zip(0..) {
        let opening = Delta {
            role: Some("assistant"),
            content: Some(String::new()),
        };
        events.push(stream.event(vec![delta_choice(index, opening, None)], None, false));
        for piece in reply.pieces() {
            let delta = Delta {
                role: None,
                content: Some(piece.to_owned()),
            };
            events.push(stream.event(vec![delta_choice(index, delta, None)], None, true));
        }
        let finish = delta_choice(index, Delta::default(), Some(reply.finish_reason.as_str()));
        events.push(stream.event(vec![finish], None, false));
    }
    if stream.include_usage {
        events.push(stream.event(Vec::new(), Some(usage), false));
    }
    events.push(StreamEvent::data("[DONE]".to_owned(), false));
    pipeline::stream(state, admitted, events, super::in_band_server_error)
}
