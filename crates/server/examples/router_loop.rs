//! Sends N chat completions through a router in-process (no sockets), for instruction and
//! allocation counts under valgrind: the deterministic companion to
//! `benches/server-throughput.sh`, whose wall-clock figures swing on shared cores.
//!
//! Usage: `router_loop server|bare [REQUESTS]`, e.g.
//! `valgrind --tool=callgrind target/release/examples/router_loop server 20000` and the same
//! with `bare`; the difference divided by the request count is the mock server's own work per
//! request. `bare` is a router answering with the mock server's first reply, bytes and headers.
//! The connection layer (hyper's parsing and writing) is the same for both and is not run here.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use ratelab_server::{AppState, ServerConfig};
use tower::{Service, ServiceExt};

const REQUEST: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to ratelab."}],"max_tokens":16}"#;

fn request() -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench-000000")
        .body(Body::from(REQUEST))
        .unwrap_or_else(|error| panic!("a constant request is valid: {error}"))
}

async fn send<S>(service: &S, request: Request<Body>) -> (HeaderMap, Bytes)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let response = service
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    (parts.headers, body)
}

/// Sends `requests` requests and returns the body bytes received.
async fn send_all<S>(service: &S, requests: u64) -> usize
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let mut bytes = 0;
    for _ in 0..requests {
        bytes += send(service, request()).await.1.len();
    }
    bytes
}

fn main() {
    let mut arguments = std::env::args().skip(1);
    let target = arguments.next().unwrap_or_else(|| "server".to_owned());
    let requests: u64 = arguments
        .next()
        .map(|count| count.parse().expect("REQUESTS is a whole number"))
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        // Limits far above what the loop reaches, so every request runs the limiter and is
        // admitted, and no latency (the default is a realistic 200 ms to the first token), as in
        // the socket benchmark.
        let limits = r#"
            [latency]
            ttft = "0s"
            per_output_token = "0s"
            jitter = 0.0
            reject = "0s"
            [catalog.models.gpt-4o-mini.tiers]
            tier-1 = { rpm = 1000000000000, tpm = 1000000000000, rpd = 1000000000000 }
        "#;
        let config = ServerConfig::from_toml_str(limits, "router_loop").expect("a valid config");
        let state = AppState::new(config).expect("a valid config");
        let server = ratelab_server::app(state);
        let (headers, body) = send(&server, request()).await;
        let bytes = match target.as_str() {
            "server" => send_all(&server, requests).await,
            "bare" => {
                let bare = Router::new().fallback(move || {
                    let (headers, body) = (headers.clone(), body.clone());
                    async move { (headers, body) }
                });
                send_all(&bare, requests).await
            }
            other => panic!("unknown target {other}: expected server or bare"),
        };
        println!("{target}: {requests} requests, {bytes} body bytes");
    });
}
