//! [`GradedApi`]: the mock server's service with an optional [`Grader`] in front. Without a
//! grader it passes every request straight to [`MockApi`], so an ungraded server's hot path is
//! unchanged; with one it reads each API call's body to hash it and reports the answer, with
//! the tokens the handler noted, or the client's leaving when the call is dropped unanswered.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use http_body_util::{BodyExt, Limited};
use tower::Service;

use crate::error::ApiError;
use crate::grading::{AttemptTicket, Ending, Grader, GradingNote, classify};
use crate::routes::MockApi;
use crate::state::AppState;

/// Whether a request is an API call grading counts: a POST under `/v1/`.
fn is_graded(request: &Request<impl Sized>) -> bool {
    request.method() == axum::http::Method::POST && request.uri().path().starts_with("/v1/")
}

/// [`MockApi`], grading API calls when a [`Grader`] is attached; without one it passes every
/// request straight through, so an ungraded server's hot path is unchanged.
#[derive(Debug, Clone)]
pub struct GradedApi {
    api: MockApi,
    state: AppState,
    grader: Option<Grader>,
}

impl GradedApi {
    /// Wraps the service of `state`; a grader is also attached to the state, for `/metrics`.
    pub fn new(state: AppState, grader: Option<Grader>) -> GradedApi {
        if let Some(grader) = &grader {
            state.attach_grader(grader);
        }
        GradedApi {
            api: crate::routes::app(state.clone()),
            state,
            grader,
        }
    }
}

type GradedFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<B> Service<Request<B>> for GradedApi
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<crate::routes::MockApiFuture, GradedFuture>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let grader = match &self.grader {
            Some(grader) if is_graded(&request) => grader.clone(),
            _ => return Either::Left(self.api.call(request)),
        };
        let mut api = self.api.clone();
        let state = self.state.clone();
        Either::Right(Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // The body is read here to hash it, with the same size limit the routes apply.
            let limit = state.config().max_body_bytes;
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return Ok(ApiError::PayloadTooLarge { limit_bytes: limit }.into_response());
                }
            };
            let ticket = grader.begin(state.clock().now(), &parts.headers, &bytes);
            let note = Arc::new(GradingNote::default());
            parts.extensions.insert(Arc::clone(&note));
            let mut unanswered = Unanswered {
                grader,
                state,
                ticket: Some(ticket),
                note,
            };
            let response = api
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await?;
            unanswered.answer(&response);
            Ok(response)
        }))
    }
}

/// A graded attempt being served. Dropped before its answer (the client closed the
/// connection, or the server stopped), it records the attempt as abandoned, with the tokens
/// charged so far.
struct Unanswered {
    grader: Grader,
    state: AppState,
    ticket: Option<AttemptTicket>,
    note: Arc<GradingNote>,
}

impl Unanswered {
    fn answer(&mut self, response: &Response) {
        if let Some(ticket) = self.ticket.take() {
            let ending = classify(response, &self.note);
            self.grader.finish(ticket, self.state.clock().now(), ending);
        }
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let ending = Ending::abandoned(&self.note);
            self.grader.finish(ticket, self.state.clock().now(), ending);
        }
    }
}
