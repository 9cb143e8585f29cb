//! Connection hygiene on a real loopback socket: a client that sends its request head too
//! slowly or sits idle is closed, a request in progress is never cut, and past the connection
//! cap a new client gets a quick 503 instead of hanging. Timeouts are configured small; the
//! bounds on how long things take are generous so two busy cores cannot make them flake.

use std::time::{Duration, Instant};

use model::{ConnectionLimits, HumanDuration, LatencyConfig, ServerConfig};
use ratelab_server::MockServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{KEY, chat_body, instant_config};

const HEADER_READ_TIMEOUT_MS: u64 = 300;
const IDLE_TIMEOUT_MS: u64 = 600;
const BODY_READ_TIMEOUT_MS: u64 = 400;
/// Far more than any timeout here needs to fire on a loaded machine.
const GENEROUS: Duration = Duration::from_secs(8);

fn config(max_connections: usize) -> ServerConfig {
    ServerConfig {
        connections: ConnectionLimits {
            header_read_timeout: millis(HEADER_READ_TIMEOUT_MS),
            idle_timeout: millis(IDLE_TIMEOUT_MS),
            body_read_timeout: millis(BODY_READ_TIMEOUT_MS),
            max_connections,
        },
        ..instant_config()
    }
}

fn millis(milliseconds: u64) -> HumanDuration {
    HumanDuration(Duration::from_millis(milliseconds))
}

fn raw_chat() -> Vec<u8> {
    let body = chat_body("gpt-4o", 5).to_string();
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one response with a `content-length`; returns its status line and body.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut buffer = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("the response arrives");
            assert!(
                n > 0,
                "closed before a whole response: {}",
                String::from_utf8_lossy(&buffer)
            );
            buffer.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buffer).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|n| n.parse::<usize>().unwrap())
                    })
                    .expect("a content-length");
                if buffer.len() >= end + 4 + length {
                    let status = text.lines().next().unwrap().to_owned();
                    return (status, text[end + 4..end + 4 + length].to_owned());
                }
            }
        }
    };
    tokio::time::timeout(GENEROUS, read)
        .await
        .expect("a response in time")
}

/// Waits until the server closes `stream` (a read returns end of file or an error); returns
/// how long that took from `since`, or `None` if it stays open for `GENEROUS`.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Option<Duration> {
    let wait = async {
        let mut chunk = [0u8; 1024];
        while matches!(stream.read(&mut chunk).await, Ok(n) if n > 0) {}
    };
    tokio::time::timeout(GENEROUS, wait)
        .await
        .ok()
        .map(|()| since.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_its_head_a_byte_at_a_time_is_closed() {
    let server = MockServer::start(config(16)).await.unwrap();
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // A slowloris client: a byte every 50 ms, never finishing the head (at most 10 s of it).
    let trickle = tokio::spawn(async move {
        for byte in b"POST /v1/chat/completions HTTP/1.1\r\nx-padding: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let wait = async {
        let mut chunk = [0u8; 1024];
        while matches!(reader.read(&mut chunk).await, Ok(n) if n > 0) {}
    };
    let closed = tokio::time::timeout(GENEROUS, wait).await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "a slowloris connection stayed open for {GENEROUS:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(HEADER_READ_TIMEOUT_MS),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_body_gets_a_408() {
    let server = MockServer::start(config(16)).await.unwrap();
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let request = raw_chat();
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let started = Instant::now();
    // The head at once, then the body a byte every 50 ms (it would take several seconds).
    writer.write_all(&request[..head_end]).await.unwrap();
    let body = request[head_end..].to_vec();
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut reply = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = reader.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&chunk[..n]);
        }
    };
    let closed = tokio::time::timeout(GENEROUS, read).await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "a slow body kept its connection for {GENEROUS:?}"
    );
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408 Request Timeout"), "{reply}");
    assert!(reply.contains("\"code\":\"request_timeout\""), "{reply}");
    assert!(started.elapsed() >= Duration::from_millis(BODY_READ_TIMEOUT_MS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = MockServer::start(config(16)).await.unwrap();
    // A keep-alive connection after one answered request.
    let mut used = TcpStream::connect(server.address()).await.unwrap();
    used.write_all(&raw_chat()).await.unwrap();
    let (status, _) = read_response(&mut used).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let answered = Instant::now();
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(server.address()).await.unwrap();
    let opened = Instant::now();
    for (stream, since) in [(&mut used, answered), (&mut silent, opened)] {
        let elapsed = closed_after(stream, since)
            .await
            .expect("an idle connection is closed");
        // The idle timeout applies, not the shorter header-read one.
        assert!(
            elapsed >= Duration::from_millis(IDLE_TIMEOUT_MS - 50),
            "{elapsed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_progress_outlasts_both_timeouts() {
    let server = MockServer::start(ServerConfig {
        // The reply takes 1.5 s, longer than either timeout.
        latency: LatencyConfig {
            ttft: millis(1500),
            ..LatencyConfig::instant()
        },
        ..config(16)
    })
    .await
    .unwrap();
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream.write_all(&raw_chat()).await.unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    // And the connection is still good for another request.
    stream.write_all(&raw_chat()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, "HTTP/1.1 200 OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_gets_a_quick_503() {
    let server = MockServer::start(ServerConfig {
        connections: ConnectionLimits {
            // Long enough that the held connections stay open through the test.
            idle_timeout: millis(60_000),
            header_read_timeout: millis(60_000),
            max_connections: 3,
            ..ConnectionLimits::default()
        },
        ..instant_config()
    })
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(server.address()).await.unwrap();
        stream.write_all(&raw_chat()).await.unwrap();
        assert_eq!(read_response(&mut stream).await.0, "HTTP/1.1 200 OK");
        held.push(stream);
    }
    let started = Instant::now();
    let mut refused = TcpStream::connect(server.address()).await.unwrap();
    let _ = refused.write_all(&raw_chat()).await;
    let (status, body) = read_response(&mut refused).await;
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "server_is_overloaded", "{body}");
    assert!(started.elapsed() < GENEROUS);
    assert!(
        closed_after(&mut refused, started).await.is_some(),
        "a refused connection is closed"
    );

    // Once a connection closes, its slot serves a new client.
    drop(held.pop());
    let deadline = Instant::now() + GENEROUS;
    loop {
        let mut stream = TcpStream::connect(server.address()).await.unwrap();
        stream.write_all(&raw_chat()).await.unwrap();
        let (status, _) = read_response(&mut stream).await;
        if status == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came free: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
