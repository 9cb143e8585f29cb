//! The event loop: one run of one strategy against one server variant, in virtual time.
//!
//! A single thread pops events from the queue (`crate::queue`) in (virtual time, sequence) order,
//! so events at the same instant run in the order they were scheduled and a seed replays
//! exactly. Per-request state lives in a slab that reuses freed slots: memory follows the
//! requests in flight, not the requests simulated.
//!
//! Merged completions: when no one can observe a success between its admission and its
//! completion, the run records the completion at admission instead of scheduling it, one event
//! fewer per success (see [`Run::new`]'s `merge_successes` for when, and [`Run::send`]).

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use results::{AttemptDecision, AttemptOutcome, AttemptRecord, RunMetrics};
use retry::{Admission, Decision, GiveUpReason, Outcome, RequestState, RetryClient};
use scenario::{ClientStream, Driver, RequestSpec, Scenario, StreamPurpose, stream_rng};

use crate::queue::{Event, EventQueue};
use crate::server::{AttemptServer, Identity, nanos};

/// How long a closed-loop worker waits after its strategy refused to send a request at all.
const LOCAL_REFUSAL_PAUSE_NS: u64 = 1_000_000;

/// A client instance: its workload stream, its strategy and its random streams.
struct Client<C> {
    stream: ClientStream,
    retry: RetryClient,
    /// The strategy's per-attempt timeout in nanoseconds, `u64::MAX` for none: read once, as
    /// [`retry::Strategy::attempt_timeout`] is fixed for a strategy's life.
    attempt_timeout: u64,
    retry_rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    next_request: u64,
    /// The request of the scheduled open-loop arrival.
    pending_arrival: Option<RequestSpec>,
    /// Closed loop: think time and the requests each worker may still send.
    think_time: u64,
    worker_budget: Vec<u64>,
    /// The group's end-to-end deadline per request, `u64::MAX` for none.
    deadline: u64,
    /// The organization, project and key the server sees.
    identity: Identity,
    /// What the server keeps for this client (the model's route).
    route: C,
    /// Whether nothing of this client observes a success between admission and completion:
    /// an open-loop client whose strategy ignores successes
    /// ([`retry::Strategy::observes_success`]).
    success_unobserved: bool,
}

/// A logical request in flight, or a free slot (`live == false`) kept for reuse: slots are
/// overwritten field by field rather than replaced, which profiling showed saves a large copy
/// per request.
struct InFlight {
    live: bool,
    client: u32,
    worker: Option<u32>,
    request: u64,
    spec: RequestSpec,
    arrived: u64,
    /// When the request's deadline passes (`u64::MAX` for none): nothing is sent from then on,
    /// and an attempt in flight is cut there like a timeout.
    deadline: u64,
    /// An attempt's timeout: the smaller of the request's and the strategy's, in nanoseconds.
    timeout: u64,
    state: RequestState,
    /// Attempts sent so far.
    attempts: u32,
    sent_at: u64,
    /// Whether an attempt's answer is on its way; `outcome` and `record` hold it.
    awaiting_answer: bool,
    /// What the strategy will see, written in place by the server (it is large).
    outcome: Outcome,
    record: AttemptOutcome,
}

/// One run: server, clients, the event queue and the online metrics.
pub(crate) struct Run<'a, S: AttemptServer> {
    run_index: u32,
    duration: u64,
    horizon: u64,
    queue: EventQueue,
    server: S,
    clients: Vec<Client<S::Client>>,
    slots: Vec<InFlight>,
    free_slots: Vec<u32>,
    metrics: RunMetrics,
    trace: &'a mut dyn FnMut(&AttemptRecord),
    /// Whether to merge unobserved successes' completions into their admissions.
    merge_successes: bool,
    /// Successes completed at admission so far.
    merged: u64,
    /// Set when spend came near a cap after a merged success booked its spend early: the
    /// run stops (its queue emptied), and its results are not exact (see [`Run::run`]).
    aborted: bool,
}

/// A run's metrics, and how many successes it completed at admission.
pub(crate) struct Completed {
    pub(crate) metrics: RunMetrics,
    pub(crate) merged: u64,
}

/// Why a run that merged successes stopped early: spend came near a cap, where a success's
/// spend booked early may decide a request differently. Run it again without merging.
#[derive(Debug)]
pub(crate) struct SpendNearCap;

impl<'a, S: AttemptServer> Run<'a, S> {
    /// A run of `strategies` (one per client instance) against `server`. With
    /// `merge_successes`, a success nothing observes until it completes is recorded at
    /// admission: its client is open loop, its strategy ignores successes, it completes by the
    /// horizon, and the server's spend has stayed clear of every cap (a merged success books its
    /// spend at admission). The caller passes it only when nothing reads the order of records
    /// either: `trace` is then never called in completion order, so only for untraced runs.
    pub(crate) fn new(
        scenario: &Scenario,
        run_index: u32,
        server: S,
        strategies: Vec<RetryClient>,
        trace: &'a mut dyn FnMut(&AttemptRecord),
        merge_successes: bool,
    ) -> Self {
        let mut run = Run {
            run_index,
            duration: nanos(scenario.duration),
            horizon: nanos(scenario.horizon()),
            queue: EventQueue::default(),
            server,
            clients: Vec::with_capacity(strategies.len()),
            slots: Vec::new(),
            free_slots: Vec::new(),
            metrics: RunMetrics::for_scenario(scenario),
            trace,
            merge_successes,
            merged: 0,
            aborted: false,
        };
        for (stream, retry) in scenario::workload(scenario).into_iter().zip(strategies) {
            let id = stream.id();
            let group = &scenario.groups[id.group as usize];
            let (think_time, worker_budget) = match &group.driver {
                Driver::ClosedLoop {
                    concurrency,
                    think_time,
                    requests_per_worker,
                } => (
                    nanos(*think_time),
                    vec![requests_per_worker.unwrap_or(u64::MAX); *concurrency as usize],
                ),
                Driver::OpenLoop(_) => (0, Vec::new()),
            };
            let identity = Identity::of(group);
            let success_unobserved = worker_budget.is_empty() && !retry.observes_success();
            let client = Client {
                retry_rng: stream_rng(
                    scenario.seed,
                    &group.name,
                    id.instance,
                    StreamPurpose::Retry,
                ),
                fault_rng: stream_rng(
                    scenario.seed,
                    &group.name,
                    id.instance,
                    StreamPurpose::Faults,
                ),
                stream,
                attempt_timeout: retry.attempt_timeout().map_or(u64::MAX, nanos),
                retry,
                next_request: 0,
                pending_arrival: None,
                think_time,
                worker_budget,
                deadline: group.shape.deadline.map_or(u64::MAX, nanos),
                route: run.server.client(&identity),
                identity,
                success_unobserved,
            };
            run.clients.push(client);
        }
        for index in 0..run.clients.len() {
            run.schedule_first(index as u32);
        }
        run
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.queue.push(at, event);
    }

    fn schedule_first(&mut self, client_index: u32) {
        let client = &mut self.clients[client_index as usize];
        let start = nanos(client.stream.start());
        let workers = client.worker_budget.len() as u32;
        if workers > 0 {
            if start < self.duration {
                for worker in 0..workers {
                    self.schedule(
                        start,
                        Event::WorkerReady {
                            client: client_index,
                            worker,
                        },
                    );
                }
            }
        } else {
            self.schedule_next_arrival(client_index);
        }
    }

    fn schedule_next_arrival(&mut self, client_index: u32) {
        let client = &mut self.clients[client_index as usize];
        if let Some((at, spec)) = client.stream.next_arrival() {
            self.schedule(
                nanos(at),
                Event::Arrival {
                    client: client_index,
                },
            );
            // Copied only now: copying the request the moment the stream wrote it stalled the
            // CPU's store forwarding (the loop's hottest instruction in `perf annotate`).
            self.clients[client_index as usize].pending_arrival = Some(spec);
        }
    }

    /// Runs until the queue is empty or the next event lies past the horizon.
    pub(crate) fn run(mut self) -> Result<Completed, SpendNearCap> {
        while let Some((now, event)) = self.queue.pop() {
            if now > self.horizon {
                break;
            }
            match event {
                Event::Arrival { client } => {
                    if let Some(spec) = self.clients[client as usize].pending_arrival.take() {
                        self.start_request(client, None, spec, now);
                    }
                    self.schedule_next_arrival(client);
                }
                Event::WorkerReady { client, worker } => {
                    let state = &mut self.clients[client as usize];
                    let budget = &mut state.worker_budget[worker as usize];
                    if now < self.duration && *budget > 0 {
                        *budget -= 1;
                        let spec = state.stream.next_request();
                        self.start_request(client, Some(worker), spec, now);
                    }
                }
                Event::BeforeAttempt { request } => self.ask(request, now),
                Event::Send { request } => self.send(request, now),
                Event::Outcome { request } => self.deliver(request, now),
            }
        }
        if self.aborted {
            return Err(SpendNearCap);
        }
        Ok(Completed {
            metrics: self.metrics,
            merged: self.merged,
        })
    }

    fn start_request(
        &mut self,
        client_index: u32,
        worker: Option<u32>,
        spec: RequestSpec,
        now: u64,
    ) {
        let client = &mut self.clients[client_index as usize];
        let request = client.next_request;
        client.next_request += 1;
        let tokens = self.server.charged_tokens(&spec);
        let deadline = now.saturating_add(client.deadline);
        let timeout = nanos(spec.timeout).min(client.attempt_timeout);
        self.metrics.record_arrival(client.stream.id(), now);
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(InFlight {
                    live: false,
                    client: 0,
                    worker: None,
                    request: 0,
                    spec,
                    arrived: 0,
                    deadline: u64::MAX,
                    timeout: 0,
                    state: RequestState::new(Duration::ZERO, 0),
                    attempts: 0,
                    sent_at: 0,
                    awaiting_answer: false,
                    outcome: Outcome::Timeout,
                    record: AttemptOutcome::NotSent,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let in_flight = &mut self.slots[slot as usize];
        in_flight.live = true;
        in_flight.client = client_index;
        in_flight.worker = worker;
        in_flight.request = request;
        in_flight.spec = spec;
        in_flight.arrived = now;
        in_flight.deadline = deadline;
        in_flight.timeout = timeout;
        // The slot's last state is restarted in place: replacing it dropped a state per request.
        self.clients[client_index as usize].retry.begin_in(
            &mut in_flight.state,
            Duration::from_nanos(now),
            tokens,
        );
        in_flight.attempts = 0;
        in_flight.sent_at = now;
        in_flight.awaiting_answer = false;
        self.ask(slot, now);
    }

    /// Asks the strategy before an attempt: send now, send later (pacing), or give up. A
    /// request whose deadline has passed gives up without asking; a send paced past the
    /// deadline waits only until the deadline, where [`Run::send`] gives it up.
    fn ask(&mut self, slot: u32, now: u64) {
        let in_flight = &mut self.slots[slot as usize];
        if !in_flight.live {
            return;
        }
        if now >= in_flight.deadline {
            self.give_up_at_deadline(slot, now);
            return;
        }
        let deadline = in_flight.deadline;
        let client = &mut self.clients[in_flight.client as usize];
        let admission = client.retry.before_attempt(
            &mut in_flight.state,
            Duration::from_nanos(now),
            &mut client.retry_rng,
        );
        match admission {
            Admission::Send { after } if after.is_zero() => self.send(slot, now),
            Admission::Send { after } => {
                self.schedule(
                    now.saturating_add(nanos(after)).min(deadline),
                    Event::Send { request: slot },
                );
            }
            Admission::GiveUp { reason } => {
                let decision = AttemptDecision::GiveUp {
                    reason: Some(reason),
                };
                self.emit(slot, now, now, AttemptOutcome::NotSent, decision);
                self.finish(slot, now);
            }
        }
    }

    /// Sends an attempt: the server answers now; the client hears back after the latency, or
    /// at its timeout or the request's deadline if one comes first (the deadline cuts the
    /// attempt exactly as a timeout does, so an answer that would arrive later never counts).
    fn send(&mut self, slot: u32, now: u64) {
        let in_flight = &mut self.slots[slot as usize];
        if !in_flight.live {
            return;
        }
        if now >= in_flight.deadline {
            self.give_up_at_deadline(slot, now);
            return;
        }
        let client = &mut self.clients[in_flight.client as usize];
        let response = self.server.answer(
            now,
            client.route,
            &client.identity,
            &in_flight.spec,
            &mut client.fault_rng,
            &mut in_flight.outcome,
        );
        // `now < deadline` here, so the time left is at least 1 ns.
        let timeout = in_flight.timeout.min(in_flight.deadline - now);
        let latency = response.latency_ns;
        let latency = if latency > timeout {
            in_flight.outcome = Outcome::Timeout;
            in_flight.record = AttemptOutcome::Timeout;
            timeout
        } else {
            in_flight.record = response.record;
            latency
        };
        in_flight.sent_at = now;
        self.metrics.record_send(now, in_flight.attempts);
        in_flight.attempts += 1;
        let ends = now.saturating_add(latency);
        if self.merge_successes {
            if self.server.spend_may_have_bound() {
                // Spend came near a cap: from here a success's spend booked early may decide
                // a request differently. With none booked early yet, nothing has differed.
                self.merge_successes = false;
                if self.merged > 0 {
                    // The run stops: with nothing left to pop, the loop ends.
                    self.aborted = true;
                    self.queue = EventQueue::default();
                    return;
                }
            } else if in_flight.record == AttemptOutcome::Success
                && client.success_unobserved
                && ends <= self.horizon
            {
                // What `deliver` does with a success the strategy calls done, now: the
                // strategy answers `Done` without drawing or changing anything.
                self.merged += 1;
                self.server.served(client.route, &in_flight.spec);
                self.emit(
                    slot,
                    now,
                    ends,
                    AttemptOutcome::Success,
                    AttemptDecision::Done,
                );
                self.finish(slot, ends);
                return;
            }
        }
        in_flight.awaiting_answer = true;
        self.schedule(ends, Event::Outcome { request: slot });
    }

    /// The client hears an attempt's outcome and its strategy decides what is next.
    fn deliver(&mut self, slot: u32, now: u64) {
        let in_flight = &mut self.slots[slot as usize];
        if !in_flight.live {
            return;
        }
        if !std::mem::replace(&mut in_flight.awaiting_answer, false) {
            return;
        }
        let record = in_flight.record;
        let deadline = in_flight.deadline;
        let client = &mut self.clients[in_flight.client as usize];
        // The strategy hears every outcome, a deadline's cut included, so its per-client state
        // (a breaker's probe, an adaptive rate) stays as a timeout would leave it.
        let decision = client.retry.after_outcome(
            &mut in_flight.state,
            &in_flight.outcome,
            Duration::from_nanos(now),
            &mut client.retry_rng,
        );
        let sent_at = in_flight.sent_at;
        if record == AttemptOutcome::Success {
            // The server books a reply's spend when it is written, as the mock server does.
            self.server.served(client.route, &in_flight.spec);
        }
        match decision {
            Decision::Done if record == AttemptOutcome::Success => {
                self.emit(slot, sent_at, now, record, AttemptDecision::Done);
                self.finish(slot, now);
            }
            // An attempt that ends at the deadline without success ends its request there,
            // whatever the strategy would do next.
            _ if now >= deadline => {
                let decision = AttemptDecision::GiveUp {
                    reason: Some(GiveUpReason::Deadline),
                };
                self.emit(slot, sent_at, now, record, decision);
                self.finish(slot, now);
            }
            // A strategy that calls a failure done has stopped trying: the request is lost.
            Decision::Done => {
                let decision = AttemptDecision::GiveUp { reason: None };
                self.emit(slot, sent_at, now, record, decision);
                self.finish(slot, now);
            }
            Decision::GiveUp { reason } => {
                let decision = AttemptDecision::GiveUp {
                    reason: Some(reason),
                };
                self.emit(slot, sent_at, now, record, decision);
                self.finish(slot, now);
            }
            Decision::Retry { after } => {
                let after_ns = nanos(after);
                self.emit(
                    slot,
                    sent_at,
                    now,
                    record,
                    AttemptDecision::Retry { after_ns },
                );
                if after_ns == 0 {
                    self.ask(slot, now);
                } else {
                    // A backoff past the deadline waits only until it, where `ask` gives up.
                    self.schedule(
                        now.saturating_add(after_ns).min(deadline),
                        Event::BeforeAttempt { request: slot },
                    );
                }
            }
        }
    }

    /// Ends a request waiting to send (paced or backing off) when its deadline passes: no
    /// attempt is made, and the request gives up with reason `deadline`.
    fn give_up_at_deadline(&mut self, slot: u32, now: u64) {
        let decision = AttemptDecision::GiveUp {
            reason: Some(GiveUpReason::Deadline),
        };
        self.emit(slot, now, now, AttemptOutcome::NotSent, decision);
        self.finish(slot, now);
    }

    fn emit(
        &mut self,
        slot: u32,
        sent_at: u64,
        now: u64,
        outcome: AttemptOutcome,
        decision: AttemptDecision,
    ) {
        let in_flight = &self.slots[slot as usize];
        if !in_flight.live {
            return;
        }
        let record = AttemptRecord {
            run: self.run_index,
            client: self.clients[in_flight.client as usize].stream.id(),
            request: in_flight.request,
            attempt: if outcome == AttemptOutcome::NotSent {
                in_flight.attempts
            } else {
                in_flight.attempts.saturating_sub(1)
            },
            arrived_ns: in_flight.arrived,
            sent_ns: sent_at,
            ended_ns: now,
            prompt_tokens: in_flight.spec.prompt_tokens,
            max_tokens: in_flight.spec.max_tokens,
            completion_tokens: if outcome == AttemptOutcome::Success {
                in_flight.spec.completion_tokens
            } else {
                0
            },
            outcome,
            decision,
        };
        self.metrics.record_attempt(&record);
        (self.trace)(&record);
    }

    /// Frees the request's slot; a closed-loop worker thinks, then starts its next request.
    fn finish(&mut self, slot: u32, now: u64) {
        let in_flight = &mut self.slots[slot as usize];
        if !in_flight.live {
            return;
        }
        in_flight.live = false;
        in_flight.awaiting_answer = false;
        let (client, worker, sent_any) =
            (in_flight.client, in_flight.worker, in_flight.attempts > 0);
        self.free_slots.push(slot);
        if let Some(worker) = worker {
            // A request refused locally (circuit open) takes no virtual time; without a pause a
            // worker with no think time would start requests forever at the same instant.
            let pause = if sent_any {
                self.clients[client as usize].think_time
            } else {
                self.clients[client as usize]
                    .think_time
                    .max(LOCAL_REFUSAL_PAUSE_NS)
            };
            let next = now.saturating_add(pause);
            if next < self.duration {
                self.schedule(next, Event::WorkerReady { client, worker });
            }
        }
    }
}
