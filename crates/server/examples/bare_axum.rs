//! A bare axum server answering every request with the bytes of one file: the baseline that
//! `benches/server-throughput.sh` measures the mock server against.
//!
//! Usage: `bare_axum --addr 127.0.0.1:0 --body-file body.json [--headers-file headers.txt]`;
//! prints the URL it listens on. The headers file holds `name: value` lines (as `curl -D`
//! writes them, status line and `content-length`/`date` skipped) that every response repeats,
//! so the baseline can put the same bytes on the wire as the mock server.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

fn argument(name: &str) -> Option<String> {
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == name {
            return arguments.next();
        }
    }
    None
}

/// Reads `name: value` lines; the status line and headers hyper writes itself are skipped.
fn read_headers(path: &str) -> Result<HeaderMap, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    let mut headers = HeaderMap::new();
    for (number, line) in text.lines().enumerate() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.starts_with("http/") || name == "content-length" || name == "date" {
            continue;
        }
        let place = format!("{path}:{}", number + 1);
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|error| format!("{place}: header name: {error}"))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|error| format!("{place}: header value: {error}"))?;
        headers.append(name, value);
    }
    if headers.is_empty() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(headers)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address: SocketAddr = argument("--addr")
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()?;
    let path = argument("--body-file").ok_or("--body-file FILE is required")?;
    let body = Bytes::from(std::fs::read(&path).map_err(|error| format!("{path}: {error}"))?);
    let headers = match argument("--headers-file") {
        Some(path) => read_headers(&path)?,
        None => {
            HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("application/json"))])
        }
    };
    let app = Router::new().fallback(move || {
        let body = body.clone();
        let headers = headers.clone();
        async move { (headers, body) }
    });
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("bare axum listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
