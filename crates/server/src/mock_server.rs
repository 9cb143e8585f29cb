//! `MockServer`: the server running in-process on a real socket, for tests and for
//! `ratelab serve`. Dropping the handle shuts it down.

use std::net::SocketAddr;
use std::time::Duration;

use model::{ConfigError, FaultScript, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::AdvanceError;
use crate::graded_api::GradedApi;
use crate::grading::Grader;
use crate::state::AppState;

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    // The cause is part of this message and deliberately not a `source`: a chain printer
    // would state it twice.
    #[error(
        "cannot listen on {address}: {cause} (pick another address or port, or 127.0.0.1:0 for any free port)"
    )]
    Bind {
        address: SocketAddr,
        cause: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
}

/// A running mock server. It listens until [`MockServer::shutdown`] or until dropped.
#[derive(Debug)]
pub struct MockServer {
    address: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockServer {
    /// Starts a server on a free loopback port.
    pub async fn start(config: ServerConfig) -> Result<MockServer, ServerError> {
        MockServer::bind(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a server on `address` (port 0 picks a free port).
    pub async fn bind(
        config: ServerConfig,
        address: SocketAddr,
    ) -> Result<MockServer, ServerError> {
        MockServer::bind_graded(config, address, None).await
    }

    /// Starts a server on `address` that grades the clients calling it into `grader`
    /// (`ratelab test`); `None` serves exactly as [`MockServer::bind`].
    pub async fn bind_graded(
        config: ServerConfig,
        address: SocketAddr,
        grader: Option<Grader>,
    ) -> Result<MockServer, ServerError> {
        let state = AppState::new(config)?;
        let models = state.model().model_names();
        // Building the tokenizers is blocking CPU work; it runs before the server accepts
        // requests so the first request does not pay for it.
        let _ =
            tokio::task::spawn_blocking(move || crate::token_count::load_tokenizers(&models)).await;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|cause| ServerError::Bind { address, cause })?;
        let address = listener
            .local_addr()
            .map_err(|cause| ServerError::Bind { address, cause })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let api = GradedApi::new(state.clone(), grader);
        let limits = state.config().connections;
        let task = tokio::spawn(crate::connections::serve(
            listener,
            api,
            state.clone(),
            limits,
            async move {
                // A dropped sender means the handle was dropped: stop too.
                let _ = stopped.await;
            },
        ));
        tracing::info!(%address, "mock OpenAI server listening");
        Ok(MockServer {
            address,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The socket address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`, the root (for `/metrics` and `/_admin`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `http://127.0.0.1:PORT/v1`, what `OPENAI_BASE_URL` should be set to.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// The shared state, for inspecting the server model (limits, faults) and metrics
    /// in-process.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Moves a manual clock forward; fails on the real clock, or past
    /// [`crate::clock::MANUAL_CLOCK_MAX`].
    pub fn advance_clock(&self, by: Duration) -> Result<Duration, AdvanceError> {
        self.state.clock().advance(by)
    }

    /// Adds a scripted fault sequence, as `POST /_admin/faults/scripts` does.
    pub fn add_fault_script(&self, script: FaultScript) {
        self.state.model().faults_mut().add_script(script);
    }

    /// Stops accepting connections, ends waits and streams, and waits for open connections to
    /// finish.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(ServerError::Serve),
                Err(join_error) => Err(ServerError::Serve(std::io::Error::other(join_error))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
