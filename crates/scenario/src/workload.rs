//! Workload generation: one independent, seeded random stream per client instance.
//!
//! Every stream is derived from the scenario seed, the group's *name* and the instance index, so
//! adding, removing or reordering a group never changes the draws of another. Streams are lazy:
//! executors pull requests as virtual time advances, so memory grows with the number of clients,
//! not requests. Recreating the streams from the same scenario yields the identical workload,
//! which is how every strategy is run against the same requests.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::model::{ClientGroup, Driver, Scenario};
use crate::sample::ArrivalClock;

/// A client instance: its group's index in the scenario and the instance index in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId {
    /// Index of the group in [`Scenario::groups`].
    pub group: u32,
    /// Instance within the group, from 0.
    pub instance: u32,
}

/// What a random stream is used for; each purpose of each client has its own stream, so drawing
/// more retry jitter never shifts the workload's draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum StreamPurpose {
    /// Open-loop arrival times.
    Arrivals = 0,
    /// Token counts.
    Sizes = 1,
    /// Server-side service-time jitter.
    ServiceTime = 2,
    /// The client's retry strategy.
    Retry = 3,
    /// Server faults hitting this client's attempts.
    Faults = 4,
}

/// The seeded ChaCha stream of one purpose of one client instance.
///
/// ```
/// use rand::Rng;
/// use scenario::{stream_rng, StreamPurpose};
///
/// let mut first = stream_rng(42, "web", 0, StreamPurpose::Sizes);
/// let mut again = stream_rng(42, "web", 0, StreamPurpose::Sizes);
/// let mut other = stream_rng(42, "batch", 0, StreamPurpose::Sizes);
/// let draw: u64 = first.random();
/// assert_eq!(draw, again.random::<u64>());
/// assert_ne!(draw, other.random::<u64>());
/// ```
pub fn stream_rng(seed: u64, group: &str, instance: u32, purpose: StreamPurpose) -> ChaCha8Rng {
    // The key mixes the seed with the group name (FNV-1a, stable across platforms and Rust
    // versions, unlike `DefaultHasher`); the ChaCha stream number separates instances and purposes.
    let mut name_hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in group.as_bytes() {
        name_hash = (name_hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut state = seed ^ name_hash.rotate_left(17);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&split_mix(&mut state).to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(u64::from(instance) * 8 + purpose as u64);
    rng
}

fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut mixed = *state;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

/// One request as the workload defines it, before any executor touches it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens the server will generate (at most `max_tokens`).
    pub completion_tokens: u32,
    /// `max_tokens` sent with the request.
    pub max_tokens: u32,
    /// Client-side timeout per attempt.
    pub timeout: Duration,
    /// The request's draw from a standard normal distribution for the server's latency
    /// jitter (`model::LatencyConfig::factor`), so every strategy meets the same latency for
    /// the same request; 0 when the server's latency has no jitter.
    pub latency_normal: f64,
}

/// The lazy request stream of one client instance.
#[derive(Debug, Clone)]
pub struct ClientStream {
    id: ClientId,
    start: Duration,
    arrival_until: f64,
    arrivals: Option<ArrivalClock>,
    arrival_rng: ChaCha8Rng,
    size_rng: ChaCha8Rng,
    service_rng: ChaCha8Rng,
    group: ClientGroup,
    /// Whether any latency regime of the server is jittered (else nothing is drawn).
    jittered: bool,
}

impl ClientStream {
    /// The stream of instance `instance` of `scenario.groups[group]`.
    ///
    /// # Panics
    /// If `group` is not an index of `scenario.groups`.
    pub fn new(scenario: &Scenario, group: u32, instance: u32) -> Self {
        let definition = scenario.groups[group as usize].clone();
        let start = definition.instance_start(instance);
        let arrivals = match &definition.driver {
            Driver::OpenLoop(process) => Some(ArrivalClock::new(process.clone())),
            Driver::ClosedLoop { .. } => None,
        };
        let seed = scenario.seed;
        let name = definition.name.as_str();
        ClientStream {
            id: ClientId { group, instance },
            start,
            arrival_until: scenario.duration.saturating_sub(start).as_secs_f64(),
            arrivals,
            arrival_rng: stream_rng(seed, name, instance, StreamPurpose::Arrivals),
            size_rng: stream_rng(seed, name, instance, StreamPurpose::Sizes),
            service_rng: stream_rng(seed, name, instance, StreamPurpose::ServiceTime),
            jittered: scenario.server.config.latency.is_jittered()
                || scenario
                    .server
                    .config
                    .timeline
                    .iter()
                    .filter_map(|entry| entry.latency.as_ref())
                    .any(model::LatencyConfig::is_jittered),
            group: definition,
        }
    }

    /// Which client this is.
    #[inline]
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// When the instance starts, since the scenario start.
    pub fn start(&self) -> Duration {
        self.start
    }

    /// The group this instance belongs to.
    pub fn group(&self) -> &ClientGroup {
        &self.group
    }

    /// The next open-loop arrival (time since the scenario start, and the request), or `None`
    /// when the process has no more arrivals before the scenario's duration ends. Always `None`
    /// for closed-loop groups.
    pub fn next_arrival(&mut self) -> Option<(Duration, RequestSpec)> {
        let clock = self.arrivals.as_mut()?;
        if self.arrival_until <= 0.0 {
            // The instance starts after the scenario stopped sending.
            return None;
        }
        let (offset, recorded) = clock.next(&mut self.arrival_rng, self.arrival_until)?;
        // Float seconds to whole nanoseconds directly: `Duration::from_secs_f64` is exact but slow,
        // and arrivals are the simulator's hottest path after the event queue.
        let at = self.start + Duration::from_nanos((offset * 1e9) as u64);
        let prompt = recorded.and_then(|recorded| recorded.prompt_tokens);
        let completion = recorded.and_then(|recorded| recorded.completion_tokens);
        Some((at, self.draw_request(prompt, completion)))
    }

    /// The next request of a closed-loop worker (or any request with drawn sizes).
    pub fn next_request(&mut self) -> RequestSpec {
        self.draw_request(None, None)
    }

    // Inlined so the request is written once, into the caller's result: returned through
    // memory it was copied at shifted offsets, and each copy stalled store forwarding.
    #[inline(always)]
    fn draw_request(&mut self, prompt: Option<u32>, completion: Option<u32>) -> RequestSpec {
        let shape = &self.group.shape;
        let prompt_tokens =
            prompt.unwrap_or_else(|| shape.prompt_tokens.sample(&mut self.size_rng));
        let completion_tokens = completion
            .unwrap_or_else(|| shape.completion_tokens.sample(&mut self.size_rng))
            .min(shape.max_tokens);
        let latency_normal = if self.jittered {
            self.service_rng.sample(StandardNormal)
        } else {
            0.0
        };
        RequestSpec {
            prompt_tokens,
            completion_tokens,
            max_tokens: shape.max_tokens.max(completion_tokens),
            timeout: shape.timeout,
            latency_normal,
        }
    }
}

/// The workload of a scenario: one lazy stream per client instance, in (group, instance) order.
///
/// ```
/// let text = r#"
/// name = "two-groups"
/// duration = "1m"
/// [server]
/// model = "gpt-4o-mini"
/// tier = "tier-1"
/// [[clients]]
/// name = "web"
/// instances = 2
/// arrival = { kind = "constant", rpm = 60 }
/// prompt_tokens = { kind = "fixed", value = 100 }
/// completion_tokens = { kind = "fixed", value = 10 }
/// "#;
/// let scenario = scenario::parse_scenario(text, "x.toml", &mut |p| std::fs::read_to_string(p)).unwrap();
/// let mut streams = scenario::workload(&scenario);
/// assert_eq!(streams.len(), 2);
/// let arrivals = std::iter::from_fn(|| streams[0].next_arrival()).count();
/// assert_eq!(arrivals, 60); // at 0s, 1s, ..., 59s
/// ```
pub fn workload(scenario: &Scenario) -> Vec<ClientStream> {
    let mut streams = Vec::new();
    for (group_index, group) in scenario.groups.iter().enumerate() {
        for instance in 0..group.instances {
            streams.push(ClientStream::new(scenario, group_index as u32, instance));
        }
    }
    streams
}
