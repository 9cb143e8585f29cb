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
    config.tier = "tier-5".to_owned();
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
