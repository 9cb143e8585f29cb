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
//! **Live counts** ([`Grader::live_counts`]): requests, 429s sent and retries in total, read
//! under the lock without building a [`Grading`], for `ratelab test`'s progress line.
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
    },
    /// Any other status.
    Failed {
        /// The HTTP status.
        status: u16,
    },
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
            return AttemptTicket { slot: None };
        }
        state.grouped_attempts += 1;
        let attempt = Attempt {
            sent_ns: now_ns,
            ended_ns: None,
            answer: None,
            should_not_retry: false,
        };
        let index = match joined {
            Some(index) => {
                state.logical[index].attempts.push(attempt);
                index
            }
            None => {
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
            slot: Some((index, state.logical[index].attempts.len() - 1)),
        }
    }

    /// Records the answer to a filed attempt, sent at `now`.
    pub fn finish(
        &self,
        ticket: AttemptTicket,
        now: Duration,
        answer: Answer,
        should_not_retry: bool,
    ) {
        let mut state = lock(&self.state);
        if matches!(answer, Answer::RateLimited { .. }) {
            state.rate_limited_sent += 1;
        }
        let Some((logical, attempt)) = ticket.slot else {
            return;
        };
        if let Some(attempt) = state
            .logical
            .get_mut(logical)
            .and_then(|logical| logical.attempts.get_mut(attempt))
        {
            attempt.ended_ns = Some(nanos(now));
            attempt.answer = Some(answer);
            attempt.should_not_retry = should_not_retry;
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
    /// else a give-up. Tokens are not known to grading and read 0.
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
                        retry_after,
                        insufficient_quota,
                    }) => AttemptOutcome::RateLimited {
                        limit: if insufficient_quota {
                            LimitKind::Other
                        } else {
                            LimitKind::Rpm
                        },
                        retry_after_ns: retry_after.map(nanos),
                    },
                    Some(Answer::Failed { status }) => AttemptOutcome::ServerError { status },
                    // Never answered (the server stopped first): the client saw no response.
                    None => AttemptOutcome::Timeout,
                };
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
                    prompt_tokens: 0,
                    max_tokens: 0,
                    completion_tokens: 0,
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

/// What grading reads of an answer: the answer, and whether it said not to retry.
pub fn classify(response: &Response) -> (Answer, bool) {
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
            Answer::RateLimited {
                retry_after,
                insufficient_quota,
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
        }
    }

    /// Sends one attempt at `at_ms` answered `answer` 10 ms later.
    fn attempt(grader: &Grader, at_ms: u32, key: &str, body: u64, answer: Answer) {
        let ticket = grader.begin_with(MS * at_ms, Some(key), LogicalId::Body(body), false);
        grader.finish(ticket, MS * (at_ms + 10), answer, false);
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
        grader.finish(first, MS * 5, limited(0), false);
        grader.finish(twin, MS * 5, Answer::Success, false);
        grader.finish(other, MS * 5, Answer::Success, false);
        attempt(&grader, 20, "k", 0, Answer::Success);
        let retry = grader.begin_with(MS * 40, Some("k"), LogicalId::Explicit(7), false);
        grader.finish(retry, MS * 50, Answer::Success, false);
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
        };
        attempt(&grader, 0, "k", 1, quota);
        attempt(&grader, 20, "k", 1, quota);
        let ticket = grader.begin_with(MS * 100, Some("k"), LogicalId::Body(2), false);
        grader.finish(ticket, MS * 110, Answer::Failed { status: 500 }, true);
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
        grader.finish(pending, MS * 410, limited(100), false);
        let counts = grader.live_counts();
        assert_eq!(counts.rate_limited, 3);
        let total = grader.grade().total;
        assert_eq!(
            (counts.requests, counts.rate_limited, counts.retries),
            (total.requests, total.rate_limited, total.retries)
        );
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
