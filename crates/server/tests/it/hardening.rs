//! Hostile single requests: input that once crashed the server, ran it out of memory or was
//! accepted against OpenAI's rules. Each answers with an OpenAI-shaped reply, never a panic.

use serde_json::{Value, json};

use crate::support::{manual_config, post, router};

/// o200k models (tiktoken-rs panics on a million spaces in their encoding) and a name
/// tiktoken does not know, which is counted as o200k too.
const O200K_MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "my-own-model"];

#[tokio::test]
async fn a_million_spaces_are_counted_on_every_prompt_endpoint() {
    let spaces = " ".repeat(1_000_000);
    let mut config = manual_config();
    // Tier 5's token limits admit a prompt estimated at 250,000 tokens; the unknown name is
    // declared in the catalog so it gets that far.
    config.tier = Some("tier-5".to_owned());
    config.catalog = Some(
        toml::from_str("[models.my-own-model.tiers]\ntier-5 = { rpm = 500, tpm = 30000000 }")
            .unwrap(),
    );
    let (_, app) = router(config);
    for model in O200K_MODELS {
        let bodies: [(&str, Value); 3] = [
            (
                "/v1/chat/completions",
                json!({"model": model, "messages": [{"role": "user", "content": spaces}]}),
            ),
            ("/v1/completions", json!({"model": model, "prompt": spaces})),
            ("/v1/responses", json!({"model": model, "input": spaces})),
        ];
        for (path, body) in bodies {
            let reply = post(&app, path, body).await;
            assert_eq!(reply.status, 200, "{model} {path}: {}", reply.text());
            let usage = &reply.json()["usage"];
            let prompt = usage["prompt_tokens"]
                .as_u64()
                .or(usage["input_tokens"].as_u64())
                .unwrap_or_else(|| panic!("{model} {path}: no prompt tokens in {usage}"));
            assert!(prompt >= 1_000, "{model} {path}: {prompt}");
        }
    }
}

fn embeddings_body(input: Value) -> Value {
    json!({"model": "text-embedding-3-small", "input": input})
}

#[tokio::test]
async fn embeddings_take_at_most_2048_inputs() {
    let (_, app) = router(manual_config());
    let reply = post(
        &app,
        "/v1/embeddings",
        embeddings_body(json!(vec!["a"; 2048])),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 2048);
    // 4,096 inputs once made a 158 MB reply, and 100,000 aborted the process.
    for (count, input) in [
        (2049, json!(vec!["a"; 2049])),
        (4096, json!(vec!["a"; 4096])),
        (100_000, json!(vec!["a"; 100_000])),
        (2049, json!(vec![vec![1]; 2049])),
    ] {
        let reply = post(&app, "/v1/embeddings", embeddings_body(input)).await;
        let error = reply.expect_error(400, None);
        assert_eq!(
            error,
            json!({
                "message": "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                "type": "invalid_request_error",
                "param": null,
                "code": null,
            }),
            "{count} inputs"
        );
    }
}

#[tokio::test]
async fn each_embeddings_input_fits_the_model() {
    let (_, app) = router(manual_config());
    // 8,193 tokens: "hello" and 8,192 times " hello".
    let long = vec!["hello"; 8193].join(" ");
    let fits = vec!["hello"; 8192].join(" ");
    let reply = post(&app, "/v1/embeddings", embeddings_body(json!(fits))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["usage"]["prompt_tokens"], 8192);
    for (input, index) in [
        (json!(long), 0),
        (json!(["short", fits, long]), 2),
        (json!([[1, 2], vec![7; 8193]]), 1),
    ] {
        let error = post(&app, "/v1/embeddings", embeddings_body(input))
            .await
            .expect_error(400, None);
        assert_eq!(
            error,
            json!({
                "message": format!("Invalid 'input[{index}]': maximum input length is 8192 tokens."),
                "type": "invalid_request_error",
                "param": "input",
                "code": null,
            })
        );
    }
}

#[tokio::test]
async fn an_embeddings_request_carries_at_most_300000_tokens() {
    let (_, app) = router(manual_config());
    // 37 inputs of 8,000 tokens fit; 38 do not.
    let reply = post(
        &app,
        "/v1/embeddings",
        embeddings_body(json!(vec![vec![1; 8000]; 37])),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let error = post(
        &app,
        "/v1/embeddings",
        embeddings_body(json!(vec![vec![1; 8000]; 38])),
    )
    .await
    .expect_error(400, Some("max_tokens_per_request"));
    assert_eq!(
        error,
        json!({
            "message": "Requested 304000 tokens, max 300000 tokens per request",
            "type": "max_tokens_per_request",
            "param": null,
            "code": "max_tokens_per_request",
        })
    );
}

#[tokio::test]
async fn an_embeddings_reply_is_streamed_one_vector_at_a_time() {
    use http_body_util::BodyExt;
    let (_, app) = router(manual_config());
    let body = json!({"model": "text-embedding-3-large", "input": vec!["a"; 64]});
    let request = crate::support::request(
        axum::http::Method::POST,
        "/v1/embeddings",
        Some(crate::support::KEY),
        Some(&body),
    );
    let response = tower::ServiceExt::oneshot(app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let (mut frames, mut largest, mut whole) = (0, 0, Vec::new());
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        frames += 1;
        largest = largest.max(data.len());
        whole.extend_from_slice(&data);
    }
    // One frame per vector (3,072 floats, under 64 KB), plus the list's head and tail.
    assert_eq!(frames, 66);
    assert!(largest < 64 * 1024, "{largest}");
    let list: Value = serde_json::from_slice(&whole).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 64);
    assert_eq!(list["data"][63]["index"], 63);
    assert_eq!(list["usage"]["prompt_tokens"], 64);
}

#[tokio::test]
async fn bytes_after_the_json_body_are_a_400() {
    let (_, app) = router(manual_config());
    let valid = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;
    for (path, body) in [
        ("/v1/chat/completions", format!("{valid} garbage")),
        ("/v1/chat/completions", format!("{valid}{valid}")),
        (
            "/v1/embeddings",
            r#"{"model": "text-embedding-3-small", "input": "x"} 1"#.to_owned(),
        ),
        (
            "/v1/responses",
            r#"{"model": "gpt-4o", "input": "x"}]"#.to_owned(),
        ),
    ] {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", format!("Bearer {}", crate::support::KEY))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let error = crate::support::send(&app, request)
            .await
            .expect_error(400, None);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("We could not parse the JSON body of your request."),
            "{body}: {error}"
        );
    }
}
