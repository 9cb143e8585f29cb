//! `MockServer` on a real loopback socket: base URL, connection resets, shutdown.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use model::{Fault, FaultScript, ScriptStep, ServerConfig};
use ratelab_server::MockServer;

use crate::support::{KEY, chat_body};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn chat(client: &HttpClient, base_url: &str) -> Result<(u16, Vec<u8>), String> {
    let request = hyper::Request::post(format!("{base_url}/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body("gpt-4o", 5).to_string())))
        .unwrap();
    let response = client
        .request(request)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| format!("{error:?}"))?
        .to_bytes()
        .to_vec();
    Ok((status, body))
}

#[tokio::test]
async fn a_mock_server_serves_on_loopback_and_stops_on_shutdown() {
    let server = MockServer::start(ServerConfig::default()).await.unwrap();
    let base_url = server.base_url();
    assert!(
        base_url.starts_with("http://127.0.0.1:") && base_url.ends_with("/v1"),
        "{base_url}"
    );
    let client = client();
    let (status, body) = chat(&client, &base_url).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    server.shutdown().await.unwrap();
    let fresh = self::client();
    assert!(
        chat(&fresh, &base_url).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let server = MockServer::start(ServerConfig::default()).await.unwrap();
    let address = server.address();
    drop(server);
    // The accept loop ends asynchronously; connecting must start failing promptly.
    let mut refused = false;
    for _ in 0..2000 {
        if tokio::net::TcpStream::connect(address).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        refused,
        "the server still accepts connections after its handle was dropped"
    );
}

#[tokio::test]
async fn a_connection_reset_fault_breaks_the_response() {
    let server = MockServer::start(ServerConfig::default()).await.unwrap();
    server.add_fault_script(FaultScript {
        key: None,
        steps: vec![ScriptStep {
            fault: Some(Fault::ConnectionReset),
            count: 1,
        }],
    });
    let client = client();
    let outcome = chat(&client, &server.base_url()).await;
    assert!(
        outcome.is_err(),
        "expected a broken connection, got {outcome:?}"
    );
    let (status, _) = chat(&client, &server.base_url()).await.unwrap();
    assert_eq!(status, 200);
}
