//! A graded client's attempts as the trace's records, so `results::RunMetrics` aggregates a
//! real client exactly as it does a simulated one.

use results::{AttemptDecision, AttemptOutcome, AttemptRecord};
use scenario::ClientId;

use super::{Answer, Grader, State, lock, nanos};

impl Grader {
    /// Every grouped attempt as the trace's record, in send order, so `results::RunMetrics`
    /// aggregates a real client exactly as it does a simulated one. Each key is one instance of
    /// group 0; a logical request's number is its order of arrival within its key. The decision
    /// after an attempt is a retry after the gap to the next attempt, done after a success,
    /// else a give-up. An attempt the server broke off with a reset, or the client abandoned,
    /// is the trace's `Timeout` (the client saw no answer), as the simulator records a reset;
    /// an in-band stream error is a 500. Tokens are the attempt's [`super::AttemptTokens`]:
    /// `max_tokens` is the reserved output, and completion tokens count only on a success, as in
    /// the trace.
    pub fn attempt_records(&self) -> Vec<AttemptRecord> {
        lock(&self.state).attempt_records()
    }
}

impl State {
    /// See [`Grader::attempt_records`].
    pub(super) fn attempt_records(&self) -> Vec<AttemptRecord> {
        let mut numbers = vec![0u64; self.key_names.len()];
        let mut records = Vec::with_capacity(self.grouped_attempts);
        for logical in &self.logical {
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
}
