//! The accept loop behind `MockServer` and `ratelab serve`: HTTP/1.1 connections served by
//! hyper, with a header-read timeout, an idle timeout and a cap on open connections, so that
//! slow, idle or numerous clients cannot starve the others.
//!
//! axum's own `serve` has none of the three. hyper has a header-read timeout, but it also runs
//! while a keep-alive connection waits for its next request, so it cannot tell an idle client
//! from a slow one; here a small watchdog per connection tells them apart from what it sees:
//! requests in progress (counted by the service) and bytes arriving (seen by the socket).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use model::ConnectionLimits;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::graded_api::GradedApi;
use crate::state::AppState;

/// Refused connections being answered at once; past this, a refused connection is closed
/// without the 503, so refusing never holds more than a few descriptors.
const REFUSALS_IN_FLIGHT: usize = 64;
/// How long a refused connection is kept to read what the client sent, so closing it does not
/// reset the connection before the client has read the 503.
const REFUSAL_LINGER: Duration = Duration::from_millis(200);
/// The pause after a failed `accept` that is not the client's doing (out of descriptors), so
/// the loop does not spin until one is freed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `api` on `listener` until `stop` resolves; then stops accepting, tells waiting
/// requests the server is going away, lets open connections finish their requests, and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    api: GradedApi,
    state: AppState,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let refusal = Bytes::from(refusal_response());
    let (closing, closing_seen) = watch::channel(false);
    let mut refusing = false;
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // The client gave up between connecting and being accepted.
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection; retrying shortly");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Small replies go out at once rather than waiting for an acknowledgement.
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                refusing = false;
                let connection =
                    serve_connection(stream, api.clone(), limits, closing_seen.clone());
                tokio::spawn(async move {
                    connection.await;
                    drop(slot);
                });
            }
            Err(_) => {
                if !refusing {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "at the connection cap: refusing new connections with a 503 until one \
                         closes (raise `connections.max_connections` in the server config)"
                    );
                    refusing = true;
                }
                refuse(stream, &refusals, refusal.clone());
            }
        }
    }
    drop(listener);
    state.begin_shutdown();
    closing.send_replace(true);
    // Every connection holds a slot until it ends, so holding them all means all have ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Errors of one incoming connection, as opposed to the listener's.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The bytes a connection past the cap gets: OpenAI's overloaded 503, then the close.
fn refusal_response() -> Vec<u8> {
    let body = serde_json::to_vec(&quota::ErrorBody {
        error: ApiError::Overloaded.error_object(),
    })
    .unwrap_or_default();
    let mut response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// Answers a connection past the cap with the 503 and closes it, without waiting for it.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, response: Bytes) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        // A fresh socket's send buffer is empty: a few hundred bytes go out in one write.
        let _ = stream.try_write(&response);
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            let _ = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await;
            let mut sink = [0u8; 1024];
            while stream.readable().await.is_ok() {
                match stream.try_read(&mut sink) {
                    Ok(0) => break,
                    Err(error) if error.kind() != io::ErrorKind::WouldBlock => break,
                    _ => {}
                }
            }
        })
        .await;
    });
}

/// Serves one connection until it closes, times out or the server stops.
async fn serve_connection(
    stream: TcpStream,
    api: GradedApi,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedStream {
        stream,
        activity: activity.clone(),
    });
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let request_guard = service_activity.request_started();
        let api = api.clone();
        async move {
            let response = api.oneshot(request).await?;
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(WatchedBody {
                    body,
                    _request: request_guard,
                })
            }))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut shutting_down = false;
    loop {
        let deadline = activity.deadline(limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if activity.deadline(limits).is_some_and(|deadline| deadline <= Instant::now()) {
                    tracing::debug!("closing a connection that was idle or slow to send a request head");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            _ = closing.wait_for(|closing| *closing), if !shutting_down => {
                // Idle connections close now; busy ones after their current response.
                connection.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What the watchdog of one connection knows: times are nanoseconds since `opened`.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Requests whose head has arrived and whose response body is not finished.
    in_flight: AtomicUsize,
    /// When the connection last had no request in progress.
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived, plus one; 0 while none has.
    head_started: AtomicU64,
    /// Woken when the deadline may have moved earlier or away.
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn elapsed_nanos(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// When the connection is to be closed unless something happens first: none while a
    /// request is in progress.
    fn deadline(&self, limits: ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let (since, timeout) = match self.head_started.load(Ordering::Acquire) {
            0 => (self.idle_since.load(Ordering::Acquire), limits.idle_timeout),
            started => (started - 1, limits.header_read_timeout),
        };
        Some(self.opened + Duration::from_nanos(since) + timeout.0)
    }

    /// Bytes arrived: if no request is in progress, they start the next request head.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
        {
            let now = self.elapsed_nanos().saturating_add(1);
            if self
                .head_started
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.changed.notify_one();
            }
        }
    }

    fn request_started(self: &Arc<Activity>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.changed.notify_one();
        RequestGuard {
            activity: self.clone(),
        }
    }
}

/// Held from a request's head until its response body is done (or dropped).
#[derive(Debug)]
struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.activity;
        activity
            .idle_since
            .store(activity.elapsed_nanos(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_one();
    }
}

/// A response body that keeps its request counted as in progress until it is done.
struct WatchedBody {
    body: Body,
    _request: RequestGuard,
}

impl hyper::body::Body for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.body)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.body)
    }
}

/// The socket, telling the watchdog when bytes arrive.
struct WatchedStream {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
