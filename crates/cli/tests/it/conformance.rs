//! Conformance: the simulator and the mock server decide alike, attempt by attempt.
//!
//! The simulator's own event loop runs a shipped scenario with its server calls replaced by
//! HTTP requests into the real axum app (`oneshot`, no sockets), whose manual clock is moved to
//! each attempt's time. Each response is parsed as a live client parses it, and that parsed
//! answer is what the strategy sees. In lockstep, the simulator's own server (`ModelServer`)
//! decides the same attempt. The test requires the same status, error code and headers from
//! both on every attempt, a `retry-after` equal to the model's wait rounded up, and a 429 body
//! naming the limit the model names. Then the trace of the whole run must be identical to a
//! plain simulation of the same scenario: the same admissions, answers and retry times.
//!
//! What is held equal on purpose, and why:
//! - The latency the app waits is set to zero, because a manual clock holds every wait until
//!   it is advanced. The answer's time comes from the scenario's latency model (the same
//!   `LatencyConfig` code for both). The server's own latency waits are tested in the server's
//!   tests.
//! - Prompts are `" the"` repeated (4 characters a word), so the token charge's estimate
//!   (characters / 4) equals the workload's prompt tokens, which is what the simulator charges.
//! - The scenarios here draw no random faults: both executors would decide alike, but they draw
//!   from different random streams.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use model::{ClockKind, LatencyConfig};
use rand_chacha::ChaCha8Rng;
use ratelab_server::{AppState, MockApi, app};
use results::{AttemptOutcome, AttemptRecord, LimitKind};
use retry::{Headers, Outcome};
use scenario::{RequestSpec, Scenario};
use sim::{AttemptServer, Identity, ModelServer, Response, SimOptions};
use tower::ServiceExt;

use crate::repository_root;

/// The key every client sends (a server that declares no organizations accepts any).
const KEY: &str = "sk-ratelab-conformance-0001";

/// The real mock server behind the simulator's event loop, with the model deciding beside it.
struct HttpServer {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    api: MockApi,
    shadow: ModelServer,
    model: String,
    attempts: u64,
    rate_limited: u64,
    /// Answers by status, and the time of the last 429.
    statuses: std::collections::BTreeMap<u16, u64>,
    last_429: Duration,
}

impl HttpServer {
    fn new(scenario: &Scenario, index: usize) -> HttpServer {
        let variant = &scenario.server.variants[index / scenario.strategies.len()];
        let mut config = variant.config.clone();
        config.seed = Some(scenario.seed);
        config.clock = ClockKind::Manual;
        config.latency = LatencyConfig::instant();
        for entry in &mut config.timeline {
            // Kept as entries, so the timeline changes at the same instants.
            if entry.latency.is_some() {
                entry.latency = Some(LatencyConfig::instant());
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let state = runtime.block_on(async { AppState::new(config).unwrap() });
        let options = SimOptions {
            headers_as_text: true,
            ..SimOptions::default()
        };
        HttpServer {
            api: app(state.clone()),
            runtime,
            state,
            shadow: sim::model_server(scenario, index, true, options).unwrap(),
            model: scenario.server.model.clone(),
            attempts: 0,
            rate_limited: 0,
            statuses: std::collections::BTreeMap::new(),
            last_429: Duration::ZERO,
        }
    }

    /// Sends one chat completion of `request` at server time `now`.
    fn send(
        &mut self,
        now: Duration,
        request: &RequestSpec,
    ) -> (u16, Vec<(String, String)>, String) {
        let clock = self.state.clock();
        let behind = now.saturating_sub(clock.now());
        if !behind.is_zero() {
            clock.advance(behind).unwrap();
        }
        assert_eq!(clock.now(), now, "the manual clock follows the event loop");
        let body = serde_json::json!({
            "model": self.model,
            "messages": [{"role": "user", "content": " the".repeat(request.prompt_tokens as usize)}],
            "max_tokens": request.max_tokens,
        });
        let http = Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let api = self.api.clone();
        self.runtime.block_on(async move {
            let response = api.oneshot(http).await.unwrap();
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
                .collect();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
        })
    }
}

/// What a client reads from an answer: status, the headers strategies read, and the error
/// body's code (its type when the code is null).
fn parse(status: u16, headers: &[(String, String)], body: &str) -> Outcome {
    let headers = Headers::from_pairs(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    if status == 200 {
        return Outcome::response(200, headers);
    }
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    let code = error["error"]["code"]
        .as_str()
        .or(error["error"]["type"].as_str())
        .unwrap()
        .to_owned();
    Outcome::error(status, headers, code)
}

impl AttemptServer for HttpServer {
    type Client = <ModelServer as AttemptServer>::Client;

    fn client(&mut self, identity: &Identity) -> Self::Client {
        self.shadow.client(identity)
    }

    fn charged_tokens(&self, request: &RequestSpec) -> u64 {
        self.shadow.charged_tokens(request)
    }

    fn answer(
        &mut self,
        now_ns: u64,
        client: Self::Client,
        identity: &Identity,
        request: &RequestSpec,
        fault_rng: &mut ChaCha8Rng,
        outcome: &mut Outcome,
    ) -> Response {
        let now = Duration::from_nanos(now_ns);
        let mut expected = Outcome::Timeout;
        let decided =
            self.shadow
                .answer(now_ns, client, identity, request, fault_rng, &mut expected);
        let (status, headers, body) = self.send(now, request);
        let served = parse(status, &headers, &body);
        *self.statuses.entry(status).or_default() += 1;
        if status == 429 {
            self.last_429 = now;
        }
        let attempt = self.attempts;
        assert_eq!(
            served, expected,
            "attempt {attempt} at {now:?}: the mock server answered {status} {body}"
        );
        if let AttemptOutcome::RateLimited {
            limit,
            retry_after_ns,
        } = decided.record
        {
            self.rate_limited += 1;
            let message =
                serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            let named = match limit {
                LimitKind::Rpm => "requests per min (RPM)",
                LimitKind::Tpm => "tokens per min (TPM)",
                LimitKind::Rpd => "requests per day (RPD)",
                LimitKind::Tpd => "tokens per day (TPD)",
                other => panic!("attempt {attempt}: a {other:?} 429 in a conformance scenario"),
            };
            assert!(message.contains(named), "attempt {attempt}: {message}");
            let retry_after = headers
                .iter()
                .find(|(name, _)| name == "retry-after")
                .map(|(_, value)| value.parse::<u64>().unwrap());
            let rounded_up = retry_after_ns.map(|ns| ns.div_ceil(1_000_000_000));
            assert_eq!(retry_after, rounded_up, "attempt {attempt}: {headers:?}");
        }
        self.attempts += 1;
        *outcome = served;
        decided
    }

    fn served(&mut self, client: Self::Client, request: &RequestSpec) {
        self.shadow.served(client, request);
    }
}

/// What the mock server answered in a conformance run.
#[derive(Debug)]
struct Served {
    attempts: u64,
    /// Answers by status.
    statuses: std::collections::BTreeMap<u16, u64>,
    /// When the last 429 was sent.
    last_429: Duration,
}

impl Served {
    fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

/// Runs `file` cut to `duration` and `drain`, run `index`, through the mock server and through
/// the simulator, and requires the same answers and the same trace.
fn conform(file: &str, duration: u64, drain: u64, index: usize) -> Served {
    let path = repository_root().join("scenarios").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = scenario::parse_scenario(&text, &path.display().to_string(), &mut |p| {
        std::fs::read_to_string(p)
    })
    .unwrap()
    .shortened(Duration::from_secs(duration), Duration::from_secs(drain));
    let options = SimOptions {
        headers_as_text: true,
        ..SimOptions::default()
    };
    let mut simulated: Vec<AttemptRecord> = Vec::new();
    sim::simulate_run_with(
        &scenario,
        index,
        options,
        Some(&mut |record: &AttemptRecord| simulated.push(*record)),
    )
    .unwrap();
    let mut served: Vec<AttemptRecord> = Vec::new();
    let mut server = HttpServer::new(&scenario, index);
    sim::simulate_run_on(&scenario, index, &mut server, &mut |attempt| {
        served.push(*attempt);
    })
    .unwrap();
    assert_eq!(served.len(), simulated.len(), "{file}: attempt count");
    for (position, (real, model)) in served.iter().zip(&simulated).enumerate() {
        assert_eq!(real, model, "{file}: record {position}");
    }
    assert_eq!(server.count_429(), server.rate_limited);
    Served {
        attempts: server.attempts,
        statuses: server.statuses,
        last_429: server.last_429,
    }
}

impl HttpServer {
    fn count_429(&self) -> u64 {
        self.statuses.get(&429).copied().unwrap_or(0)
    }
}

/// A burst of 500 instances against Tier 1 gpt-4o: nearly every attempt a 429, under the
/// SDK's retries.
#[test]
fn startup_burst_conforms() {
    let served = conform("startup-burst.toml", 120, 60, 0);
    assert!(
        served.attempts > 5_000 && served.count(429) > 5_000,
        "{served:?}"
    );
}

/// The main job's spike, under Retry-After backoff (tier-1, rejections free).
#[test]
fn traffic_spike_conforms() {
    let served = conform("traffic-spike.toml", 540, 60, 3);
    assert!(
        served.attempts > 2_000 && served.count(429) > 100,
        "{served:?}"
    );
}

/// Tokens, not requests, bind: TPM 429s for long prompts (the SDK's retries), and the same
/// workload paced from the `x-ratelimit-*` headers, which avoids them.
#[test]
fn tpm_bound_conforms() {
    let served = conform("tpm-bound.toml", 1_200, 600, 0);
    assert!(served.count(429) > 0, "{served:?}");
    let paced = conform("tpm-bound.toml", 1_200, 600, 1);
    assert!(paced.attempts > 50, "{paced:?}");
}

/// 1,200 RPM of gpt-4o on Tier 1 (500 RPM), the SDK's retries.
#[test]
fn tier_upgrade_conforms() {
    let served = conform("tier-upgrade.toml", 180, 60, 0);
    assert!(
        served.attempts > 3_000 && served.count(429) > 100,
        "{served:?}"
    );
}

/// The timeline: an outage from 4m to 6m (every request a 503), then the recovery, under
/// counted rejections and the SDK's retries.
#[test]
fn outage_and_recovery_conforms() {
    let served = conform("outage-and-recovery.toml", 420, 120, 4);
    assert!(
        served.count(503) > 500 && served.count(200) > 1_500,
        "{served:?}"
    );
}

/// The timeline: a Tier 2 upgrade at 25m, under a strategy that paces from the
/// `x-ratelimit-*` headers (so every header value matters).
#[test]
fn upgrade_mid_run_conforms() {
    let served = conform("upgrade-mid-run.toml", 1_560, 60, 2);
    assert!(served.count(429) > 0, "{served:?}");
    assert!(
        served.last_429 < Duration::from_secs(25 * 60),
        "no 429 after the upgrade: {served:?}"
    );
}

/// The timeline: limits halve (and latency triples) from 10m, under counted rejections; the
/// full bucket the change starts with lasts about two and a half minutes.
#[test]
fn provider_incident_conforms() {
    let served = conform("provider-incident.toml", 840, 60, 4);
    assert!(
        served.count(429) > 0 && served.last_429 > Duration::from_secs(600),
        "{served:?}"
    );
}
