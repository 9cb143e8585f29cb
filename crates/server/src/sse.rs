//! Server-sent event streams paced by a request's latency plan (`model::LatencyPlan`), with
//! in-band errors and resets.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use model::LatencyPlan;

use crate::state::AppState;

/// One event to send.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    /// The `event:` line, for the Responses API; chat and completions send `data:` only.
    pub name: Option<&'static str>,
    pub data: String,
    /// Token-bearing events are paced: the first waits the time to first token, each later one
    /// the per-token interval. Other events go out immediately.
    pub carries_token: bool,
}

impl StreamEvent {
    pub fn data(data: String, carries_token: bool) -> StreamEvent {
        StreamEvent {
            name: None,
            data,
            carries_token,
        }
    }
}

/// How a stream breaks halfway, if it does.
#[derive(Debug, Clone)]
pub enum StreamBreak {
    /// This event is sent in place of the rest of the stream.
    InBandError(StreamEvent),
    /// The connection drops.
    Reset,
}

enum Step {
    Send(StreamEvent),
    Reset,
}

struct Pacer {
    state: AppState,
    started: Duration,
    plan: LatencyPlan,
    steps: VecDeque<Step>,
    tokens_sent: u64,
}

/// Streams `events` as `text/event-stream`, token `i` due at `started + ttft + i x per_token`
/// of server time, breaking halfway through when `fault` says so.
pub fn paced(
    state: AppState,
    started: Duration,
    plan: LatencyPlan,
    events: Vec<StreamEvent>,
    fault: Option<StreamBreak>,
) -> Response {
    let half = events.len() / 2;
    let mut steps: VecDeque<Step> = events.into_iter().map(Step::Send).collect();
    match fault {
        None => {}
        Some(StreamBreak::InBandError(event)) => {
            steps.truncate(half);
            steps.push_back(Step::Send(event));
        }
        Some(StreamBreak::Reset) => {
            steps.truncate(half);
            steps.push_back(Step::Reset);
        }
    }
    let pacer = Pacer {
        state,
        started,
        plan,
        steps,
        tokens_sent: 0,
    };
    let events = stream::unfold(pacer, |mut pacer| async move {
        let event = match pacer.steps.pop_front()? {
            Step::Reset => return Some((Err(reset_error()), pacer)),
            Step::Send(event) => event,
        };
        if event.carries_token {
            pacer.tokens_sent += 1;
            let due = pacer.started + pacer.plan.total(pacer.tokens_sent);
            // On shutdown the stream just ends; the client sees it cut short.
            pacer.state.wait_until(due).await.ok()?;
        }
        let mut sse_event = Event::default().data(event.data);
        if let Some(name) = event.name {
            sse_event = sse_event.event(name);
        }
        Some((Ok(sse_event), pacer))
    });
    Sse::new(events).into_response()
}

fn reset_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "ratelab injected a connection reset",
    )
}

/// A response whose body fails at once, so the server drops the connection mid-response.
pub fn reset_connection() -> Response {
    let failing = stream::once(async { Err::<axum::body::Bytes, _>(reset_error()) });
    Response::new(Body::from_stream(failing))
}
