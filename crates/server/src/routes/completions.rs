//! `POST /v1/completions` (legacy text completions), whole or streamed.

use axum::extract::State;
use axum::response::Response;
use model::Cost;

use crate::auth::Principal;
use crate::content::{SyntheticReply, fingerprint, reply};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::pipeline::{self, Endpoint, ModelRequest};
use crate::sse::StreamEvent;
use crate::state::AppState;
use crate::token_count::count_off_workers;
use crate::wire::completions::{
    CompletionRequest, LEGACY_DEFAULT_MAX_TOKENS, Prompt, TextChoice, TextCompletion,
};
use crate::wire::{StreamOptions, Usage};

pub async fn completions(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<JsonBody<CompletionRequest>, ApiError>,
) -> Response {
    pipeline::handle(state, principal, body, serve).await
}

async fn serve(
    state: &AppState,
    principal: &Principal,
    request: CompletionRequest,
) -> Result<Response, ApiError> {
    let choices = super::choice_count(request.n)?;
    let mut prompts: Vec<String> = match &request.prompt {
        Prompt::Text(text) => vec![text.clone()],
        Prompt::Texts(texts) => texts.clone(),
        Prompt::Tokens(tokens) => vec![format!("{tokens:?}")],
        Prompt::TokenLists(lists) => lists.iter().map(|tokens| format!("{tokens:?}")).collect(),
    };
    // Each prompt is its own request to the model, so the context window applies to each.
    let per_prompt_tokens: Vec<u64> = match &request.prompt {
        Prompt::Tokens(tokens) => vec![tokens.len() as u64],
        Prompt::TokenLists(lists) => lists.iter().map(|tokens| tokens.len() as u64).collect(),
        Prompt::Text(_) | Prompt::Texts(_) => {
            let bytes = prompts.iter().map(String::len).sum();
            let model = request.model.clone();
            let counted;
            (prompts, counted) =
                count_off_workers(state, bytes, prompts, move |counts, prompts| {
                    prompts
                        .iter()
                        .map(|prompt| counts.text(&model, prompt))
                        .collect()
                })
                .await?;
            counted
        }
    };
    let prompt_tokens: u64 = per_prompt_tokens.iter().sum();
    let cap = request.max_tokens.unwrap_or(LEGACY_DEFAULT_MAX_TOKENS);
    pipeline::check_model_request(
        state,
        ModelRequest {
            endpoint: Endpoint::Completions,
            model: &request.model,
            prompt_tokens: per_prompt_tokens.iter().copied().max().unwrap_or(0),
            output_cap: Some(("max_tokens", u64::from(cap))),
        },
    )?;
    let total_choices = choices * prompts.len().max(1) as u32;
    let admitted = pipeline::admit(
        state,
        principal,
        Cost {
            model: &request.model,
            prompt_tokens,
            prompt_characters: match &request.prompt {
                Prompt::Text(_) | Prompt::Texts(_) => Some(
                    prompts
                        .iter()
                        .map(|prompt| prompt.chars().count() as u64)
                        .sum(),
                ),
                Prompt::Tokens(_) | Prompt::TokenLists(_) => None,
            },
            max_output_tokens: Some(u64::from(cap)),
            choices: u64::from(total_choices),
        },
    )
    .await?;

    let replies: Vec<SyntheticReply> = prompts
        .iter()
        .flat_map(|prompt| {
            let prompt_fingerprint = fingerprint([request.model.as_str(), prompt]);
            (0..choices).map(move |index| (prompt_fingerprint, index))
        })
        .map(|(prompt_fingerprint, index)| {
            reply(
                state.seed(),
                prompt_fingerprint,
                index,
                &state.config().completion,
                Some(cap),
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

    let id = state.next_id("cmpl-");
    let created = state.clock().unix_seconds_at(admitted.admitted_at);
    let completion = |choices: Vec<TextChoice>, usage: Option<Usage>| TextCompletion {
        id: id.clone(),
        object: "text_completion",
        created,
        model: request.model.clone(),
        choices,
        usage,
    };
    let choice = |index: u32, text: String, finish_reason: Option<&'static str>| TextChoice {
        text,
        index,
        logprobs: None,
        finish_reason,
    };
    if request.stream == Some(true) {
        let mut events = Vec::new();
        for (reply, index) in replies.iter().zip(0..) {
            for piece in reply.pieces() {
                let chunk = completion(vec![choice(index, piece.to_owned(), None)], None);
                events.push(StreamEvent::data(super::to_json(&chunk), true));
            }
            let finish = choice(index, String::new(), Some(reply.finish_reason.as_str()));
            events.push(StreamEvent::data(
                super::to_json(&completion(vec![finish], None)),
                false,
            ));
        }
        if StreamOptions::wants_usage(request.stream_options) {
            events.push(StreamEvent::data(
                super::to_json(&completion(Vec::new(), Some(usage))),
                false,
            ));
        }
        events.push(StreamEvent::data("[DONE]".to_owned(), false));
        let in_band_error = super::in_band_server_error;
        return Ok(pipeline::stream(state, admitted, events, in_band_error));
    }
    let longest = replies
        .iter()
        .map(|reply| reply.token_count())
        .max()
        .unwrap_or(0);
    let body = completion(
        replies
            .into_iter()
            .zip(0..)
            .map(|(reply, index)| {
                let finish_reason = reply.finish_reason.as_str();
                choice(index, reply.into_text(), Some(finish_reason))
            })
            .collect(),
        Some(usage),
    );
    pipeline::serve_whole(state, admitted, longest, pipeline::JsonReply(body)).await
}
