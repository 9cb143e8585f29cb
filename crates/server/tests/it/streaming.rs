//! SSE streams: chunk sequence, `include_usage`, Responses API events, and latency pacing on
//! the manual clock.

use std::time::Duration;

use model::{HumanDuration, LatencyConfig, LengthDistribution, ServerConfig};
use serde_json::{Value, json};

use crate::support::{chat_body, manual_config, post, router, sse_events};

fn data_events(body: &str) -> Vec<String> {
    sse_events(body).into_iter().map(|(_, data)| data).collect()
}

#[tokio::test]
async fn a_chat_stream_opens_with_the_role_and_ends_with_usage_and_done() {
    let (_, app) = router(ServerConfig {
        completion: LengthDistribution::Fixed { tokens: 7 },
        ..manual_config()
    });
    let mut body = chat_body("gpt-4o", 100);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let reply = post(&app, "/v1/chat/completions", body.clone()).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = data_events(&reply.text());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(chunks[0]["usage"].is_null() && chunks[0].get("usage").is_some());
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 7);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let streamed: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();

    body["stream"] = json!(false);
    let whole = post(&app, "/v1/chat/completions", body).await.json();
    assert_eq!(whole["choices"][0]["message"]["content"], streamed.as_str());
}

#[tokio::test]
async fn without_include_usage_chunks_carry_no_usage_field() {
    let (_, app) = router(manual_config());
    let mut body = chat_body("gpt-4o", 4);
    body["stream"] = json!(true);
    let events = data_events(&post(&app, "/v1/chat/completions", body).await.text());
    for data in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert!(chunk.get("usage").is_none(), "{chunk}");
    }
    let finish: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn a_legacy_completion_streams_text_pieces() {
    let (_, app) = router(manual_config());
    let reply = post(
        &app,
        "/v1/completions",
        json!({"model": "gpt-3.5-turbo", "prompt": "hi", "max_tokens": 3, "stream": true}),
    )
    .await;
    let events = data_events(&reply.text());
    assert_eq!(
        events.len(),
        3 + 1 + 1,
        "three pieces, a finish chunk and [DONE]: {events:?}"
    );
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "text_completion");
    assert!(first["choices"][0]["text"].is_string());
}

#[tokio::test]
async fn a_responses_stream_sends_typed_events_in_order() {
    let (_, app) = router(ServerConfig {
        completion: LengthDistribution::Fixed { tokens: 4 },
        ..manual_config()
    });
    let reply = post(
        &app,
        "/v1/responses",
        json!({"model": "gpt-4o", "input": "hi", "stream": true}),
    )
    .await;
    let events = sse_events(&reply.text());
    let names: Vec<&str> = events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let parsed: Vec<Value> = events
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    for (index, (event, (name, _))) in parsed.iter().zip(&events).enumerate() {
        assert_eq!(event["type"].as_str(), name.as_deref());
        assert_eq!(event["sequence_number"], index);
    }
    let deltas: String = parsed
        .iter()
        .filter_map(|event| event["delta"].as_str())
        .collect();
    let completed = &parsed.last().unwrap()["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        deltas.as_str()
    );
    assert_eq!(completed["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn a_responses_stream_cut_by_max_output_tokens_ends_with_response_incomplete() {
    let (_, app) = router(ServerConfig {
        completion: LengthDistribution::Fixed { tokens: 10 },
        ..manual_config()
    });
    let reply = post(
        &app,
        "/v1/responses",
        json!({"model": "gpt-4o", "input": "hi", "max_output_tokens": 3, "stream": true}),
    )
    .await;
    let events = sse_events(&reply.text());
    let (name, data) = events.last().unwrap();
    // OpenAI ends a stream cut short with `response.incomplete`, never `response.completed`.
    assert_eq!(name.as_deref(), Some("response.incomplete"));
    assert!(
        events
            .iter()
            .all(|(name, _)| name.as_deref() != Some("response.completed"))
    );
    let last: Value = serde_json::from_str(data).unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["sequence_number"], events.len() - 1);
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 3);
    let item_done: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(item_done["item"]["status"], "incomplete");
}

async fn let_tasks_run() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

fn paced_config() -> ServerConfig {
    ServerConfig {
        completion: LengthDistribution::Fixed { tokens: 3 },
        latency: LatencyConfig {
            ttft: HumanDuration(Duration::from_millis(500)),
            per_output_token: HumanDuration(Duration::from_millis(100)),
            ..LatencyConfig::instant()
        },
        ..manual_config()
    }
}

#[tokio::test]
async fn a_whole_reply_waits_ttft_plus_per_token_time_on_the_manual_clock() {
    let (state, app) = router(paced_config());
    let pending =
        tokio::spawn(
            async move { post(&app, "/v1/chat/completions", chat_body("gpt-4o", 100)).await },
        );
    let_tasks_run().await;
    assert!(
        !pending.is_finished(),
        "a reply before any server time passed"
    );
    state.clock().advance(Duration::from_millis(699)).unwrap();
    let_tasks_run().await;
    assert!(
        !pending.is_finished(),
        "500 ms TTFT + 2 x 100 ms have not passed yet"
    );
    state.clock().advance(Duration::from_millis(1)).unwrap();
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("openai-processing-ms"), Some("700"));
}

#[tokio::test]
async fn a_stream_is_paced_token_by_token_on_the_manual_clock() {
    let (state, app) = router(paced_config());
    let mut body = chat_body("gpt-4o", 100);
    body["stream"] = json!(true);
    let pending = tokio::spawn(async move { post(&app, "/v1/chat/completions", body).await });
    let advance = |ms| state.clock().advance(Duration::from_millis(ms)).unwrap();
    let_tasks_run().await;
    advance(500);
    let_tasks_run().await;
    advance(100);
    let_tasks_run().await;
    assert!(!pending.is_finished(), "the third token is due at 700 ms");
    advance(100);
    let reply = pending.await.unwrap();
    let events = data_events(&reply.text());
    assert_eq!(events.len(), 1 + 3 + 1 + 1);
}

#[tokio::test]
async fn the_first_token_waits_longer_for_a_longer_prompt() {
    // The prompt's tokens, from a server with no latency.
    let (_, app) = router(manual_config());
    let served = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 100)).await;
    let prompt_tokens = served.json()["usage"]["prompt_tokens"].as_u64().unwrap();
    let mut config = paced_config();
    config.latency.per_prompt_token = HumanDuration(Duration::from_millis(2));
    let (state, app) = router(config);
    let pending =
        tokio::spawn(
            async move { post(&app, "/v1/chat/completions", chat_body("gpt-4o", 100)).await },
        );
    // 500 ms, 2 ms per prompt token, then two more tokens 100 ms apart.
    let total = 500 + 2 * prompt_tokens + 200;
    let_tasks_run().await;
    state
        .clock()
        .advance(Duration::from_millis(total - 1))
        .unwrap();
    let_tasks_run().await;
    assert!(!pending.is_finished(), "the prefill time has not passed");
    state.clock().advance(Duration::from_millis(1)).unwrap();
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200);
    let expected = total.to_string();
    assert_eq!(
        reply.header("openai-processing-ms"),
        Some(expected.as_str())
    );
}
