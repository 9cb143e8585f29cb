//! A bare axum server answering every request with the bytes of one file: the baseline that
//! `benches/server-throughput.sh` measures the mock server against.
//!
//! Usage: `bare_axum --addr 127.0.0.1:0 --body-file body.json`; prints the URL it listens on.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;

fn argument(name: &str) -> Option<String> {
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == name {
            return arguments.next();
        }
    }
    None
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address: SocketAddr = argument("--addr")
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()?;
    let path = argument("--body-file").ok_or("--body-file FILE is required")?;
    let body = Bytes::from(std::fs::read(&path).map_err(|error| format!("{path}: {error}"))?);
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(CONTENT_TYPE, "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("bare axum listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
