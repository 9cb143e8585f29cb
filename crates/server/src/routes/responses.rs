//! `POST /v1/responses` (the Responses API), whole or streamed as typed events.

use axum::extract::State;
use axum::response::Response;
use model::Cost;

use crate::auth::Principal;
use crate::content::{FinishReason, fingerprint, reply};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::pipeline::{self, Endpoint, ModelRequest};
use crate::sse::StreamEvent;
use crate::state::AppState;
use crate::token_count::count_off_workers;
use crate::wire::responses::{
    IncompleteDetails, OutputItem, OutputText, ResponseObject, ResponseRequest,
    ResponseStreamEvent, ResponseUsage,
};

pub async fn responses(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<JsonBody<ResponseRequest>, ApiError>,
) -> Response {
    pipeline::handle(state, principal, body, serve).await
}

async fn serve(
    state: &AppState,
    principal: &Principal,
    request: ResponseRequest,
) -> Result<Response, ApiError> {
    let texts = request.texts();
    if texts.is_empty() {
        return Err(ApiError::InvalidParameter {
            param: "input".to_owned(),
            message:
                "Invalid value for 'input': expected a string or a list of input items with text."
                    .to_owned(),
            code: "invalid_value",
        });
    }
    let bytes = texts.iter().map(String::len).sum();
    let model = request.model.clone();
    // Characters are counted with the tokens: both walk the whole input.
    let (texts, (prompt_tokens, prompt_characters)) =
        count_off_workers(state, bytes, texts, move |counts, texts| {
            texts
                .iter()
                .fold((0u64, 0u64), |(tokens, characters), text| {
                    (
                        tokens.saturating_add(counts.text(&model, text)),
                        characters.saturating_add(text.chars().count() as u64),
                    )
                })
        })
        .await?;
    pipeline::check_model_request(
        state,
        ModelRequest {
            endpoint: Endpoint::Responses,
            model: &request.model,
            prompt_tokens,
            output_cap: request
                .max_output_tokens
                .map(|cap| ("max_output_tokens", u64::from(cap))),
        },
    )?;
    let admitted = pipeline::admit(
        state,
        principal,
        Cost {
            model: &request.model,
            prompt_tokens,
            prompt_characters: Some(prompt_characters),
            max_output_tokens: request.max_output_tokens.map(u64::from),
            choices: 1,
        },
    )
    .await?;
    let prompt_fingerprint = fingerprint(
        std::iter::once(request.model.as_str()).chain(texts.iter().map(String::as_str)),
    );
    let generated = reply(
        state.seed(),
        prompt_fingerprint,
        0,
        &state.config().completion,
        request.max_output_tokens,
    );
    let output_tokens = generated.token_count();
    pipeline::account(
        state,
        principal,
        &request.model,
        prompt_tokens,
        output_tokens,
    );

    let suffix = state.next_request_id()[4..].to_owned();
    let item_id = format!("msg_{suffix}");
    let text = generated.text();
    let incomplete = generated.finish_reason == FinishReason::Length;
    let finished_item = OutputItem {
        kind: "message",
        id: item_id.clone(),
        status: if incomplete {
            "incomplete"
        } else {
            "completed"
        },
        role: "assistant",
        content: vec![OutputText::new(text.to_owned())],
    };
    let base = ResponseObject {
        id: format!("resp_{suffix}"),
        object: "response",
        created_at: state.clock().unix_seconds_at(admitted.admitted_at),
        status: "in_progress",
        error: None,
        incomplete_details: None,
        instructions: request.instructions.clone(),
        max_output_tokens: request.max_output_tokens,
        model: request.model.clone(),
        output: Vec::new(),
        parallel_tool_calls: true,
        temperature: 1.0,
        tool_choice: "auto",
        tools: Vec::new(),
        top_p: 1.0,
        metadata: serde_json::Map::new(),
        usage: None,
    };
    let finished = ResponseObject {
        status: if incomplete {
            "incomplete"
        } else {
            "completed"
        },
        incomplete_details: incomplete.then_some(IncompleteDetails {
            reason: "max_output_tokens",
        }),
        output: vec![finished_item.clone()],
        usage: Some(ResponseUsage::new(prompt_tokens, output_tokens)),
        ..base.clone()
    };
    if request.stream != Some(true) {
        let pieces = generated.token_count();
        return pipeline::serve_whole(state, admitted, pieces, pipeline::JsonReply(finished)).await;
    }

    let mut sequence = 0..;
    let mut next = || sequence.next().unwrap_or_default();
    let opened_item = OutputItem {
        status: "in_progress",
        content: Vec::new(),
        ..finished_item.clone()
    };
    let mut events = vec![
        ResponseStreamEvent::Created {
            sequence_number: next(),
            response: base.clone(),
        },
        ResponseStreamEvent::InProgress {
            sequence_number: next(),
            response: base,
        },
        ResponseStreamEvent::OutputItemAdded {
            sequence_number: next(),
            output_index: 0,
            item: opened_item,
        },
        ResponseStreamEvent::ContentPartAdded {
            sequence_number: next(),
            item_id: item_id.clone(),
            output_index: 0,
            content_index: 0,
            part: OutputText::new(""),
        },
    ];
    let first_delta = events.len();
    for piece in generated.pieces() {
        events.push(ResponseStreamEvent::OutputTextDelta {
            sequence_number: next(),
            item_id: item_id.clone(),
            output_index: 0,
            content_index: 0,
            delta: piece.to_owned(),
        });
    }
    let after_deltas = events.len();
    events.extend([
        ResponseStreamEvent::OutputTextDone {
            sequence_number: next(),
            item_id: item_id.clone(),
            output_index: 0,
            content_index: 0,
            text: text.to_owned(),
        },
        ResponseStreamEvent::ContentPartDone {
            sequence_number: next(),
            item_id,
            output_index: 0,
            content_index: 0,
            part: OutputText::new(text),
        },
        ResponseStreamEvent::OutputItemDone {
            sequence_number: next(),
            output_index: 0,
            item: finished_item,
        },
    ]);
    let sequence_number = next();
    events.push(if incomplete {
        ResponseStreamEvent::Incomplete {
            sequence_number,
            response: finished,
        }
    } else {
        ResponseStreamEvent::Completed {
            sequence_number,
            response: finished,
        }
    });
    let events = events
        .into_iter()
        .enumerate()
        .map(|(position, event)| StreamEvent {
            name: Some(event.name()),
            data: super::to_json(&event),
            carries_token: (first_delta..after_deltas).contains(&position),
        })
        .collect();
    let in_band_error = || {
        let error = ApiError::ServerError.error_object();
        let data = serde_json::json!({
            "type": "error",
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "sequence_number": next(),
        });
        StreamEvent {
            name: Some("error"),
            data: data.to_string(),
            carries_token: false,
        }
    };
    Ok(pipeline::stream(state, admitted, events, in_band_error))
}
