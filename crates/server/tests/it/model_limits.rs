//! Per-request model limits OpenAI enforces with a 400 (context window, output cap), the 404
//! for a chat request to an embedding model, and the long-context pool that is no model. The
//! wording and its sources are in docs/model-limits.md.

use model::ServerConfig;
use serde_json::{Value, json};

use crate::support::{KEY, chat_body, get, manual_config, post, router};

/// The manual config with catalog overrides, e.g. a small context window.
fn with_catalog(overrides: &str) -> ServerConfig {
    ServerConfig {
        catalog: Some(toml::from_str(overrides).unwrap()),
        ..manual_config()
    }
}

fn chat(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

/// The prompt tokens gpt-4o counts for a chat with this content, read from a served reply.
async fn prompt_tokens_of(content: &str) -> u64 {
    let (_, app) = router(manual_config());
    let reply = post(&app, "/v1/chat/completions", chat("gpt-4o", content)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["usage"]["prompt_tokens"].as_u64().unwrap()
}

const LONG: &str = "The quick brown fox jumps over the lazy dog, again and again and again.";

#[tokio::test]
async fn a_prompt_over_the_context_window_gets_context_length_exceeded() {
    let prompt = prompt_tokens_of(LONG).await;
    let window = prompt - 1;
    let (_, app) = router(with_catalog(&format!(
        "[models.gpt-4o]\ncontext_window = {window}"
    )));
    let reply = post(&app, "/v1/chat/completions", chat("gpt-4o", LONG)).await;
    let error = reply.expect_error(400, Some("context_length_exceeded"));
    assert_eq!(
        error,
        json!({
            "message": format!(
                "This model's maximum context length is {window} tokens. However, your \
                 messages resulted in {prompt} tokens. Please reduce the length of the messages."
            ),
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        })
    );
    // A refused request costs no quota: the next one finds the whole RPM left but itself.
    let fits = post(&app, "/v1/chat/completions", chat("gpt-4o", "hi")).await;
    assert_eq!(fits.status, 200, "{}", fits.text());
    assert_eq!(fits.header("x-ratelimit-remaining-requests"), Some("499"));

    // A prompt exactly the size of the window fits.
    let (_, app) = router(with_catalog(&format!(
        "[models.gpt-4o]\ncontext_window = {prompt}"
    )));
    let reply = post(&app, "/v1/chat/completions", chat("gpt-4o", LONG)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn responses_and_legacy_completions_word_the_context_error_their_own_way() {
    let (_, app) = router(with_catalog(
        "[models.gpt-4o]\ncontext_window = 5\n[models.\"gpt-3.5-turbo\"]\ncontext_window = 20",
    ));
    let error = post(
        &app,
        "/v1/responses",
        json!({"model": "gpt-4o", "input": LONG}),
    )
    .await
    .expect_error(400, Some("context_length_exceeded"));
    assert_eq!(
        error["message"],
        "Your input exceeds the context window of this model. Please adjust your input and try again."
    );
    assert_eq!(error["param"], "input");
    assert_eq!(error["type"], "invalid_request_error");

    // Legacy completions count the prompt and the completion's cap together.
    let reply = post(
        &app,
        "/v1/completions",
        json!({"model": "gpt-3.5-turbo", "prompt": "Say hello to ratelab.", "max_tokens": 15}),
    )
    .await;
    let error = reply.expect_error(400, Some("context_length_exceeded"));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "This model's maximum context length is 20 tokens, however you requested "
        ),
        "{message}"
    );
    assert!(
        message.ends_with(" for the completion). Please reduce your prompt; or completion length."),
        "{message}"
    );
    assert!(
        message.contains("in your prompt; 15 for the completion"),
        "{message}"
    );
    assert_eq!(error["param"], "prompt");
}

#[tokio::test]
async fn an_output_cap_over_the_models_maximum_gets_openais_400() {
    let (_, app) = router(manual_config());
    let error = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 100_000))
        .await
        .expect_error(400, Some("invalid_value"));
    assert_eq!(
        error,
        json!({
            "message": "max_tokens is too large: 100000. This model supports at most 16384 \
                        completion tokens, whereas you provided 100000.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "invalid_value",
        })
    );
    // The parameter named is the one the request used.
    let mut body = chat("gpt-4.1", "hi");
    body["max_completion_tokens"] = json!(40_000);
    let error = post(&app, "/v1/chat/completions", body)
        .await
        .expect_error(400, Some("invalid_value"));
    assert_eq!(error["param"], "max_completion_tokens");
    assert_eq!(
        error["message"],
        "max_completion_tokens is too large: 40000. This model supports at most 32768 \
         completion tokens, whereas you provided 40000."
    );
    let body = json!({"model": "gpt-4o", "input": "hi", "max_output_tokens": 20_000});
    let error = post(&app, "/v1/responses", body)
        .await
        .expect_error(400, Some("invalid_value"));
    assert_eq!(error["param"], "max_output_tokens");
    let body = json!({"model": "gpt-3.5-turbo", "prompt": "hi", "max_tokens": 5000});
    let error = post(&app, "/v1/completions", body)
        .await
        .expect_error(400, Some("invalid_value"));
    assert_eq!(error["param"], "max_tokens");

    // The cap itself is allowed.
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", 16_384)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_chat_request_to_an_embedding_model_is_not_a_chat_model() {
    let (_, app) = router(manual_config());
    let reply = post(
        &app,
        "/v1/chat/completions",
        chat_body("text-embedding-3-small", 5),
    )
    .await;
    let error = reply.expect_error(404, None);
    assert_eq!(
        error,
        json!({
            "message": "This is not a chat model and thus not supported in the \
                        v1/chat/completions endpoint. Did you mean to use v1/completions?",
            "type": "invalid_request_error",
            "param": "model",
            "code": null,
        })
    );
    // The model still embeds.
    let body = json!({"model": "text-embedding-3-small", "input": "hi"});
    assert_eq!(post(&app, "/v1/embeddings", body).await.status, 200);
}

#[tokio::test]
async fn the_long_context_pool_is_no_model() {
    let (_, app) = router(manual_config());
    let list = get(&app, "/v1/models").await.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt-4.1"), "{ids:?}");
    assert!(!ids.contains(&"gpt-4.1-long-context"), "{ids:?}");

    let unknown = |model: &str| {
        json!({
            "message": format!("The model `{model}` does not exist or you do not have access to it."),
            "type": "invalid_request_error",
            "param": null,
            "code": "model_not_found",
        })
    };
    let error = get(&app, "/v1/models/gpt-4.1-long-context")
        .await
        .expect_error(404, Some("model_not_found"));
    assert_eq!(error, unknown("gpt-4.1-long-context"));
    let error = post(
        &app,
        "/v1/chat/completions",
        chat_body("gpt-4.1-long-context", 5),
    )
    .await
    .expect_error(404, Some("model_not_found"));
    assert_eq!(error, unknown("gpt-4.1-long-context"));
}

/// The ids `/v1/models` lists for the test key.
async fn listed(app: &ratelab_server::MockApi) -> Vec<String> {
    let list = get(app, "/v1/models").await.json();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn models_lists_only_what_the_tier_offers_and_the_rest_is_not_found() {
    let (_, app) = router(ServerConfig {
        tier: Some("free".to_owned()),
        ..manual_config()
    });
    let ids = listed(&app).await;
    assert!(
        ids.iter().any(|id| id == "gpt-3.5-turbo")
            && ids.iter().any(|id| id == "text-embedding-3-small"),
        "{ids:?}"
    );
    for absent in ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4"] {
        assert!(!ids.iter().any(|id| id == absent), "{absent} in {ids:?}");
    }
    // Listing, retrieving and requesting agree: a model the tier lacks is not found.
    let retrieved = get(&app, "/v1/models/gpt-3.5-turbo").await;
    assert_eq!(retrieved.status, 200, "{}", retrieved.text());
    get(&app, "/v1/models/gpt-4o-mini")
        .await
        .expect_error(404, Some("model_not_found"));
    post(&app, "/v1/chat/completions", chat_body("gpt-4o-mini", 5))
        .await
        .expect_error(404, Some("model_not_found"));
    let served = post(&app, "/v1/chat/completions", chat_body("gpt-3.5-turbo", 5)).await;
    assert_eq!(served.status, 200, "{}", served.text());
}

#[tokio::test]
async fn a_custom_server_lists_its_configured_model() {
    let config = ServerConfig::from_toml_str(
        "model = \"gpt-4o-mini\"\nlimits = { rpm = 60 }\n",
        "serve.toml",
    )
    .unwrap();
    let (_, app) = router(ServerConfig {
        model: config.model,
        limits: config.limits,
        ..manual_config()
    });
    assert_eq!(listed(&app).await, ["gpt-4o-mini"]);
}

#[tokio::test]
async fn an_organizations_own_tier_decides_what_its_keys_see() {
    let config = ServerConfig::from_toml_str(
        &format!(
            "tier = \"free\"\n[[organizations]]\nid = \"org-paid\"\ntier = \"tier-1\"\n\
             projects = [{{ id = \"p\", keys = [\"{KEY}\"] }}]\n"
        ),
        "serve.toml",
    )
    .unwrap();
    let (_, app) = router(ServerConfig {
        tier: config.tier,
        organizations: config.organizations,
        ..manual_config()
    });
    let ids = listed(&app).await;
    assert!(ids.iter().any(|id| id == "gpt-4o-mini"), "{ids:?}");
}
