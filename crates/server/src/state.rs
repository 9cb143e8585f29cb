//! `AppState`: the shared, cheaply cloned state every handler sees, with the server model and
//! its random streams behind one lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use model::{ConfigError, ServerConfig, ServerModel};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{Semaphore, watch};

use crate::auth::Directory;
use crate::clock::Clock;
use crate::content::mix;
use crate::grading::Grader;
use crate::metrics::Metrics;
use crate::token_count::TokenCounts;

/// Shared server state. Locks are never held across an `.await`.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    /// `config.seed`, else 0: content, ids and the random streams derive from it.
    seed: u64,
    clock: Clock,
    directory: Directory,
    model: Mutex<ModelState>,
    metrics: Metrics,
    token_counts: TokenCounts,
    /// Permits (one per KiB of prompt) for counting long prompts off the async workers.
    counting_budget: Arc<Semaphore>,
    counting_budget_permits: u32,
    requests_seen: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// The grader of a graded server (`GradedApi`), whose per-key counters `/metrics` shows.
    grader: OnceLock<Grader>,
    /// What `GET /_admin/report` answers, when whoever grades the server set it.
    report: OnceLock<ReportSource>,
}

/// Builds the document `GET /_admin/report` answers from the server time of the call (how long
/// the clients have run) and the grader's state then. Set by whoever grades the server
/// (`ratelab serve --scenario` builds the scenario's report); the server knows no scenarios.
pub struct ReportSource(Box<dyn Fn(Duration) -> serde_json::Value + Send + Sync>);

impl std::fmt::Debug for ReportSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ReportSource")
    }
}

/// The server model and the random streams its decisions draw from, behind one lock: a
/// request takes it once to be decided (fault, limits, latency draw). It dereferences to the
/// model for reads and admin changes.
#[derive(Debug)]
pub struct ModelState {
    pub model: ServerModel,
    /// Fault draws (`ServerModel::decide`), seeded from the server's seed.
    pub fault_rng: ChaCha8Rng,
    /// Latency jitter (`LatencyConfig::draw_factor`), seeded from the server's seed.
    pub latency_rng: ChaCha8Rng,
}

impl std::ops::Deref for ModelState {
    type Target = ServerModel;

    fn deref(&self) -> &ServerModel {
        &self.model
    }
}

impl std::ops::DerefMut for ModelState {
    fn deref_mut(&mut self) -> &mut ServerModel {
        &mut self.model
    }
}

/// Why a server-time wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShuttingDown;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // State behind these locks stays consistent even if a holder panicked mid-request.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl AppState {
    /// Validates the config and builds the state; must run inside a tokio runtime.
    pub fn new(config: ServerConfig) -> Result<AppState, ConfigError> {
        config.validate("server config")?;
        let model = ServerModel::new(&config).map_err(|error| ConfigError::Invalid {
            origin: "server config".to_owned(),
            message: error.to_string(),
        })?;
        let seed = config.seed_or_default();
        // One maximal body's worth of counting at a time (see `count_off_workers`).
        let counting_budget_permits = u32::try_from(config.max_body_bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        let directory = Directory::from_config(&config);
        let metrics = Metrics::new(&crate::routes::ENDPOINTS, directory.key_labels());
        Ok(AppState {
            inner: Arc::new(Inner {
                seed,
                clock: Clock::new(config.clock),
                directory,
                model: Mutex::new(ModelState {
                    model,
                    fault_rng: ChaCha8Rng::seed_from_u64(mix(seed, 1)),
                    latency_rng: ChaCha8Rng::seed_from_u64(mix(seed, 2)),
                }),
                metrics,
                token_counts: TokenCounts::default(),
                counting_budget: Arc::new(Semaphore::new(counting_budget_permits as usize)),
                counting_budget_permits,
                requests_seen: AtomicU64::new(0),
                shutdown: watch::Sender::new(false),
                grader: OnceLock::new(),
                report: OnceLock::new(),
                config,
            }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Sets what `GET /_admin/report` answers; only the first call takes effect, and it says
    /// whether it did.
    pub fn set_report_source(
        &self,
        source: impl Fn(Duration) -> serde_json::Value + Send + Sync + 'static,
    ) -> bool {
        self.inner
            .report
            .set(ReportSource(Box::new(source)))
            .is_ok()
    }

    /// The report as of now (server time), when a source is set.
    pub fn report(&self) -> Option<serde_json::Value> {
        let now = self.clock().now();
        self.inner.report.get().map(|source| (source.0)(now))
    }

    /// The seed of content, ids and the random streams: the config's, else 0.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The grader grading this server's clients, if one is attached.
    pub fn grader(&self) -> Option<&Grader> {
        self.inner.grader.get()
    }

    /// Attaches the grader `/metrics` reads per-key grading counters from; a server has one
    /// grader, so a second is ignored.
    pub(crate) fn attach_grader(&self, grader: &Grader) {
        let _ = self.inner.grader.set(grader.clone());
    }

    /// Prompt token counting, cached for repeated identical prompts.
    pub fn token_counts(&self) -> &TokenCounts {
        &self.inner.token_counts
    }

    /// The permits long prompts' token counts take, one per KiB; as many as `max_body_bytes`
    /// has KiB.
    pub fn counting_budget(&self) -> &Arc<Semaphore> {
        &self.inner.counting_budget
    }

    /// How many permits [`AppState::counting_budget`] holds when nothing is being counted.
    pub fn counting_budget_permits(&self) -> u32 {
        self.inner.counting_budget_permits
    }

    /// The server model with its random streams. Never held across an `.await`.
    pub fn model(&self) -> MutexGuard<'_, ModelState> {
        lock(&self.inner.model)
    }

    /// A fresh `req_...` id: 32 hex digits derived from the seed and a counter.
    pub fn next_request_id(&self) -> String {
        self.next_id("req_")
    }

    /// A fresh id: `prefix` and 32 hex digits derived from the seed and a counter shared by
    /// every kind of id, in one allocation of exactly its length.
    pub fn next_id(&self, prefix: &str) -> String {
        let sequence = self.inner.requests_seen.fetch_add(1, Ordering::Relaxed);
        let high = mix(self.inner.seed, sequence);
        let low = mix(high, sequence);
        let mut id = String::with_capacity(prefix.len() + 32);
        id.push_str(prefix);
        push_hex(&mut id, high);
        push_hex(&mut id, low);
        id
    }

    /// Waits `duration` of server time from now, unless the server starts shutting down first.
    pub async fn wait(&self, duration: Duration) -> Result<(), ShuttingDown> {
        self.wait_until(self.inner.clock.now() + duration).await
    }

    /// Waits until the server clock reads `deadline`, unless the server starts shutting down.
    pub async fn wait_until(&self, deadline: Duration) -> Result<(), ShuttingDown> {
        // Most replies have no latency to wait out; skip the timer and the shutdown
        // subscription (when both are ready, `select!` may pick either, so this is one of the
        // outcomes the waiting path already had).
        if self.inner.clock.now() >= deadline {
            return Ok(());
        }
        let mut shutdown = self.inner.shutdown.subscribe();
        tokio::select! {
            () = self.inner.clock.sleep_until(deadline) => Ok(()),
            _ = shutdown.wait_for(|stopping| *stopping) => Err(ShuttingDown),
        }
    }

    /// Tells every waiting request that the server is going away.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

/// Appends `value` as 16 lowercase hex digits (what `{:016x}` writes), without the formatting
/// machinery: every request makes an id.
fn push_hex(out: &mut String, value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(char::from(DIGITS[((value >> (shift * 4)) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_matches_the_format_macro() {
        for value in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut out = String::new();
            super::push_hex(&mut out, value);
            assert_eq!(out, format!("{value:016x}"));
        }
    }
}
