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
use axum::response::Response;
use hashbrown::HashMap;
use model::LateFault;
use results::{
    AttemptDecision, AttemptOutcome, AttemptRecord, LimitKind, StormTracker, StormWindow,
};
use scenario::ClientId;
use serde::Serialize;

use crate::error::Exhausted;

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

/// What the server answered one attempt, as grading needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx.
    Success,
    /// A 429: the wait it stated (the smaller retry header), and whether waiting never helps
    /// (`insufficient_quota`).
    RateLimited {
        /// The stated wait, if any.
        retry_after: Option<Duration>,
        /// The 429 was `insufficient_quota`.
        insufficient_quota: bool,
        /// The limit it is recorded under in the report, as the simulator records it.
        limit: LimitKind,
    },
    /// Any other status.
    Failed {
        /// The HTTP status.
        status: u16,
    },
    /// A 2xx whose body the server broke off, so the client got no success: an injected
    /// connection reset (`reset`), or a stream's in-band error.
    Broken {
        /// The connection was reset, rather than an error event sent.
        reset: bool,
    },
    /// No answer: the client closed the connection (a timeout, a cancel) while the attempt
    /// was being served.
    Abandoned,
}

/// The tokens of one attempt, as the handler that served it noted them ([`GradingNote`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptTokens {
    /// The prompt's tokens: the usage of a served reply, else the count the limiter was asked
    /// about; 0 for an attempt refused before (a 400, a 401).
    pub prompt: u32,
    /// The output the request reserves: its `max_tokens` (or `max_completion_tokens`,
    /// `max_output_tokens`) times the choices it asks for; 0 when it sets no cap.
    pub reserved_output: u32,
    /// Completion tokens of the reply the server built; 0 when it built none.
    pub completion: u32,
    /// What the limiter charged: the request's token charge when admitted, else 0.
    pub charged: u32,
}

/// What the handler serving a graded attempt tells grading that the answer does not show: its
/// tokens and whether the reply will be broken off. [`GradedApi`](crate::GradedApi) attaches
/// one to each graded request, the principal the key resolves to carries it to the
/// pipeline, and an ungraded request has none, so the ungraded hot path does not pay for it.
#[derive(Debug, Default)]
pub struct GradingNote(Mutex<Noted>);

#[derive(Debug, Clone, Copy, Default)]
struct Noted {
    tokens: AttemptTokens,
    late_fault: Option<LateFault>,
}

fn saturating_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl GradingNote {
    fn noted(&self) -> MutexGuard<'_, Noted> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The limiter is asked about `prompt` tokens with `reserved_output` more reserved.
    pub(crate) fn asked(&self, prompt: u64, reserved_output: u64) {
        let mut noted = self.noted();
        noted.tokens.prompt = saturating_u32(prompt);
        noted.tokens.reserved_output = saturating_u32(reserved_output);
    }

    /// The limiter admitted the attempt, charging `charged` tokens; `late_fault` will strike
    /// its reply.
    pub(crate) fn admitted(&self, charged: u64, late_fault: Option<LateFault>) {
        let mut noted = self.noted();
        noted.tokens.charged = saturating_u32(charged);
        noted.late_fault = late_fault;
    }

    /// The reply is built with this usage.
    pub(crate) fn served(&self, prompt: u64, completion: u64) {
        let mut noted = self.noted();
        noted.tokens.prompt = saturating_u32(prompt);
        noted.tokens.completion = saturating_u32(completion);
    }

    fn read(&self) -> Noted {
        *self.noted()
    }
}

/// How an attempt ended, as grading records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// What the server answered.
    pub answer: Answer,
    /// The answer said `x-should-retry: false`.
    pub should_not_retry: bool,
    /// The attempt's tokens.
    pub tokens: AttemptTokens,
}

impl Ending {
    /// An end with `answer`, no `x-should-retry: false` and no tokens.
    pub fn answered(answer: Answer) -> Ending {
        Ending {
            answer,
            should_not_retry: false,
            tokens: AttemptTokens::default(),
        }
    }

    /// The end of an attempt the client closed before its answer.
    pub fn abandoned(note: &GradingNote) -> Ending {
        Ending {
            tokens: note.read().tokens,
            ..Ending::answered(Answer::Abandoned)
        }
    }
}

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
        let state = lock(&self.state);
        let mut per_key: Vec<KeyGrade> = state.per_key.iter().map(online_grade).collect();
        let mut total = online_grade(&state.total);
        for logical in &state.logical {
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
            keys: state.key_names.iter().cloned().zip(per_key).collect(),
            attempts_not_grouped: state.attempts_not_grouped,
            logical_window_ms: nanos(LOGICAL_WINDOW) / 1_000_000,
        }
    }

    /// Every grouped attempt as the trace's record, in send order, so `results::RunMetrics`
    /// aggregates a real client exactly as it does a simulated one. Each key is one instance of
    /// group 0; a logical request's number is its order of arrival within its key. The decision
    /// after an attempt is a retry after the gap to the next attempt, done after a success,
    /// else a give-up. An attempt the server broke off with a reset, or the client abandoned,
    /// is the trace's `Timeout` (the client saw no answer), as the simulator records a reset;
    /// an in-band stream error is a 500. Tokens are the attempt's [`AttemptTokens`]: `max_tokens`
    /// is the reserved output, and completion tokens count only on a success, as in the trace.
    pub fn attempt_records(&self) -> Vec<AttemptRecord> {
        let state = lock(&self.state);
        let mut numbers = vec![0u64; state.key_names.len()];
        let mut records = Vec::with_capacity(state.grouped_attempts);
        for logical in &state.logical {
            let request = numbers[logical.key];
            numbers[logical.key] += 1;
            let arrived_ns = logical.attempts.first().map_or(0, |first| first.sent_ns);
            for (number, attempt) in logical.attempts.iter().enumerate() {
                let ended_ns = attempt.ended_ns.unwrap_or(attempt.sent_ns);
                let outcome = match attempt.answer {
                    Some(Answer::Success) => AttemptOutcome::Success,
                    Some(Answer::RateLimited {
                        retry_after, limit, ..
                    }) => AttemptOutcome::RateLimited {
                        limit,
                        retry_after_ns: retry_after.map(nanos),
                    },
                    Some(Answer::Failed { status }) => AttemptOutcome::ServerError { status },
                    Some(Answer::Broken { reset: false }) => {
                        AttemptOutcome::ServerError { status: 500 }
                    }
                    // Never answered (the client left, or the server stopped first): the
                    // client saw no response.
                    Some(Answer::Broken { reset: true } | Answer::Abandoned) | None => {
                        AttemptOutcome::Timeout
                    }
                };
                let succeeded = attempt.answer == Some(Answer::Success);
                let decision = match (logical.attempts.get(number + 1), attempt.answer) {
                    (Some(next), _) => AttemptDecision::Retry {
                        after_ns: next.sent_ns.saturating_sub(ended_ns),
                    },
                    (None, Some(Answer::Success)) => AttemptDecision::Done,
                    (None, _) => AttemptDecision::GiveUp { reason: None },
                };
                records.push(AttemptRecord {
                    run: 0,
                    client: ClientId {
                        group: 0,
                        instance: u32::try_from(logical.key).unwrap_or(u32::MAX),
                    },
                    request,
                    attempt: u32::try_from(number).unwrap_or(u32::MAX),
                    arrived_ns,
                    sent_ns: attempt.sent_ns,
                    ended_ns,
                    prompt_tokens: attempt.tokens.prompt,
                    max_tokens: attempt.tokens.reserved_output,
                    completion_tokens: if succeeded {
                        attempt.tokens.completion
                    } else {
                        0
                    },
                    outcome,
                    decision,
                });
            }
        }
        records.sort_by_key(|record| (record.sent_ns, record.client.instance, record.request));
        records
    }

    /// The graded keys' names (redacted), indexed like [`ClientId::instance`] in
    /// [`Grader::attempt_records`].
    pub fn key_names(&self) -> Vec<String> {
        lock(&self.state).key_names.clone()
    }
}

impl State {
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

/// How an answered attempt ended: the answer as the response head shows it, unless the note
/// says the server will break a 2xx off; whether it said not to retry; the noted tokens.
pub fn classify(response: &Response, note: &GradingNote) -> Ending {
    let noted = note.read();
    let (answer, should_not_retry) = classify_head(response);
    let answer = match (answer, noted.late_fault) {
        (Answer::Success, Some(LateFault::ConnectionReset)) => Answer::Broken { reset: true },
        (Answer::Success, Some(LateFault::StreamError)) => Answer::Broken { reset: false },
        (answer, _) => answer,
    };
    Ending {
        answer,
        should_not_retry,
        tokens: noted.tokens,
    }
}

/// What grading reads of a response head: the answer, and whether it said not to retry.
fn classify_head(response: &Response) -> (Answer, bool) {
    let headers = response.headers();
    let should_not_retry = headers
        .get("x-should-retry")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"false"));
    let status = response.status().as_u16();
    let answer = match status {
        200..=299 => Answer::Success,
        429 => {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<f64>().ok())
                    .filter(|value| value.is_finite() && *value >= 0.0)
            };
            let millis = header("retry-after-ms").map(|ms| Duration::from_secs_f64(ms / 1000.0));
            let seconds = header("retry-after").map(Duration::from_secs_f64);
            let retry_after = match (millis, seconds) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let insufficient_quota = response
                .extensions()
                .get::<Exhausted>()
                .is_some_and(|Exhausted(kind)| kind == "insufficient_quota");
            // Set on every 429 the server writes; another (a handler's own) counts as `Other`.
            let limit = response
                .extensions()
                .get::<LimitKind>()
                .copied()
                .unwrap_or(LimitKind::Other);
            Answer::RateLimited {
                retry_after,
                insufficient_quota,
                limit,
            }
        }
        status => Answer::Failed { status },
    };
    (answer, should_not_retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limited(retry_after_ms: u64) -> Answer {
        Answer::RateLimited {
            retry_after: Some(MS * retry_after_ms as u32),
            insufficient_quota: false,
            limit: LimitKind::Rpm,
        }
    }

    /// Sends one attempt at `at_ms` answered `answer` 10 ms later.
    fn attempt(grader: &Grader, at_ms: u32, key: &str, body: u64, answer: Answer) {
        let ticket = grader.begin_with(MS * at_ms, Some(key), LogicalId::Body(body), false);
        grader.finish(ticket, MS * (at_ms + 10), Ending::answered(answer));
    }

    #[test]
    fn a_retry_after_the_stated_wait_is_on_time_and_one_before_it_is_early() {
        let grader = Grader::new();
        attempt(&grader, 0, "sk-a", 1, limited(1000));
        // Answered at 10 ms with 1 s to wait: 1010 ms is on time.
        attempt(&grader, 1010, "sk-a", 1, limited(1000));
        // Answered at 1020 ms: 2019 ms is 1 ms early.
        attempt(&grader, 2019, "sk-a", 1, Answer::Success);
        let grade = grader.grade().total;
        assert_eq!(
            (grade.requests, grade.logical_requests, grade.retries),
            (3, 1, 2)
        );
        assert_eq!(grade.early_retries, 1);
        assert_eq!(
            (grade.succeeded, grade.gave_up, grade.max_attempts),
            (1, 0, 3)
        );
    }

    #[test]
    fn the_same_body_after_a_success_or_past_the_window_is_a_new_logical_request() {
        let grader = Grader::new();
        attempt(&grader, 0, "sk-a", 1, Answer::Success);
        attempt(&grader, 100, "sk-a", 1, limited(0));
        let past_window = 110 + LOGICAL_WINDOW.as_millis() as u32 + 1;
        attempt(&grader, past_window, "sk-a", 1, Answer::Success);
        let grade = grader.grade().total;
        assert_eq!((grade.logical_requests, grade.retries), (3, 0));
        assert_eq!((grade.succeeded, grade.gave_up), (2, 1));
    }

    #[test]
    fn keys_and_bodies_separate_logical_requests_and_keys_are_graded_apart() {
        let grader = Grader::new();
        attempt(&grader, 0, "sk-aaaaaaaa1111", 1, limited(500));
        attempt(&grader, 0, "sk-bbbbbbbb2222", 1, limited(500));
        attempt(&grader, 100, "sk-aaaaaaaa1111", 1, Answer::Success);
        attempt(&grader, 600, "sk-bbbbbbbb2222", 2, Answer::Success);
        let grading = grader.grade();
        assert_eq!(grading.total.logical_requests, 3);
        assert_eq!(grading.total.early_retries, 1);
        assert_eq!(grading.keys.len(), 2);
        let early: Vec<u64> = grading.keys.values().map(|key| key.early_retries).collect();
        assert_eq!(early, [1, 0]);
        // The key that gave its first request up.
        let gave_up: Vec<u64> = grading.keys.values().map(|key| key.gave_up).collect();
        assert_eq!(gave_up, [0, 1]);
        assert!(
            grading
                .keys
                .keys()
                .all(|name| !name.contains("aaaaaaaa1111"))
        );
    }

    #[test]
    fn explicit_ids_join_across_bodies_and_a_concurrent_twin_is_not_a_retry() {
        let grader = Grader::new();
        let first = grader.begin_with(Duration::ZERO, Some("k"), LogicalId::Explicit(7), false);
        // The same body while the first is still being served: a second logical request.
        let twin = grader.begin_with(MS, Some("k"), LogicalId::Body(1), false);
        let other = grader.begin_with(MS, Some("k"), LogicalId::Body(1), false);
        grader.finish(first, MS * 5, Ending::answered(limited(0)));
        grader.finish(twin, MS * 5, Ending::answered(Answer::Success));
        grader.finish(other, MS * 5, Ending::answered(Answer::Success));
        attempt(&grader, 20, "k", 0, Answer::Success);
        let retry = grader.begin_with(MS * 40, Some("k"), LogicalId::Explicit(7), false);
        grader.finish(retry, MS * 50, Ending::answered(Answer::Success));
        let grade = grader.grade().total;
        assert_eq!(
            (grade.requests, grade.logical_requests, grade.retries),
            (5, 4, 1)
        );
    }

    #[test]
    fn retries_of_answers_that_said_not_to_retry_are_counted() {
        let grader = Grader::new();
        let quota = Answer::RateLimited {
            retry_after: None,
            insufficient_quota: true,
            limit: LimitKind::Other,
        };
        attempt(&grader, 0, "k", 1, quota);
        attempt(&grader, 20, "k", 1, quota);
        let ticket = grader.begin_with(MS * 100, Some("k"), LogicalId::Body(2), false);
        grader.finish(
            ticket,
            MS * 110,
            Ending {
                should_not_retry: true,
                ..Ending::answered(Answer::Failed { status: 500 })
            },
        );
        attempt(&grader, 120, "k", 2, Answer::Success);
        let grade = grader.grade().total;
        assert_eq!(grade.retried_insufficient_quota, 1);
        assert_eq!(grade.retried_should_not_retry, 1);
        // A 429 without a stated wait makes no retry early.
        assert_eq!(grade.early_retries, 0);
    }

    #[test]
    fn a_burst_of_immediate_retries_is_a_storm_and_clustered() {
        let grader = Grader::new();
        // Two logical requests, each retried four times 20 ms apart: 10 attempts in 200 ms,
        // 8 of them retries, the storm share of the reports' definition.
        for round in 0..5u32 {
            for body in 0..2u64 {
                attempt(&grader, round * 20 + body as u32, "k", body, limited(1000));
            }
        }
        let grade = grader.grade().total;
        assert_eq!(grade.retries, 8);
        assert_eq!(grade.storm_share, Some(0.8));
        let expected = results::storm_share((0..5u64).flat_map(|round| {
            (0..2u64).map(move |body| ((round * 20 + body) * 1_000_000, round > 0))
        }));
        assert_eq!(grade.storm_window, expected);
        // Every retry but the first is within 100 ms of the retry before it.
        assert_eq!(grade.clustered_retries, 7);
        assert_eq!(grade.early_retries, 8);
        assert_eq!(grade.gave_up, 2);
    }

    #[test]
    fn live_counts_are_the_totals_the_grade_reports() {
        let grader = Grader::new();
        assert_eq!(grader.live_counts(), LiveCounts::default());
        attempt(&grader, 0, "sk-a", 1, limited(100));
        attempt(&grader, 0, "sk-b", 2, Answer::Success);
        attempt(&grader, 200, "sk-a", 1, limited(100));
        // Still being served: a request, not yet a 429.
        let pending = grader.begin_with(MS * 400, Some("sk-a"), LogicalId::Body(1), false);
        let expect = LiveCounts {
            requests: 4,
            rate_limited: 2,
            retries: 2,
        };
        assert_eq!(grader.live_counts(), expect);
        grader.finish(pending, MS * 410, Ending::answered(limited(100)));
        let counts = grader.live_counts();
        assert_eq!(counts.rate_limited, 3);
        let total = grader.grade().total;
        assert_eq!(
            (counts.requests, counts.rate_limited, counts.retries),
            (total.requests, total.rate_limited, total.retries)
        );
    }

    /// An attempt's tokens: a 3-token prompt reserving 5, with 4 completion tokens.
    fn tokens(charged: u32) -> AttemptTokens {
        AttemptTokens {
            prompt: 3,
            reserved_output: 5,
            completion: 4,
            charged,
        }
    }

    /// Sends one attempt at `at_ms`, ended `answer` 10 ms later, the limiter having charged
    /// `charged` tokens.
    fn charged_attempt(
        grader: &Grader,
        at_ms: u32,
        key: &str,
        body: u64,
        answer: Answer,
        charged: u32,
    ) {
        let ticket = grader.begin_with(MS * at_ms, Some(key), LogicalId::Body(body), false);
        let ending = Ending {
            tokens: tokens(charged),
            ..Ending::answered(answer)
        };
        grader.finish(ticket, MS * (at_ms + 10), ending);
    }

    #[test]
    fn tokens_charged_count_admitted_attempts_and_wasted_those_without_a_success() {
        let grader = Grader::new();
        let (a, b) = ("sk-aaaaaaaa1111", "sk-bbbbbbbb2222");
        // Key a, one logical request: admitted and reset (wasted), a 429 (charged nothing),
        // admitted and served.
        charged_attempt(&grader, 0, a, 1, Answer::Broken { reset: true }, 7);
        charged_attempt(&grader, 100, a, 1, limited(50), 0);
        charged_attempt(&grader, 200, a, 1, Answer::Success, 7);
        // Key b: an injected 500 before the limiter (charged nothing), an admitted stream
        // broken by an in-band error (wasted), then one the client left while it was served
        // (wasted, with what the note held).
        charged_attempt(&grader, 0, b, 2, Answer::Failed { status: 500 }, 0);
        charged_attempt(&grader, 100, b, 2, Answer::Broken { reset: false }, 9);
        let left = grader.begin_with(MS * 300, Some(b), LogicalId::Body(2), false);
        let note = GradingNote::default();
        note.asked(3, 5);
        note.admitted(9, None);
        grader.finish(left, MS * 400, Ending::abandoned(&note));
        let grading = grader.grade();
        let key_a = &grading.keys["sk-********1111"];
        let key_b = &grading.keys["sk-********2222"];
        assert_eq!((key_a.tokens_charged, key_a.tokens_wasted), (14, 7));
        assert_eq!((key_b.tokens_charged, key_b.tokens_wasted), (18, 18));
        assert_eq!(
            (grading.total.tokens_charged, grading.total.tokens_wasted),
            (32, 25)
        );
        // A reset, an in-band error and a left attempt are no success: their retries belong
        // to the same logical request.
        assert_eq!((key_a.logical_requests, key_a.retries), (1, 2));
        assert_eq!((key_b.logical_requests, key_b.retries), (1, 2));
        assert_eq!((grading.total.succeeded, grading.total.gave_up), (1, 1));
        // The live counts say what the grade says.
        let live: BTreeMap<String, LiveKeyCounts> = grader.live_key_counts().into_iter().collect();
        for (name, grade) in &grading.keys {
            let counts = live[name];
            assert_eq!(
                (
                    counts.logical_requests,
                    counts.retries,
                    counts.early_retries,
                    counts.logical_requests - counts.succeeded,
                    counts.tokens_charged,
                    counts.tokens_wasted,
                ),
                (
                    grade.logical_requests,
                    grade.retries,
                    grade.early_retries,
                    grade.gave_up,
                    grade.tokens_charged,
                    grade.tokens_wasted,
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn records_carry_tokens_and_breaks_as_the_simulator_records_them() {
        let grader = Grader::new();
        charged_attempt(&grader, 0, "k", 1, Answer::Broken { reset: true }, 7);
        charged_attempt(&grader, 100, "k", 1, Answer::Broken { reset: false }, 7);
        charged_attempt(&grader, 200, "k", 1, Answer::Success, 7);
        let pending = grader.begin_with(MS * 300, Some("k"), LogicalId::Body(2), false);
        grader.finish(
            pending,
            MS * 310,
            Ending::abandoned(&GradingNote::default()),
        );
        let records = grader.attempt_records();
        let outcomes: Vec<AttemptOutcome> = records.iter().map(|record| record.outcome).collect();
        assert_eq!(
            outcomes,
            [
                AttemptOutcome::Timeout,
                AttemptOutcome::ServerError { status: 500 },
                AttemptOutcome::Success,
                AttemptOutcome::Timeout,
            ]
        );
        let tokens: Vec<(u32, u32, u32)> = records
            .iter()
            .map(|record| {
                (
                    record.prompt_tokens,
                    record.max_tokens,
                    record.completion_tokens,
                )
            })
            .collect();
        // Completion tokens count on the success only; the left attempt noted nothing.
        assert_eq!(tokens, [(3, 5, 0), (3, 5, 0), (3, 5, 4), (0, 0, 0)]);
        let mut metrics = results::RunMetrics::new(vec!["client".into()], 1_000_000_000);
        for record in &records {
            if record.attempt == 0 {
                metrics.record_arrival(record.client, record.arrived_ns);
            }
            metrics.record_send(record.sent_ns, record.attempt);
            metrics.record_attempt(record);
        }
        let result = metrics.finish("tier-1".into(), "client".into());
        assert_eq!(
            (result.totals.prompt_tokens, result.totals.completion_tokens),
            (3, 4)
        );
        // Prompt plus max_tokens of the three attempts that ended with an answer or a reset.
        let admitted: u64 = result.bins.iter().map(|bin| bin.admitted_tokens).sum();
        assert_eq!(admitted, 24);
    }

    #[test]
    fn records_feed_run_metrics_like_a_simulated_trace() {
        let grader = Grader::new();
        attempt(&grader, 0, "k", 1, limited(1000));
        attempt(&grader, 500, "k", 1, limited(1000));
        attempt(&grader, 2000, "k", 1, Answer::Success);
        let records = grader.attempt_records();
        assert_eq!(records.len(), 3);
        let mut metrics = results::RunMetrics::new(vec!["client".into()], 1_000_000_000);
        metrics.record_arrival(records[0].client, records[0].arrived_ns);
        for record in &records {
            metrics.record_send(record.sent_ns, record.attempt);
            metrics.record_attempt(record);
        }
        let result = metrics.finish("tier-1".into(), "client".into());
        assert_eq!(result.totals.requests, 1);
        assert_eq!(result.totals.attempts, 3);
        assert_eq!(result.totals.succeeded, 1);
        // The same early retry the grade counts.
        assert_eq!(
            result.analysis.early_retries,
            grader.grade().total.early_retries
        );
        assert_eq!(result.analysis.early_retries, 1);
    }
}
