//! Fuzz-style tests on the stable toolchain: seeded, structure-aware mutations of valid request
//! bodies for every endpoint and of the example serve config, a fixed number of cases, plus a
//! replayed corpus of inputs that once broke the server. Whatever arrives, the server answers
//! with an OpenAI-shaped reply and never a 5xx or a panic; a config parses or says where it is
//! wrong.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use model::ServerConfig;
use proptest::prelude::*;

use crate::support::{KEY, manual_config, router, send};

/// Valid bodies, one per endpoint.
const BODIES: &[(&str, &str)] = &[
    (
        "/v1/chat/completions",
        r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello"}]}],"max_tokens":20,"n":1}"#,
    ),
    (
        "/v1/completions",
        r#"{"model":"gpt-3.5-turbo-instruct","prompt":["one","two"],"max_tokens":5}"#,
    ),
    (
        "/v1/embeddings",
        r#"{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"base64"}"#,
    ),
    (
        "/v1/responses",
        r#"{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"max_output_tokens":16}"#,
    ),
];

/// Bodies that once broke a parser, or could: replayed on every run.
const CORPUS: &[&str] = &[
    "",
    "{",
    "[]",
    "null",
    "\"text\"",
    "{\"model\":null}",
    "{\"model\":\"gpt-4o\",\"messages\":[]}",
    "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":18446744073709551615}",
    "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-1}",
    "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e999}",
    "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":{\"nested\":[[[[]]]]}}]}",
    "{\"model\":\"text-embedding-3-small\",\"input\":[[1,2,3],[]]}",
    "{\"model\":\"text-embedding-3-small\",\"input\":[-1]}",
    "{\"model\":\"gpt-4o\",\"input\":{}}",
    "\u{feff}{}",
];

/// JSON values that replace a value of a valid body.
const HOSTILE_VALUES: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1e308",
    "18446744073709551616",
    "\"\"",
    "[]",
    "{}",
    "[null]",
    "\"\\u0000\"",
    "\"\u{1F600}\"",
    "[[]]",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replaces the value after the n-th `:` with a hostile one.
    ReplaceValue(usize, &'static str),
    /// Deletes a byte range.
    Delete(usize, usize),
    /// Inserts a hostile value's text at a position.
    Insert(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop::sample::select(HOSTILE_VALUES);
    prop_oneof![
        (0..16usize, value.clone()).prop_map(|(at, value)| Mutation::ReplaceValue(at, value)),
        (0..400usize, 0..8usize).prop_map(|(at, length)| Mutation::Delete(at, length)),
        (0..400usize, value).prop_map(|(at, value)| Mutation::Insert(at, value)),
    ]
}

fn apply(body: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut text = body.to_owned();
    for mutation in mutations {
        match mutation {
            Mutation::ReplaceValue(nth, value) => {
                if let Some((colon, _)) = text.match_indices(':').nth(*nth) {
                    // The value runs to the next `,` or closing bracket at any depth: crude, on
                    // purpose, so the result is sometimes not JSON at all.
                    let rest = &text[colon + 1..];
                    let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
                    text = format!("{}{value}{}", &text[..=colon], &rest[end..]);
                }
            }
            Mutation::Delete(at, length) => {
                let start = floor_char_boundary(&text, *at);
                let end = floor_char_boundary(&text, start + length);
                text.replace_range(start..end, "");
            }
            Mutation::Insert(at, value) => {
                let at = floor_char_boundary(&text, *at);
                text.insert_str(at, value);
            }
        }
    }
    text.into_bytes()
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Posts raw bytes and checks the reply is OpenAI-shaped and never a server error.
async fn check(app: &ratelab_server::MockApi, path: &str, body: Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .unwrap();
    // Real time, generous: a reply that does not come within seconds is a hang.
    let reply = tokio::time::timeout(Duration::from_secs(20), send(app, request))
        .await
        .unwrap_or_else(|_| panic!("no reply for {path} {}", String::from_utf8_lossy(&body)));
    let status = reply.status.as_u16();
    assert!(
        status < 500,
        "{status} for {path} {}: {}",
        String::from_utf8_lossy(&body),
        reply.text()
    );
    if status >= 400 {
        let json = reply.json();
        let error = &json["error"];
        assert!(
            error["message"].is_string() && error["type"].is_string(),
            "not OpenAI's error shape for {path} {}: {json}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            error["code"].is_string() || error["code"].is_null(),
            "{json}"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_corpus_gets_openai_shaped_answers() {
    runtime().block_on(async {
        let (_, app) = router(manual_config());
        for (path, body) in BODIES {
            check(&app, path, body.as_bytes().to_vec()).await;
            for text in CORPUS {
                check(&app, path, text.as_bytes().to_vec()).await;
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn mutated_bodies_get_openai_shaped_answers(
        endpoint in 0..BODIES.len(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let (path, body) = BODIES[endpoint];
        runtime().block_on(async {
            let (_, app) = router(manual_config());
            check(&app, path, apply(body, &mutations)).await;
        });
    }

    #[test]
    fn mutated_serve_configs_parse_or_say_where(
        drop_line in 0..120usize,
        value_line in 0..120usize,
        value in prop::sample::select(HOSTILE_VALUES),
    ) {
        let example = include_str!("../../serve.example.toml");
        let mut lines: Vec<String> = example.lines().map(str::to_owned).collect();
        if !lines.is_empty() {
            let index = drop_line % lines.len();
            lines.remove(index);
        }
        if !lines.is_empty() {
            let index = value_line % lines.len();
            if let Some(at) = lines[index].find('=') {
                lines[index].truncate(at + 1);
                lines[index].push(' ');
                lines[index].push_str(value);
            }
        }
        match ServerConfig::from_toml_str(&lines.join("\n"), "serve.toml") {
            Ok(_) => {}
            Err(error) => prop_assert!(error.to_string().starts_with("serve.toml"), "{error}"),
        }
    }
}
