//! A small real client for `ratelab test`, in Rust without an SDK: 40 chat completions, one
//! after another, over hyper's HTTP/1.1 client, retried the way a careful hand-written client
//! does it. Built as an example of the `ratelab-cli` package (`cargo build --example
//! rust-hyper`), so it adds no crate and no dependency to the workspace.
//!
//! The retry policy, which `scenario.toml` beside this file models as `honour-retry-after`
//! around `exponential`:
//! - retried: 408, 409, 429 (but not `insufficient_quota`, which waiting never fixes), every
//!   5xx, connection errors and timeouts; an `x-should-retry: true|false` header overrides the
//!   status, as the official SDKs read it;
//! - the wait: `retry-after-ms`, else a numeric `retry-after`, waited out exactly; a server
//!   asking for more than 60 s is given up on rather than slept on; without either header,
//!   `min(8 s, 500 ms x 2^n)` after the n-th retry;
//! - at most 5 attempts per request, 10 s each.
//!
//! `ratelab test` sets OPENAI_BASE_URL, OPENAI_API_KEY, RATELAB_MODEL and RATELAB_INSTANCE.
//! Each prompt is distinct, since the server groups attempts of one call by their body. The
//! client speaks plain HTTP, as the mock server does; a client for the real API adds TLS (a
//! hyper-rustls connector) and changes nothing else here.

use std::process::ExitCode;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const REQUESTS: u32 = 40;
const MAX_ATTEMPTS: u32 = 5;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const LONGEST_SERVER_WAIT: Duration = Duration::from_secs(60);
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Where to send and as whom, from the environment `ratelab test` sets.
struct Settings {
    endpoint: Uri,
    api_key: String,
    model: String,
    instance: String,
}

/// What one attempt's answer asks of the client.
enum Verdict {
    Done,
    /// Retry after the server's wait, or after the backoff when it stated none.
    Retry {
        server_wait: Option<Duration>,
    },
    Fail(String),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("rust-hyper: {message}");
            return ExitCode::from(2);
        }
    };
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut failed = 0;
    for number in 0..REQUESTS {
        if let Err(message) = ask(&client, &settings, number).await {
            failed += 1;
            eprintln!("question {number} failed: {message}");
        }
    }
    println!(
        "instance {}: {} of {REQUESTS} questions answered",
        settings.instance,
        REQUESTS - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let base = std::env::var("OPENAI_BASE_URL")
            .map_err(|_| "OPENAI_BASE_URL is not set (run me under `ratelab test`)".to_owned())?;
        let endpoint: Uri = format!("{}/chat/completions", base.trim_end_matches('/'))
            .parse()
            .map_err(|error| format!("OPENAI_BASE_URL {base:?} is not a URL: {error}"))?;
        if endpoint.scheme_str() != Some("http") {
            return Err(format!(
                "OPENAI_BASE_URL {base:?} is not plain http, the only scheme this example speaks"
            ));
        }
        Ok(Settings {
            endpoint,
            api_key: std::env::var("OPENAI_API_KEY").unwrap_or_default(),
            model: std::env::var("RATELAB_MODEL").unwrap_or_else(|_| "gpt-4o-mini".to_owned()),
            instance: std::env::var("RATELAB_INSTANCE").unwrap_or_else(|_| "0".to_owned()),
        })
    }
}

/// One logical request: attempts until a success, a final failure or `MAX_ATTEMPTS`.
async fn ask(client: &HttpClient, settings: &Settings, number: u32) -> Result<(), String> {
    let body = serde_json::json!({
        "model": settings.model,
        "messages": [{
            "role": "user",
            "content": format!("instance {}, question {number}: say hello", settings.instance),
        }],
        "max_tokens": 5,
    })
    .to_string();
    let mut retries = 0;
    loop {
        let verdict = attempt(client, settings, &body).await;
        let server_wait = match verdict {
            Verdict::Done => return Ok(()),
            Verdict::Fail(message) => return Err(message),
            Verdict::Retry { server_wait } => server_wait,
        };
        if retries + 1 >= MAX_ATTEMPTS {
            return Err(format!("still failing after {MAX_ATTEMPTS} attempts"));
        }
        let wait = match server_wait {
            Some(wait) if wait > LONGEST_SERVER_WAIT => {
                return Err(format!(
                    "the server asked for {wait:?}, longer than the {LONGEST_SERVER_WAIT:?} this client waits"
                ));
            }
            Some(wait) => wait,
            None => BACKOFF_CAP.min(BACKOFF_BASE.saturating_mul(1 << retries.min(16))),
        };
        // tokio rounds a sleep up to its next millisecond tick: never early.
        tokio::time::sleep(wait).await;
        retries += 1;
    }
}

async fn attempt(client: &HttpClient, settings: &Settings, body: &str) -> Verdict {
    let request = Request::post(settings.endpoint.clone())
        .header(AUTHORIZATION, format!("Bearer {}", settings.api_key))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a POST with valid headers builds");
    let answer = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
        let response = client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((parts.status, parts.headers, body))
    })
    .await;
    match answer {
        // A timeout or a connection error: retried on the backoff.
        Err(_) | Ok(Err(_)) => Verdict::Retry { server_wait: None },
        Ok(Ok((status, headers, body))) => judge(status, &headers, &body),
    }
}

/// The policy in the file's opening comment, for an answer that arrived.
fn judge(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Done;
    }
    let retryable = match header_str(headers, "x-should-retry") {
        Some("true") => true,
        Some("false") => false,
        _ => match status.as_u16() {
            429 => error_code(body).as_deref() != Some("insufficient_quota"),
            408 | 409 | 500.. => true,
            _ => false,
        },
    };
    if !retryable {
        return Verdict::Fail(format!(
            "{status}: {}",
            String::from_utf8_lossy(body).trim()
        ));
    }
    Verdict::Retry {
        server_wait: server_wait(headers),
    }
}

/// `retry-after-ms` (milliseconds), else `retry-after` (seconds), when numeric. An HTTP date
/// would need the wall clock and is treated as absent.
fn server_wait(headers: &HeaderMap) -> Option<Duration> {
    let millis = header_str(headers, "retry-after-ms").and_then(|value| value.parse::<f64>().ok());
    let seconds = || {
        header_str(headers, RETRY_AFTER.as_str())
            .and_then(|value| value.parse::<f64>().ok())
            .map(|seconds| seconds * 1000.0)
    };
    let millis = millis.or_else(seconds)?;
    (millis.is_finite() && millis >= 0.0).then(|| Duration::from_secs_f64(millis / 1000.0))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// The error body's `code`, else its `type`: OpenAI's `{"error": {"code": ..., "type": ...}}`.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let code = error.get("code").and_then(|code| code.as_str());
    code.or_else(|| error.get("type")?.as_str())
        .map(str::to_owned)
}
