//! Each endpoint's success shape, deterministic content and common headers.

use base64::Engine;
use model::{LengthDistribution, ServerConfig};
use serde_json::json;

use crate::support::{chat_body, get, manual_config, post, router};

#[tokio::test]
async fn chat_completion_has_the_shape_the_sdks_parse() {
    let (_, app) = router(manual_config());
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o-mini", 5)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["model"], "gpt-4o-mini");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(!choice["message"]["content"].as_str().unwrap().is_empty());
    assert_eq!(
        choice["finish_reason"], "length",
        "the default length exceeds 5 tokens"
    );
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], 5);
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + 5
    );
    assert!(reply.header("x-request-id").unwrap().starts_with("req_"));
    assert_eq!(reply.header("openai-version"), Some("2020-10-01"));
    assert_eq!(reply.header("openai-organization"), Some("org-ratelab"));
    assert_eq!(reply.header("openai-processing-ms"), Some("0"));
}

#[tokio::test]
async fn content_is_deterministic_for_a_seed_and_follows_the_distribution() {
    let config = ServerConfig {
        completion: LengthDistribution::Fixed { tokens: 12 },
        ..manual_config()
    };
    let content = |config: ServerConfig| async move {
        let (_, app) = router(config);
        let body = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 100))
            .await
            .json();
        assert_eq!(body["usage"]["completion_tokens"], 12);
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = content(config.clone()).await;
    assert_eq!(first, content(config.clone()).await);
    let reseeded = ServerConfig {
        seed: Some(1),
        ..config
    };
    assert_ne!(first, content(reseeded).await);
}

#[tokio::test]
async fn n_choices_are_distinct() {
    let (_, app) = router(manual_config());
    let mut body = chat_body("gpt-4o", 30);
    body["n"] = json!(3);
    let body = post(&app, "/v1/chat/completions", body).await.json();
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    assert_ne!(
        choices[0]["message"]["content"],
        choices[1]["message"]["content"]
    );
    assert_eq!(choices[2]["index"], 2);
}

#[tokio::test]
async fn legacy_completion_defaults_to_sixteen_tokens() {
    let (_, app) = router(ServerConfig {
        completion: LengthDistribution::Fixed { tokens: 100 },
        ..manual_config()
    });
    let reply = post(
        &app,
        "/v1/completions",
        json!({"model": "gpt-3.5-turbo", "prompt": "Once upon a time"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["object"], "text_completion");
    assert!(body["choices"][0]["text"].is_string());
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 16);
}

fn decode_base64_floats(text: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
        .collect()
}

#[tokio::test]
async fn embeddings_come_as_floats_or_base64_of_the_same_vector() {
    let (_, app) = router(manual_config());
    let request = |format: &str| json!({"model": "text-embedding-3-small", "input": ["alpha", "beta"], "encoding_format": format});
    let floats = post(&app, "/v1/embeddings", request("float")).await.json();
    let base64 = post(&app, "/v1/embeddings", request("base64")).await.json();
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["data"].as_array().unwrap().len(), 2);
    assert_eq!(floats["data"][1]["index"], 1);
    assert_eq!(floats["data"][0]["object"], "embedding");
    let as_floats: Vec<f32> = floats["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(as_floats.len(), 1536);
    let decoded = decode_base64_floats(base64["data"][0]["embedding"].as_str().unwrap());
    assert_eq!(decoded, as_floats);
    assert!(floats["usage"]["prompt_tokens"].as_u64().unwrap() >= 2);
    assert_eq!(
        floats["usage"]["prompt_tokens"],
        floats["usage"]["total_tokens"]
    );
}

#[tokio::test]
async fn embeddings_honour_dimensions_and_reject_too_many() {
    let (_, app) = router(manual_config());
    let body = post(
        &app,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-large", "input": "x", "dimensions": 256}),
    )
    .await
    .json();
    let vector = decode_or_floats(&body["data"][0]["embedding"]);
    assert_eq!(vector.len(), 256);
    let error = post(
        &app,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": "x", "dimensions": 5000}),
    )
    .await
    .expect_error(400, Some("invalid_value"));
    assert_eq!(error["param"], "dimensions");
}

fn decode_or_floats(value: &serde_json::Value) -> Vec<f32> {
    match value.as_str() {
        Some(text) => decode_base64_floats(text),
        None => value
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect(),
    }
}

#[tokio::test]
async fn responses_api_returns_a_completed_response() {
    let (_, app) = router(manual_config());
    let reply = post(
        &app,
        "/v1/responses",
        json!({"model": "gpt-4o", "input": "Tell me something.", "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output"][0]["type"], "message");
    assert_eq!(body["output"][0]["content"][0]["type"], "output_text");
    assert!(
        body["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .len()
            > 1
    );
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn responses_api_cut_by_max_output_tokens_is_incomplete() {
    let (_, app) = router(manual_config());
    let body = post(
        &app,
        "/v1/responses",
        json!({"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "max_output_tokens": 3}),
    )
    .await
    .json();
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(body["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn models_are_listed_and_retrieved() {
    let (_, app) = router(manual_config());
    let list = get(&app, "/v1/models").await.json();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gpt-4o") && ids.contains(&"text-embedding-3-small"),
        "{ids:?}"
    );
    let model = get(&app, "/v1/models/gpt-4o").await.json();
    assert_eq!(model["object"], "model");
    assert_eq!(model["id"], "gpt-4o");
    get(&app, "/v1/models/gpt-9")
        .await
        .expect_error(404, Some("model_not_found"));
}
