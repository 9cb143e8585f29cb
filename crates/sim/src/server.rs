//! The simulated server: the server model (`model::ServerModel`, the mock server's own decision
//! code) answering each attempt, with the answer turned into what the strategy sees and what
//! the trace records, and the latency of the regime in force.

use std::time::Duration;

use model::{Caller, Cost, LateFault, Price, Refusal, Reply, RouteId, ServerModel};
use quota::header_names::{RETRY_AFTER, RETRY_AFTER_MS};
use quota::{Instant, LimitStatus, RateLimitHeaders};
use rand_chacha::ChaCha8Rng;
use results::{AttemptOutcome, LimitKind};
use retry::{Headers, Outcome};
use scenario::RequestSpec;

/// What the server answers to one attempt, before the client's timeout is applied, besides
/// the [`Outcome`] the strategy sees (written in place: it is large, and copying it through
/// the event loop showed in profiles).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Response {
    /// What the trace records.
    pub record: AttemptOutcome,
    /// How long after sending the answer arrives, in nanoseconds.
    pub latency_ns: u64,
}

/// What answers the simulator's attempts. [`ModelServer`], the server model in virtual time,
/// is the simulator's own; the conformance test puts the real mock server (on a manual clock)
/// behind the same event loop, to show both decide alike.
pub trait AttemptServer {
    /// What the server keeps per client instance (the model's route).
    type Client: Copy;

    /// Meets a client instance, before its first request.
    fn client(&mut self, identity: &Identity) -> Self::Client;

    /// Tokens the limiter charges for `request`, which strategies budget with.
    fn charged_tokens(&self, request: &RequestSpec) -> u64;

    /// Answers an attempt sent at `now` (nanoseconds since the scenario start), writing what
    /// the strategy will see into `outcome`.
    fn answer(
        &mut self,
        now: u64,
        client: Self::Client,
        identity: &Identity,
        request: &RequestSpec,
        fault_rng: &mut ChaCha8Rng,
        outcome: &mut Outcome,
    ) -> Response;

    /// A success was delivered to the client: the server books its spend.
    fn served(&mut self, client: Self::Client, request: &RequestSpec);

    /// Whether spend may have decided a request so far: see
    /// [`model::ServerModel::spend_may_have_bound`]. While it is `false`, booking a success's
    /// spend at admission instead of at completion changes no decision, and the simulator may
    /// merge the two. A server that cannot tell answers `true`.
    fn spend_may_have_bound(&self) -> bool {
        true
    }
}

/// A server lent to a run, so its owner reads it afterwards.
impl<S: AttemptServer> AttemptServer for &mut S {
    type Client = S::Client;

    fn client(&mut self, identity: &Identity) -> Self::Client {
        (**self).client(identity)
    }

    fn charged_tokens(&self, request: &RequestSpec) -> u64 {
        (**self).charged_tokens(request)
    }

    fn answer(
        &mut self,
        now: u64,
        client: Self::Client,
        identity: &Identity,
        request: &RequestSpec,
        fault_rng: &mut ChaCha8Rng,
        outcome: &mut Outcome,
    ) -> Response {
        (**self).answer(now, client, identity, request, fault_rng, outcome)
    }

    fn served(&mut self, client: Self::Client, request: &RequestSpec) {
        (**self).served(client, request);
    }

    fn spend_may_have_bound(&self) -> bool {
        (**self).spend_may_have_bound()
    }
}

/// Who a client instance is to the server: its key's organization and project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub organization: String,
    pub project: String,
    pub key: String,
}

impl Identity {
    /// The identity of a client group: its key's, else the default organization's.
    pub fn of(group: &scenario::ClientGroup) -> Identity {
        match &group.key {
            Some(key) => Identity {
                organization: key.organization.clone(),
                project: key.project.clone(),
                key: key.key.clone(),
            },
            None => Identity {
                organization: model::DEFAULT_ORGANIZATION.to_owned(),
                project: model::DEFAULT_PROJECT.to_owned(),
                key: String::new(),
            },
        }
    }

    /// The model's view of the caller.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            organization: &self.organization,
            project: &self.project,
            key: &self.key,
        }
    }
}

/// The server model of one server variant, shared by every client instance: the simulator's
/// server.
#[derive(Debug)]
pub struct ModelServer {
    model: ServerModel,
    /// The scenario's model, which every request names.
    model_name: String,
    /// Whether to ask for the limits' statuses: the policy sends `x-ratelimit-*` and the
    /// strategy reads them (computing them is a large part of an attempt's cost).
    rate_limit_headers: bool,
    /// Format the headers as text and parse them back, as a live client would see them,
    /// instead of building the typed view directly; tests use it to check both agree.
    headers_as_text: bool,
    /// How many tokens a request is charged.
    token_charge: quota::TokenChargeRule,
    /// The model's list price, for spend.
    price: Price,
}

impl ModelServer {
    /// The server of `variant` for the scenario's model. `strategy_reads_rate_limit_headers`
    /// asks for the `x-ratelimit-*` statuses; `headers_as_text` formats every header as text
    /// and parses it back, as a live client reads them.
    pub fn new(
        model: ServerModel,
        model_name: String,
        strategy_reads_rate_limit_headers: bool,
        headers_as_text: bool,
        token_charge: quota::TokenChargeRule,
    ) -> Self {
        let reports = model.header_policy().rate_limit.on_success()
            || model.header_policy().rate_limit.on_429();
        ModelServer {
            price: model.price(&model_name),
            model,
            model_name,
            rate_limit_headers: reports && strategy_reads_rate_limit_headers,
            headers_as_text,
            token_charge,
        }
    }

    /// The server model, for a test that reads it.
    pub fn model(&self) -> &ServerModel {
        &self.model
    }
}

impl AttemptServer for ModelServer {
    type Client = RouteId;

    /// The route of a client's requests: resolved once per client instance.
    fn client(&mut self, identity: &Identity) -> RouteId {
        self.model
            .route(&identity.caller(), &self.model_name)
            .unwrap_or_else(|| unreachable!("validation checked the scenario's model"))
    }

    /// Tokens the limiter charges for `request`, by the scenario's charge rule.
    #[inline]
    fn charged_tokens(&self, request: &RequestSpec) -> u64 {
        self.token_charge.tokens(&request_size(request))
    }

    #[inline]
    fn spend_may_have_bound(&self) -> bool {
        self.model.spend_may_have_bound()
    }

    /// Books a served request's tokens towards its organization's spend.
    fn served(&mut self, route: RouteId, request: &RequestSpec) {
        self.model.record_spend_routed(
            route,
            self.price,
            u64::from(request.prompt_tokens),
            u64::from(request.completion_tokens),
        );
    }

    #[inline(always)]
    fn answer(
        &mut self,
        now: u64,
        route: RouteId,
        identity: &Identity,
        request: &RequestSpec,
        fault_rng: &mut ChaCha8Rng,
        outcome: &mut Outcome,
    ) -> Response {
        let caller = identity.caller();
        let caller = &caller;
        let cost = Cost {
            model: &self.model_name,
            prompt_tokens: u64::from(request.prompt_tokens),
            prompt_characters: None,
            max_output_tokens: Some(u64::from(request.max_tokens)),
            choices: 1,
        };
        let now = Instant::from_nanos(now);
        let reply = self.model.decide_routed(
            now,
            route,
            caller,
            &cost,
            fault_rng,
            self.rate_limit_headers,
        );
        let latency = self.model.latency_nanos_at(now);
        match reply {
            Reply::Admitted(mut admission) => {
                let served = latency
                    .plan(cost.prompt_tokens, latency.factor(request.latency_normal))
                    .total_nanos(u64::from(request.completion_tokens));
                match admission.late_fault {
                    None => {
                        // Most successes carry no headers a strategy reads: the empty set is
                        // written in place, where a copy out of a helper stalled store
                        // forwarding.
                        let headers = if self.rate_limit_headers {
                            let headers = self.headers(&admission.statuses, None, None);
                            // Handed back for the next reply's statuses: no allocation per
                            // attempt for strategies that read them.
                            self.model
                                .recycle_statuses(std::mem::take(&mut admission.statuses));
                            headers
                        } else {
                            Headers::new()
                        };
                        *outcome = Outcome::response(200, headers);
                        Response {
                            record: AttemptOutcome::Success,
                            latency_ns: served,
                        }
                    }
                    // The whole reply's time passes, then the connection drops: the client
                    // sees a transport error, and the trace a failed attempt with no answer.
                    Some(LateFault::ConnectionReset) => {
                        *outcome = Outcome::TransportError;
                        Response {
                            record: AttemptOutcome::Timeout,
                            latency_ns: served,
                        }
                    }
                    // A non-streamed reply with a mid-stream error is a 500.
                    Some(LateFault::StreamError) => {
                        *outcome = Outcome::error(500, Headers::new(), "server_error");
                        Response {
                            record: AttemptOutcome::ServerError { status: 500 },
                            latency_ns: served,
                        }
                    }
                }
            }
            Reply::Refused(refusal) => {
                let reject = latency.reject_nanos();
                match refusal {
                    Refusal::RateLimited(mut limited) => {
                        let statuses = limited.statuses.take();
                        let headers = self.headers(
                            statuses.as_deref().unwrap_or_default(),
                            limited.retry_after_seconds,
                            limited.retry_after_ms,
                        );
                        if let Some(statuses) = statuses {
                            self.model.recycle_statuses(statuses);
                        }
                        let limit = LimitKind::of_refusal(&limited);
                        *outcome = Outcome::error(429, headers, "rate_limit_exceeded");
                        Response {
                            record: AttemptOutcome::RateLimited {
                                limit,
                                retry_after_ns: limited.rejection.retry_after.map(nanos),
                            },
                            latency_ns: reject,
                        }
                    }
                    Refusal::Hang(wait) => {
                        *outcome = Outcome::error(503, Headers::new(), "server_is_overloaded");
                        Response {
                            record: AttemptOutcome::ServerError { status: 503 },
                            latency_ns: nanos(wait),
                        }
                    }
                    other => {
                        let status = other.status();
                        *outcome = Outcome::error(status, Headers::new(), other.code());
                        let record = if status == 429 {
                            // Quota exhausted or "slow down": a 429, but no limit's.
                            AttemptOutcome::RateLimited {
                                limit: LimitKind::Other,
                                retry_after_ns: None,
                            }
                        } else {
                            AttemptOutcome::ServerError { status }
                        };
                        Response {
                            record,
                            latency_ns: reject,
                        }
                    }
                }
            }
        }
    }
}

impl ModelServer {
    /// The headers an answer carries: the `x-ratelimit-*` trios of `statuses` (none when
    /// empty) and the retry headers given.
    fn headers(
        &self,
        statuses: &[LimitStatus],
        retry_after_seconds: Option<u64>,
        retry_after_ms: Option<u64>,
    ) -> Headers {
        if self.headers_as_text {
            let mut pairs = quota::rate_limit_headers(statuses);
            pairs.extend(retry_after_seconds.map(|seconds| (RETRY_AFTER, seconds.to_string())));
            pairs.extend(retry_after_ms.map(|millis| (RETRY_AFTER_MS, millis.to_string())));
            return Headers::from_pairs(pairs);
        }
        let mut headers = rate_limit_view(statuses);
        if let Some(seconds) = retry_after_seconds {
            headers = headers.with_retry_after_seconds(seconds);
        }
        if let Some(millis) = retry_after_ms {
            headers = headers.with_retry_after_ms(millis);
        }
        headers
    }
}

/// What the charge rule knows of a simulated request: its token counts, not its text, so the
/// prompt estimate is the prompt's token count.
#[inline]
pub(crate) fn request_size(request: &RequestSpec) -> quota::RequestSize {
    quota::RequestSize {
        prompt_characters: None,
        prompt_tokens: Some(u64::from(request.prompt_tokens)),
        max_output_tokens: Some(u64::from(request.max_tokens)),
        choices: 1,
    }
}

/// Virtual time in whole nanoseconds, saturating.
#[inline]
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The `x-ratelimit-*` headers a client reads, as typed values equal to what parsing
/// [`quota::rate_limit_headers`] would give: quota's [`RateLimitHeaders`] (the value the mock
/// server formats), read through [`Headers::with_rate_limits`], which rounds resets up to the
/// millisecond as their text does.
#[inline]
pub fn rate_limit_view(statuses: &[LimitStatus]) -> Headers {
    Headers::new().with_rate_limits(&RateLimitHeaders::from_statuses(statuses))
}
