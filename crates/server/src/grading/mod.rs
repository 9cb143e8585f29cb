//! Grading a real client from what the server sees: per API key and in total, the requests,
//! the logical requests they belong to, early retries, the storm share and the retries of
//! answers that said not to retry. `ratelab test` reads it to judge a program it cannot see
//! into.
//!
//! **Logical requests.** Every attempt of the same call is one logical request. An attempt
//! carrying an `Idempotency-Key` or `x-ratelab-logical-id` header belongs to the logical
//! request of that (key, id). Otherwise it belongs to the open logical request of the same
//! (API key, body hash), when that request's last attempt has ended without success no more
//! than [`LOGICAL_WINDOW`] before; else it starts a new one. So identical prompts sent on
//! purpose look like retries: scripted clients and tests use distinct prompts (or an id).
//! `x-stainless-retry-count` restarts at each call of an outer wrapper such as tenacity, so it
//! is only counted as a hint (`sdk_retry_hints`), never used to group attempts.
//!
//! **Early retries** are attempts sent before the wait their previous attempt's 429 stated had
//! passed, measured from when the server sent the 429 to when the next attempt arrived (so
//! network time only ever makes a client look later, never early). The stated wait is the
//! smaller of `retry-after-ms` and `retry-after` when both are sent: a client honouring either
//! is on time. A 429 without either header states no wait, and its retry is never early.
//!
//! **The storm share** is `results::storm_share`, the reports' definition, fed with the
//! arrival time of every attempt and whether it was a retry. The server depends on the
//! `results` crate for it: `results` is pure (no I/O, no clock), so the dependency points
//! inward like every other, and there is one definition rather than a copy.
//!
//! **Tokens.** The handler that serves a graded attempt notes its tokens in the attempt's
//! [`GradingNote`]: the prompt's and the reserved output's when the limiter is asked, what the
//! limiter charged when it admits, the completion's when the reply is built, and whether the
//! server will break the reply off (an injected reset or in-band stream error). **Tokens
//! charged** add up what the limiter charged; **tokens wasted** what it charged to attempts
//! that did not deliver a success. A 429 is charged no tokens under any rejection rule
//! (`rejected_requests` counts rejections against request limits only), so it wastes none.
//!
//! **Live counts** ([`Grader::live_counts`], [`Grader::live_key_counts`]): running counters
//! read under the lock without building a [`Grading`], for `ratelab test`'s progress line and
//! `/metrics`.
//!
//! Memory: one small record per attempt, up to [`MAX_ATTEMPTS`]; attempts past it are still
//! counted in the totals but no longer grouped (`attempts_not_grouped`). API keys past
//! [`MAX_KEYS`] are pooled under `other`, and keys are reported redacted.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::HeaderMap;
use hashbrown::HashMap;
use results::{StormTracker, StormWindow};
use serde::Serialize;

mod answer;
mod records;
#[cfg(test)]
mod tests;

pub use answer::{Answer, AttemptTokens, Ending, GradingNote, classify};

/// How long after a failed attempt an attempt with the same key and body still counts as its
/// retry: longer than tenacity's `wait_random_exponential(max=60)` plus a slow attempt, shorter
/// than a deliberate repeat of a prompt usually comes.
pub const LOGICAL_WINDOW: Duration = Duration::from_secs(120);
/// Retries this close to the retry before them count as clustered.
pub const CLUSTER_WINDOW: Duration = Duration::from_millis(100);
/// Distinct API keys graded apart; later keys are pooled under [`POOLED_KEY`].
pub const MAX_KEYS: usize = 64;
/// Attempts grouped into logical requests; later attempts are counted, not grouped.
pub const MAX_ATTEMPTS: usize = 2_000_000;
/// The name keys past [`MAX_KEYS`] are pooled under.
pub const POOLED_KEY: &str = "other";
/// The name of requests without an API key.
pub const NO_KEY: &str = "(none)";

/// The header a client can set to name its logical request itself.
pub const LOGICAL_ID_HEADER: &str = "x-ratelab-logical-id";

/// One attempt as the server saw it arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LogicalId {
    /// From `Idempotency-Key` or `x-ratelab-logical-id`: joins regardless of time.
    Explicit(u64),
    /// From the body: joins an open request within [`LOGICAL_WINDOW`].
    Body(u64),
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    sent_ns: u64,
    /// `None` while the answer is being served.
    ended_ns: Option<u64>,
    answer: Option<Answer>,
    /// The answer said `x-should-retry: false`.
    should_not_retry: bool,
    tokens: AttemptTokens,
}

#[derive(Debug, Clone)]
struct Logical {
    key: usize,
    attempts: Vec<Attempt>,
}

impl Logical {
    fn succeeded(&self) -> bool {
        self.attempts
            .iter()
            .any(|attempt| attempt.answer == Some(Answer::Success))
    }
}

/// Counters kept online per key (and in total).
#[derive(Debug, Clone, Default)]
struct Online {
    requests: u64,
    /// Grouped attempts that started a logical request.
    logical_requests: u64,
    /// Logical requests whose first success has been answered.
    succeeded: u64,
    tokens_charged: u64,
    tokens_wasted: u64,
    retries: u64,
    early_retries: u64,
    clustered_retries: u64,
    last_retry_ns: Option<u64>,
    retried_should_not_retry: u64,
    retried_insufficient_quota: u64,
    sdk_retry_hints: u64,
    storm: StormTracker,
}

impl Online {
    fn record(&mut self, arrived_ns: u64, join: Option<&Attempt>, sdk_hint: bool) {
        self.requests += 1;
        self.sdk_retry_hints += u64::from(sdk_hint);
        let is_retry = join.is_some();
        self.storm.record(arrived_ns, is_retry);
        let Some(previous) = join else { return };
        self.retries += 1;
        if self
            .last_retry_ns
            .is_some_and(|last| arrived_ns.saturating_sub(last) <= nanos(CLUSTER_WINDOW))
        {
            self.clustered_retries += 1;
        }
        self.last_retry_ns = Some(arrived_ns);
        if previous.should_not_retry {
            self.retried_should_not_retry += 1;
        }
        if let Some(Answer::RateLimited {
            retry_after,
            insufficient_quota,
            ..
        }) = previous.answer
        {
            self.retried_insufficient_quota += u64::from(insufficient_quota);
            if let (Some(wait), Some(ended_ns)) = (retry_after, previous.ended_ns)
                && arrived_ns < ended_ns.saturating_add(nanos(wait))
            {
                self.early_retries += 1;
            }
        }
    }

    fn live(&self) -> LiveKeyCounts {
        LiveKeyCounts {
            logical_requests: self.logical_requests,
            retries: self.retries,
            early_retries: self.early_retries,
            succeeded: self.succeeded,
            tokens_charged: self.tokens_charged,
            tokens_wasted: self.tokens_wasted,
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, Default)]
struct State {
    key_names: Vec<String>,
    key_index: HashMap<String, usize>,
    per_key: Vec<Online>,
    total: Online,
    logical: Vec<Logical>,
    /// The latest logical request of each (key, id).
    latest: HashMap<(usize, LogicalId), usize>,
    grouped_attempts: usize,
    attempts_not_grouped: u64,
    /// 429s answered, grouped attempts or not.
    rate_limited_sent: u64,
}

/// Where an attempt was filed, to record its answer.
#[derive(Debug, Clone, Copy)]
pub struct AttemptTicket {
    /// The key's index.
    key: usize,
    /// `None` for an attempt past [`MAX_ATTEMPTS`].
    slot: Option<(usize, usize)>,
}

/// The grading state: cheap to clone, shared by the serving task and whoever reads the grade.
#[derive(Debug, Clone, Default)]
pub struct Grader {
    state: Arc<Mutex<State>>,
}

/// What the server saw of one key (or of every key, in [`Grading::total`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyGrade {
    /// HTTP requests (attempts) the API endpoints received.
    pub requests: u64,
    /// Logical requests they belong to.
    pub logical_requests: u64,
    /// Attempts after a logical request's first.
    pub retries: u64,
    /// Most attempts of one logical request.
    pub max_attempts: u64,
    /// `requests / logical_requests`.
    pub attempts_per_logical_request: f64,
    /// Logical requests that got a success.
    pub succeeded: u64,
    /// Logical requests that never did (the client gave them up, or stopped).
    pub gave_up: u64,
    /// Attempts answered with 429.
    pub rate_limited: u64,
    /// Retries sent before the wait the 429 before them stated.
    pub early_retries: u64,
    /// Retries within [`CLUSTER_WINDOW`] of the retry before them.
    pub clustered_retries: u64,
    /// The storm share (`results::storm_share`); absent when no second held 10 attempts.
    pub storm_share: Option<f64>,
    /// The window it was measured in (milliseconds since the server started).
    pub storm_window: Option<StormWindow>,
    /// Retries of answers carrying `x-should-retry: false`.
    pub retried_should_not_retry: u64,
    /// Retries of `insufficient_quota` 429s, which waiting never fixes.
    pub retried_insufficient_quota: u64,
    /// Attempts whose `x-stainless-retry-count` was above 0: the SDK's own retries only.
    pub sdk_retry_hints: u64,
    /// Tokens the limiter charged the attempts: each admitted attempt's token charge (by the
    /// limit set's `token_charge` rule, once even when organization and project limits are
    /// both charged); a refused attempt is charged none.
    pub tokens_charged: u64,
    /// Tokens charged to attempts that did not deliver a success: admitted attempts answered
    /// with an error, broken off (a reset, an in-band stream error) or abandoned by the client.
    pub tokens_wasted: u64,
}

/// Running totals over every key, read while the client runs (`ratelab test`'s progress
/// line) without building a [`Grading`]: counters the grader keeps anyway, copied under its
/// lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    /// HTTP requests (attempts) the API endpoints received.
    pub requests: u64,
    /// 429s sent so far; an attempt still being served is not counted yet.
    pub rate_limited: u64,
    /// Attempts after a logical request's first.
    pub retries: u64,
}

/// Running counters of one key (or of several pooled), read while the client runs
/// (`/metrics`) without building a [`Grading`]. They agree with the [`KeyGrade`] a grade at
/// the same moment would give; `logical_requests - succeeded` is its `gave_up`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveKeyCounts {
    /// Logical requests the attempts belong to.
    pub logical_requests: u64,
    /// Attempts after a logical request's first.
    pub retries: u64,
    /// Retries sent before the wait the 429 before them stated.
    pub early_retries: u64,
    /// Logical requests that got a success.
    pub succeeded: u64,
    /// [`KeyGrade::tokens_charged`].
    pub tokens_charged: u64,
    /// [`KeyGrade::tokens_wasted`].
    pub tokens_wasted: u64,
}

impl LiveKeyCounts {
    /// Adds `other`'s counts, pooling two keys.
    pub fn add(&mut self, other: &LiveKeyCounts) {
        self.logical_requests += other.logical_requests;
        self.retries += other.retries;
        self.early_retries += other.early_retries;
        self.succeeded += other.succeeded;
        self.tokens_charged += other.tokens_charged;
        self.tokens_wasted += other.tokens_wasted;
    }
}

/// The grade of everything seen so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Grading {
    /// Every key together.
    pub total: KeyGrade,
    /// By redacted API key.
    pub keys: BTreeMap<String, KeyGrade>,
    /// Attempts past [`MAX_ATTEMPTS`], counted but not grouped into logical requests.
    pub attempts_not_grouped: u64,
    /// [`LOGICAL_WINDOW`] in milliseconds.
    pub logical_window_ms: u64,
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Grader {
    /// An empty grader.
    pub fn new() -> Grader {
        Grader::default()
    }

    /// Files an attempt arriving at `now` (server time) with these headers and body.
    pub fn begin(&self, now: Duration, headers: &HeaderMap, body: &[u8]) -> AttemptTicket {
        let key = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let explicit = ["idempotency-key", LOGICAL_ID_HEADER]
            .iter()
            .find_map(|name| headers.get(*name))
            .map(|value| LogicalId::Explicit(hash_bytes(value.as_bytes())));
        let id = explicit.unwrap_or_else(|| LogicalId::Body(hash_bytes(body)));
        let sdk_hint = headers
            .get("x-stainless-retry-count")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u32>().ok())
            .is_some_and(|count| count > 0);
        self.begin_with(now, key, id, sdk_hint)
    }

    fn begin_with(
        &self,
        now: Duration,
        key: Option<&str>,
        id: LogicalId,
        sdk_hint: bool,
    ) -> AttemptTicket {
        let now_ns = nanos(now);
        let mut state = lock(&self.state);
        let state = &mut *state;
        let key = state.key(key);
        let joined = state.latest.get(&(key, id)).copied().filter(|&index| {
            let logical = &state.logical[index];
            let Some(last) = logical.attempts.last() else {
                return false;
            };
            // A request still being served is a concurrent twin, not a retry.
            let Some(ended_ns) = last.ended_ns else {
                return false;
            };
            match id {
                LogicalId::Explicit(_) => true,
                LogicalId::Body(_) => {
                    last.answer != Some(Answer::Success)
                        && now_ns.saturating_sub(ended_ns) <= nanos(LOGICAL_WINDOW)
                }
            }
        });
        let previous = joined.and_then(|index| state.logical[index].attempts.last().copied());
        state.per_key[key].record(now_ns, previous.as_ref(), sdk_hint);
        state.total.record(now_ns, previous.as_ref(), sdk_hint);
        if state.grouped_attempts >= MAX_ATTEMPTS {
            state.attempts_not_grouped += 1;
            return AttemptTicket { key, slot: None };
        }
        state.grouped_attempts += 1;
        let attempt = Attempt {
            sent_ns: now_ns,
            ended_ns: None,
            answer: None,
            should_not_retry: false,
            tokens: AttemptTokens::default(),
        };
        let index = match joined {
            Some(index) => {
                state.logical[index].attempts.push(attempt);
                index
            }
            None => {
                state.per_key[key].logical_requests += 1;
                state.total.logical_requests += 1;
                state.logical.push(Logical {
                    key,
                    attempts: vec![attempt],
                });
                let index = state.logical.len() - 1;
                state.latest.insert((key, id), index);
                index
            }
        };
        AttemptTicket {
            key,
            slot: Some((index, state.logical[index].attempts.len() - 1)),
        }
    }

    /// Records how a filed attempt ended, at `now`: its answer was sent, or the client left.
    pub fn finish(&self, ticket: AttemptTicket, now: Duration, ending: Ending) {
        let mut state = lock(&self.state);
        let State {
            per_key,
            total,
            logical,
            rate_limited_sent,
            ..
        } = &mut *state;
        if matches!(ending.answer, Answer::RateLimited { .. }) {
            *rate_limited_sent += 1;
        }
        let charged = u64::from(ending.tokens.charged);
        let wasted = if ending.answer == Answer::Success {
            0
        } else {
            charged
        };
        for online in [&mut per_key[ticket.key], &mut *total] {
            online.tokens_charged += charged;
            online.tokens_wasted += wasted;
        }
        let Some((index, number)) = ticket.slot else {
            return;
        };
        let Some(logical) = logical.get_mut(index) else {
            return;
        };
        let first_success = ending.answer == Answer::Success && !logical.succeeded();
        if let Some(attempt) = logical.attempts.get_mut(number) {
            attempt.ended_ns = Some(nanos(now));
            attempt.answer = Some(ending.answer);
            attempt.should_not_retry = ending.should_not_retry;
            attempt.tokens = ending.tokens;
        }
        if first_success {
            per_key[logical.key].succeeded += 1;
            total.succeeded += 1;
        }
    }

    /// The totals so far, cheap enough to read every second while the client runs.
    pub fn live_counts(&self) -> LiveCounts {
        let state = lock(&self.state);
        LiveCounts {
            requests: state.total.requests,
            rate_limited: state.rate_limited_sent,
            retries: state.total.retries,
        }
    }

    /// Every key's running counters, by the name the grade gives the key (redacted, `other`,
    /// or `(none)`), in order of first sight.
    pub fn live_key_counts(&self) -> Vec<(String, LiveKeyCounts)> {
        let state = lock(&self.state);
        let counts = state.per_key.iter().map(Online::live);
        state.key_names.iter().cloned().zip(counts).collect()
    }

    /// The grade of everything seen so far.
    pub fn grade(&self) -> Grading {
        lock(&self.state).grade()
    }

    /// The grade and the attempt records ([`Grader::attempt_records`]) of one moment, read
    /// under one lock: a report built from both while clients still send agrees with itself.
    pub fn snapshot(&self) -> (Grading, Vec<results::AttemptRecord>) {
        let state = lock(&self.state);
        (state.grade(), state.attempt_records())
    }

    /// The graded keys' names (redacted), indexed like [`scenario::ClientId::instance`] in
    /// [`Grader::attempt_records`].
    pub fn key_names(&self) -> Vec<String> {
        lock(&self.state).key_names.clone()
    }
}

impl State {
    /// See [`Grader::grade`].
    fn grade(&self) -> Grading {
        let mut per_key: Vec<KeyGrade> = self.per_key.iter().map(online_grade).collect();
        let mut total = online_grade(&self.total);
        for logical in &self.logical {
            let attempts = logical.attempts.len() as u64;
            let succeeded = logical.succeeded();
            let limited = logical
                .attempts
                .iter()
                .filter(|attempt| matches!(attempt.answer, Some(Answer::RateLimited { .. })))
                .count() as u64;
            for grade in [&mut per_key[logical.key], &mut total] {
                grade.logical_requests += 1;
                grade.max_attempts = grade.max_attempts.max(attempts);
                grade.rate_limited += limited;
                if succeeded {
                    grade.succeeded += 1;
                } else {
                    grade.gave_up += 1;
                }
            }
        }
        for grade in per_key.iter_mut().chain(std::iter::once(&mut total)) {
            grade.attempts_per_logical_request = if grade.logical_requests == 0 {
                0.0
            } else {
                round4(grade.requests as f64 / grade.logical_requests as f64)
            };
        }
        Grading {
            total,
            keys: self.key_names.iter().cloned().zip(per_key).collect(),
            attempts_not_grouped: self.attempts_not_grouped,
            logical_window_ms: nanos(LOGICAL_WINDOW) / 1_000_000,
        }
    }

    fn key(&mut self, key: Option<&str>) -> usize {
        let raw = key.unwrap_or(NO_KEY);
        if let Some(&index) = self.key_index.get(raw) {
            return index;
        }
        let name = if self.key_names.len() + 1 >= MAX_KEYS {
            POOLED_KEY.to_owned()
        } else if key.is_none() {
            NO_KEY.to_owned()
        } else {
            model::redact(raw)
        };
        // Two keys with the same redacted form (or every key past the cap) share one entry.
        let index = match self.key_names.iter().position(|known| *known == name) {
            Some(index) => index,
            None => {
                self.key_names.push(name);
                self.per_key.push(Online::default());
                self.key_names.len() - 1
            }
        };
        self.key_index.insert(raw.to_owned(), index);
        index
    }
}

fn online_grade(online: &Online) -> KeyGrade {
    let storm_window = online.storm.clone().finish();
    KeyGrade {
        requests: online.requests,
        retries: online.retries,
        early_retries: online.early_retries,
        clustered_retries: online.clustered_retries,
        storm_share: storm_window.map(|window| round4(window.share())),
        storm_window,
        retried_should_not_retry: online.retried_should_not_retry,
        retried_insufficient_quota: online.retried_insufficient_quota,
        sdk_retry_hints: online.sdk_retry_hints,
        tokens_charged: online.tokens_charged,
        tokens_wasted: online.tokens_wasted,
        ..KeyGrade::default()
    }
}

fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    // SipHash with fixed keys: stable within a run, which is all grouping needs.
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}
