//! Latency of small requests while huge prompts are being counted: the mock server in-process
//! (two worker threads, as on the 2-core reference machine), an open loop of small chat
//! requests at a fixed rate, first alone, then while two clients keep a 7.9 MB single-word
//! prompt each in flight. Target: p99 of the small requests under 50 ms with the huge prompts.
//!
//! Not criterion: the figure is a latency distribution under interference, not a per-call cost.
//! `cargo bench -p ratelab-benches --bench big_prompts` (knobs: `RATE`, `SECONDS`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use model::{LatencyConfig, ServerConfig};
use ratelab_server::MockServer;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

const HUGE_PROMPT_BYTES: usize = 7_900_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn chat(url: &str, body: Bytes) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post(format!("{url}/v1/chat/completions"))
        .header("authorization", "Bearer sk-bench-0001")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("a valid request")
}

/// Sends `body` and reads the whole reply; returns the status.
async fn send(client: &HttpClient, url: &str, body: Bytes) -> u16 {
    match client.request(chat(url, body)).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            status
        }
        Err(_) => 0,
    }
}

/// Small requests at `rate` per second for `seconds`, each timed from when it was due (open
/// loop: a stalled server cannot slow the schedule and hide its own stalls).
async fn small_requests(client: &HttpClient, url: &str, rate: u64, seconds: u64) -> Histogram<u64> {
    let body = Bytes::from(
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to ratelab."}],"max_tokens":5}"#,
    );
    let histogram = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
    ));
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..rate * seconds {
        let due = start + interval * n as u32;
        tokio::time::sleep_until(due).await;
        let (client, url, body, histogram) = (
            client.clone(),
            url.to_owned(),
            body.clone(),
            histogram.clone(),
        );
        tasks.spawn(async move {
            let status = send(&client, &url, body).await;
            let micros = due.elapsed().as_micros() as u64;
            assert_eq!(status, 200, "a small request failed");
            histogram.lock().unwrap().saturating_record(micros.max(1));
        });
    }
    while tasks.join_next().await.is_some() {}
    Arc::try_unwrap(histogram).unwrap().into_inner().unwrap()
}

fn report(label: &str, histogram: &Histogram<u64>) {
    let ms = |micros: u64| micros as f64 / 1000.0;
    println!(
        "{label}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        histogram.len(),
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max()),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let rate = env_or("RATE", 50);
    let seconds = env_or("SECONDS", 10);
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let server = server_runtime
        .block_on(MockServer::start(ServerConfig {
            // Tier 5's token limits admit the huge prompts' estimate (about 2M tokens).
            tier: Some("tier-5".to_owned()),
            // No modelled latency: the figure is the server's own.
            latency: LatencyConfig::instant(),
            ..ServerConfig::default()
        }))
        .expect("the server starts");
    let url = server.url();
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    client_runtime.block_on(async {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        // Warm the connection pool and the token-count cache.
        small_requests(&client, &url, rate, 1).await;
        let alone = small_requests(&client, &url, rate, seconds).await;
        report("small requests alone", &alone);

        let word = "a".repeat(HUGE_PROMPT_BYTES);
        let huge = Bytes::from(format!(
            r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{word}"}}],"max_tokens":5}}"#
        ));
        let running = Arc::new(AtomicBool::new(true));
        let huge_done = Arc::new(AtomicU64::new(0));
        let mut huge_clients = Vec::new();
        for _ in 0..2 {
            let (client, url, huge, running, huge_done) = (
                client.clone(),
                url.clone(),
                huge.clone(),
                running.clone(),
                huge_done.clone(),
            );
            huge_clients.push(tokio::spawn(async move {
                let mut seconds_each = Vec::new();
                while running.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let status = send(&client, &url, huge.clone()).await;
                    // A prompt that long exceeds gpt-4o's context window: a 400 after counting.
                    assert!(status == 200 || status == 400, "a huge prompt got {status}");
                    seconds_each.push(started.elapsed().as_secs_f64());
                    huge_done.fetch_add(1, Ordering::SeqCst);
                }
                seconds_each
            }));
        }
        // Let both huge prompts get under way before measuring.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let loaded = small_requests(&client, &url, rate, seconds).await;
        running.store(false, Ordering::SeqCst);
        let mut huge_seconds = Vec::new();
        for client in huge_clients {
            huge_seconds.extend(client.await.expect("a huge client finished"));
        }
        report("small requests with 2 huge prompts in flight", &loaded);
        let mean = huge_seconds.iter().sum::<f64>() / huge_seconds.len().max(1) as f64;
        println!(
            "huge prompts ({HUGE_PROMPT_BYTES} bytes, one word): {} answered, {mean:.2} s each on average",
            huge_seconds.len()
        );
        let p99_ms = loaded.value_at_quantile(0.99) as f64 / 1000.0;
        println!(
            "target: p99 under 50 ms with the huge prompts: {}",
            if p99_ms < 50.0 { "met" } else { "NOT met" }
        );
    });
    drop(client_runtime);
    server_runtime
        .block_on(server.shutdown())
        .expect("the server stops");
}
