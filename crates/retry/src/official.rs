//! The retry policies of the official OpenAI clients, version by version, as
//! docs/official-clients.md states them with the SDK source files they were read from.

use std::time::Duration;

use rand::RngCore;

use crate::{Decision, GiveUpReason, Outcome, RequestState, Strategy, seconds, unit_interval};

/// One official client release line whose retry behaviour differs from its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfficialClientKind {
    /// openai-python up to 2.51: honours Retry-After when `0 < value <= 60 s`.
    OpenAiPython2_51,
    /// openai-python 2.52 and later: honours `0 < value <= 120 s`; over 120 s it does not retry.
    OpenAiPython2_52,
    /// openai-node 4.x: honours `0 < value < 60 s` (exactly 60 falls back to backoff).
    OpenAiNode4,
    /// openai-node 6.26 to 7.4: honours any value `>= 0`, uncapped (it slept for hours).
    OpenAiNode6_26,
    /// openai-node 7.5 and later: honours `0 <= value <= 60 s`.
    OpenAiNode7_5,
    /// async-openai up to 0.36: the `backoff` crate (500 ms initial, x1.5, +-50% jitter, 60 s
    /// max interval, 15 min max elapsed), Retry-After ignored.
    AsyncOpenAi0_36,
    /// async-openai 0.37 and later: 3 retries, integer Retry-After else `100 ms x 2^k` capped
    /// at 8 s, no jitter.
    AsyncOpenAi0_37,
}

/// An official OpenAI client's built-in retries.
///
/// openai-python and openai-node (docs/official-clients.md, openai-python and openai-node:
/// `_base_client.py` `_should_retry`/`_calculate_retry_timeout`, `client.ts` `shouldRetry`/
/// `retryRequest`): `max_retries = 2`; retry 408, 409, 429 (`insufficient_quota` too), >= 500,
/// timeouts and connection errors; `x-should-retry: true|false` overrides the status. The wait
/// is the Retry-After (`retry-after-ms`, else numeric `retry-after`) when the version accepts
/// it, else `min(0.5 x 2^n, 8) x (1 - 0.25 u)` seconds with `n` the retries so far. Per-attempt
/// timeout 600 s.
///
/// async-openai (docs/official-clients.md, async-openai): retries 429 unless the error `type`
/// is `insufficient_quota`, and 5xx; `x-should-retry` is not read. Transport errors, timeouts
/// included, are permanent here; 0.37 retries a failed connect, a difference the page
/// records.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficialClient {
    kind: OfficialClientKind,
    max_retries: u32,
}

impl OfficialClient {
    /// The client with its default `max_retries` (2 for python/node, 3 for async-openai 0.37;
    /// async-openai 0.36 stops on elapsed time instead).
    pub fn new(kind: OfficialClientKind) -> OfficialClient {
        let max_retries = match kind {
            OfficialClientKind::AsyncOpenAi0_36 => u32::MAX,
            OfficialClientKind::AsyncOpenAi0_37 => 3,
            _ => 2,
        };
        OfficialClient { kind, max_retries }
    }

    /// Overrides `max_retries` (the SDK option of the same name).
    pub fn with_max_retries(mut self, max_retries: u32) -> OfficialClient {
        self.max_retries = max_retries;
        self
    }

    fn is_async_openai(&self) -> bool {
        matches!(
            self.kind,
            OfficialClientKind::AsyncOpenAi0_36 | OfficialClientKind::AsyncOpenAi0_37
        )
    }

    fn retries(&self, outcome: &Outcome) -> bool {
        if self.is_async_openai() {
            return match outcome {
                Outcome::Response { status, .. } => {
                    (*status == 429 && !outcome.is_insufficient_quota()) || *status >= 500
                }
                Outcome::TransportError | Outcome::Timeout => false,
            };
        }
        match outcome {
            Outcome::Response {
                status, headers, ..
            } => headers
                .should_retry()
                .unwrap_or(matches!(status, 408 | 409 | 429 | 500..)),
            Outcome::TransportError | Outcome::Timeout => true,
        }
    }

    /// The Retry-After wait this version honours, `Err` when it refuses to retry at all.
    fn honoured_retry_after(&self, outcome: &Outcome) -> Result<Option<Duration>, GiveUpReason> {
        let Some(headers) = outcome.headers() else {
            return Ok(None);
        };
        if self.kind == OfficialClientKind::AsyncOpenAi0_37 {
            return Ok(headers
                .retry_after_integer_seconds()
                .map(Duration::from_secs));
        }
        let Some(value) = headers.retry_after_secs_f64() else {
            return Ok(None);
        };
        let honoured = match self.kind {
            OfficialClientKind::OpenAiPython2_51 => 0.0 < value && value <= 60.0,
            OfficialClientKind::OpenAiPython2_52 => {
                if value > 120.0 {
                    return Err(GiveUpReason::RetryAfterTooLong);
                }
                0.0 < value
            }
            OfficialClientKind::OpenAiNode4 => 0.0 < value && value < 60.0,
            OfficialClientKind::OpenAiNode6_26 => 0.0 <= value,
            OfficialClientKind::OpenAiNode7_5 => (0.0..=60.0).contains(&value),
            OfficialClientKind::AsyncOpenAi0_36 | OfficialClientKind::AsyncOpenAi0_37 => false,
        };
        Ok(honoured.then(|| seconds(value)))
    }

    fn fallback_delay(&self, request: &RequestState, rng: &mut dyn RngCore) -> Duration {
        let retries = request.retries();
        match self.kind {
            OfficialClientKind::AsyncOpenAi0_36 => {
                // backoff 0.4 ExponentialBackoff::next_backoff: the interval grows x1.5 up to
                // 60 s; the draw is min + u x (max - min + 1 ns) around it; None once the
                // elapsed time plus the draw passes 15 minutes.
                let interval = (0.5 * 1.5f64.powi(retries.min(1024) as i32)).min(60.0);
                let delta = 0.5 * interval;
                let (low, high) = (interval - delta, interval + delta);
                seconds(low + unit_interval(rng) * (high - low + 1e-9))
            }
            OfficialClientKind::AsyncOpenAi0_37 => {
                seconds((0.1 * 2f64.powi(retries.min(1024) as i32)).min(8.0))
            }
            _ => {
                let base = (0.5 * 2f64.powi(retries.min(1000) as i32)).min(8.0);
                seconds(base * (1.0 - 0.25 * unit_interval(rng)))
            }
        }
    }
}

impl Strategy for OfficialClient {
    fn after_outcome(
        &mut self,
        request: &mut RequestState,
        outcome: &Outcome,
        now: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        if outcome.is_success() {
            return Decision::Done;
        }
        if !self.retries(outcome) {
            return Decision::GiveUp {
                reason: GiveUpReason::NotRetryable,
            };
        }
        if request.retries() >= self.max_retries {
            return Decision::GiveUp {
                reason: GiveUpReason::MaxAttempts,
            };
        }
        let honoured = match self.honoured_retry_after(outcome) {
            Ok(honoured) => honoured,
            Err(reason) => return Decision::GiveUp { reason },
        };
        let after = honoured.unwrap_or_else(|| self.fallback_delay(request, rng));
        if self.kind == OfficialClientKind::AsyncOpenAi0_36 {
            let elapsed = now.saturating_sub(request.first_send.unwrap_or(request.started_at));
            if elapsed + after > Duration::from_secs(15 * 60) {
                return Decision::GiveUp {
                    reason: GiveUpReason::Deadline,
                };
            }
        }
        Decision::Retry { after }
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        // Both SDKs default to a 600 s request timeout; reqwest (async-openai) sets none.
        (!self.is_async_openai()).then_some(Duration::from_secs(600))
    }

    /// The SDKs decide only after an outcome.
    fn asks_before_attempt(&self) -> bool {
        false
    }

    /// The SDKs read `retry-after-ms`, `retry-after` and `x-should-retry` only.
    fn reads_rate_limit_headers(&self) -> bool {
        false
    }

    /// A success ends the request; the SDKs keep nothing between requests.
    fn observes_success(&self) -> bool {
        false
    }
}
