//! The soak test: normal clients on every endpoint (streaming included) alongside hostile ones
//! (slow heads, slow bodies, idle, oversized, malformed) against one in-process server on 127.0.0.1, for a few
//! seconds. It asserts correctness only, with bounds that cannot flake on two busy cores:
//! every normal request is answered correctly, the process's resident memory stays under
//! [`RSS_CEILING_BYTES`] (Linux), and no server thread panics. Latency is measured by the
//! benchmarks, not here.
//!
//! It is its own test binary, unlike the rest of the crate's tests (`tests/it`), so that the
//! resident memory it reads and the panics it watches for are this server's alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use model::{ConnectionLimits, HumanDuration, LatencyConfig, ServerConfig};
use ratelab_server::MockServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the mixed load runs.
const LOAD: Duration = Duration::from_secs(8);
/// The resident-memory ceiling of the whole test process (server, clients, test harness),
/// documented in README.md: about twice the 116 MiB measured. Tokenizer tables take much of it; bodies are capped at
/// `MAX_BODY_BYTES` and counting at one body's worth at a time, so hostile clients add a few
/// bodies' worth, not more.
const RSS_CEILING_BYTES: u64 = 256 * 1024 * 1024;
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
const KEY: &str = "sk-soak-test-0001";
/// Server threads are named so the panic hook can tell them from the test's own.
const SERVER_THREAD: &str = "soak-server";

static SERVER_PANICKED: AtomicBool = AtomicBool::new(false);

/// Records any panic on a server thread (a panicking request task does not fail the test by
/// itself: tokio catches it), and still prints it through the default hook.
fn watch_for_server_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with(SERVER_THREAD))
        {
            SERVER_PANICKED.store(true, Ordering::SeqCst);
        }
        default(info);
    }));
}

/// Resident memory of this process, from `/proc/self/status` (Linux only).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// What a normal client checks in a reply.
#[derive(Debug, Clone, Copy)]
enum Call {
    Chat,
    ChatStream,
    Completion,
    CompletionStream,
    Responses,
    ResponsesStream,
    Embeddings,
    Models,
}

const CALLS: [Call; 8] = [
    Call::Chat,
    Call::ChatStream,
    Call::Completion,
    Call::CompletionStream,
    Call::Responses,
    Call::ResponsesStream,
    Call::Embeddings,
    Call::Models,
];

/// The `data:` payloads of an SSE body.
fn data_events(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .collect()
}

/// Sends one normal request and checks its reply; the error says what was wrong.
async fn normal_call(client: &HttpClient, base: &str, call: Call, n: usize) -> Result<(), String> {
    let prompt = format!("soak request {n}: say something short");
    let (path, body) = match call {
        Call::Chat | Call::ChatStream => (
            "/v1/chat/completions",
            Some(json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 8,
                "stream": matches!(call, Call::ChatStream),
            })),
        ),
        Call::Completion | Call::CompletionStream => (
            "/v1/completions",
            Some(json!({
                "model": "gpt-3.5-turbo",
                "prompt": prompt,
                "max_tokens": 8,
                "stream": matches!(call, Call::CompletionStream),
            })),
        ),
        Call::Responses | Call::ResponsesStream => (
            "/v1/responses",
            Some(json!({
                "model": "gpt-4o",
                "input": prompt,
                "max_output_tokens": 8,
                "stream": matches!(call, Call::ResponsesStream),
            })),
        ),
        Call::Embeddings => (
            "/v1/embeddings",
            Some(json!({"model": "text-embedding-3-small", "input": [prompt, "second", "third"]})),
        ),
        Call::Models => ("/v1/models", None),
    };
    let builder = hyper::Request::builder()
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {KEY}"));
    let request = match body {
        Some(body) => builder
            .method("POST")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string()))),
        None => builder.method("GET").body(Full::new(Bytes::new())),
    }
    .map_err(|error| error.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|error| format!("{call:?}: {error:?}"))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| format!("{call:?}: {error:?}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    if status != 200 {
        return Err(format!("{call:?}: {status} {text}"));
    }
    let json = |text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| format!("{call:?}: {e}: {text}"))
    };
    let ok = match call {
        Call::Chat => json(&text)?["choices"][0]["message"]["content"].is_string(),
        Call::Completion => json(&text)?["choices"][0]["text"].is_string(),
        Call::Responses => json(&text)?["status"].is_string(),
        Call::ChatStream | Call::CompletionStream => {
            let events = data_events(&text);
            events.last() == Some(&"[DONE]")
                && events.len() >= 2
                && events[..events.len() - 1]
                    .iter()
                    .all(|data| json(data).is_ok())
        }
        Call::ResponsesStream => {
            let events = data_events(&text);
            events
                .last()
                .and_then(|data| json(data).ok())
                .is_some_and(|last| {
                    matches!(
                        last["type"].as_str(),
                        Some("response.completed" | "response.incomplete")
                    )
                })
        }
        Call::Embeddings => {
            let list = json(&text)?;
            list["data"].as_array().is_some_and(|data| {
                data.len() == 3
                    && data[2]["embedding"]
                        .as_array()
                        .is_some_and(|v| v.len() == 1536)
            })
        }
        Call::Models => json(&text)?["data"]
            .as_array()
            .is_some_and(|models| !models.is_empty()),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{call:?}: unexpected reply {text}"))
    }
}

/// A raw request with `body`, for the hostile clients.
fn raw_request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Sends `request` on a fresh connection and returns the status code of the reply (or 0 when
/// the server closed the connection without one), reading at most `GENEROUS` long.
async fn raw_status(address: std::net::SocketAddr, request: &[u8]) -> u16 {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        // The server may answer (a 413) and close before the whole body is written.
        let _ = stream.write_all(request).await;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 8192];
        while !reply.windows(4).any(|window| window == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&chunk[..n]);
        }
        let status = String::from_utf8_lossy(&reply)
            .split(' ')
            .nth(1)?
            .parse()
            .ok()?;
        Some(status)
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

#[test]
fn the_server_holds_under_mixed_and_hostile_load() {
    watch_for_server_panics();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime
        .block_on(MockServer::start(ServerConfig {
            tier: Some("tier-5".to_owned()),
            max_body_bytes: MAX_BODY_BYTES,
            connections: ConnectionLimits {
                header_read_timeout: HumanDuration(Duration::from_millis(500)),
                idle_timeout: HumanDuration(Duration::from_secs(2)),
                body_read_timeout: HumanDuration(Duration::from_secs(1)),
                max_connections: 256,
            },
            // Answers at once, so the normal clients keep the server busy.
            latency: LatencyConfig::instant(),
            ..ServerConfig::default()
        }))
        .unwrap();
    let address = server.address();
    let base = server.url();

    let peak_rss = Arc::new(AtomicU64::new(resident_bytes().unwrap_or(0)));

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sampled_peak = peak_rss.clone();
    let (answered, failures, hostile) = client_runtime.block_on(async move {
        let deadline = Instant::now() + LOAD;
        // Resident memory every 50 ms until the load ends (a little past it, while the last
        // requests finish).
        let sampler = tokio::spawn(async move {
            while Instant::now() < deadline + Duration::from_secs(1) {
                if let Some(rss) = resident_bytes() {
                    sampled_peak.fetch_max(rss, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let answered = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let hostile_done = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();

        // Normal clients: every endpoint in turn. Pooled connections are dropped well before
        // the server's idle timeout, so a client never reuses one the server is closing.
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_millis(300))
            .pool_timer(TokioTimer::new())
            .build_http();
        for worker in 0..6 {
            let (client, base, answered, failures) =
                (client.clone(), base.clone(), answered.clone(), failures.clone());
            tasks.spawn(async move {
                let mut n = worker;
                while Instant::now() < deadline {
                    let call = CALLS[n % CALLS.len()];
                    match tokio::time::timeout(Duration::from_secs(20), normal_call(&client, &base, call, n)).await {
                        Ok(Ok(())) => {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Err(error)) => failures.lock().unwrap().push(error),
                        Err(_) => failures.lock().unwrap().push(format!("{call:?}: no reply in 20 s")),
                    }
                    n += 6;
                }
            });
        }

        // Slow clients: request heads a byte every 100 ms; the server closes them, they return.
        for _ in 0..20 {
            let hostile_done = hostile_done.clone();
            tasks.spawn(async move {
                while Instant::now() < deadline {
                    let Ok(mut stream) = TcpStream::connect(address).await else { continue };
                    for byte in b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().cycle() {
                        if Instant::now() >= deadline || stream.write_all(&[*byte]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    hostile_done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }

        // Slow bodies: a whole head, then the body a byte every 100 ms; the server answers
        // 408 and closes, they return.
        for _ in 0..10 {
            let hostile_done = hostile_done.clone();
            tasks.spawn(async move {
                let head = raw_request("/v1/chat/completions", &[b' '; 200]);
                while Instant::now() < deadline {
                    let Ok(mut stream) = TcpStream::connect(address).await else { continue };
                    if stream.write_all(&head[..head.len() - 200]).await.is_err() {
                        continue;
                    }
                    for _ in 0..200 {
                        if Instant::now() >= deadline || stream.write_all(b" ").await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    hostile_done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }

        // Idle clients: connect, send nothing, wait for the server to close them.
        for _ in 0..50 {
            let hostile_done = hostile_done.clone();
            tasks.spawn(async move {
                while Instant::now() < deadline {
                    let Ok(mut stream) = TcpStream::connect(address).await else { continue };
                    let mut chunk = [0u8; 64];
                    let left = deadline.saturating_duration_since(Instant::now());
                    let _ = tokio::time::timeout(left, stream.read(&mut chunk)).await;
                    hostile_done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }

        // Oversized and malformed clients, each expecting its own refusal.
        let valid_chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).to_string();
        let hostile_requests: Vec<(&str, Vec<u8>, u16)> = vec![
            // Over max_body_bytes.
            ("/v1/chat/completions", vec![b' '; MAX_BODY_BYTES + 1], 413),
            // A megabyte of spaces (tiktoken alone panics on these) and a megabyte-long word.
            (
                "/v1/chat/completions",
                json!({"model": "gpt-4o", "messages": [{"role": "user", "content": " ".repeat(1_000_000)}], "max_tokens": 5}).to_string().into_bytes(),
                200,
            ),
            (
                "/v1/responses",
                json!({"model": "gpt-4.1", "input": "a".repeat(1_500_000), "max_output_tokens": 5}).to_string().into_bytes(),
                200,
            ),
            // Too many embeddings inputs.
            (
                "/v1/embeddings",
                json!({"model": "text-embedding-3-small", "input": vec!["a"; 5000]}).to_string().into_bytes(),
                400,
            ),
            // Bytes after the body, and not JSON at all.
            ("/v1/chat/completions", format!("{valid_chat} garbage").into_bytes(), 400),
            ("/v1/chat/completions", b"{\"model\": ".to_vec(), 400),
        ];
        let hostile_requests = Arc::new(hostile_requests);
        for worker in 0..2 {
            let (failures, hostile_done, hostile_requests) =
                (failures.clone(), hostile_done.clone(), hostile_requests.clone());
            tasks.spawn(async move {
                let mut n = worker;
                while Instant::now() < deadline {
                    let (path, body, expected) = &hostile_requests[n % hostile_requests.len()];
                    let status = raw_status(address, &raw_request(path, body)).await;
                    if status != *expected {
                        failures.lock().unwrap().push(format!(
                            "hostile request {n} to {path}: status {status}, expected {expected}"
                        ));
                    }
                    hostile_done.fetch_add(1, Ordering::SeqCst);
                    n += 2;
                }
            });
        }

        while let Some(result) = tasks.join_next().await {
            if let Err(error) = result {
                failures.lock().unwrap().push(format!("a client task failed: {error}"));
            }
        }
        let _ = sampler.await;
        let failures = std::mem::take(&mut *failures.lock().unwrap());
        (answered.load(Ordering::SeqCst), failures, hostile_done.load(Ordering::SeqCst))
    });
    drop(client_runtime);
    server_runtime.block_on(server.shutdown()).unwrap();
    drop(server_runtime);

    let peak = peak_rss.load(Ordering::SeqCst);
    eprintln!(
        "soak: {answered} normal requests answered, {hostile} hostile exchanges, peak RSS {} MiB",
        peak / (1024 * 1024)
    );
    // First: a panic is the likeliest cause of any other failure.
    assert!(
        !SERVER_PANICKED.load(Ordering::SeqCst),
        "a server thread panicked (see the output above)"
    );
    assert!(
        failures.is_empty(),
        "{} failures, first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(
        answered >= CALLS.len(),
        "only {answered} normal requests were answered"
    );
    assert!(hostile > 0);
    if cfg!(target_os = "linux") {
        assert!(
            peak < RSS_CEILING_BYTES,
            "peak RSS {} MiB is over the {} MiB ceiling",
            peak / (1024 * 1024),
            RSS_CEILING_BYTES / (1024 * 1024)
        );
    }
}
