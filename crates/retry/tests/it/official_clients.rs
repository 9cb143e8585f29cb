//! The official OpenAI clients' retry behaviour, version by version, as a table matching
//! docs/official-clients.md.

use std::time::Duration;

use retry::{Decision, GiveUpReason, Headers, Outcome, RetryClient};

use crate::{Script, build, ms, run_request, secs};

const CLIENTS: [&str; 7] = [
    "openai-python@2.51",
    "openai-python@2.52",
    "openai-node@4",
    "openai-node@6.26",
    "openai-node@7.5",
    "async-openai@0.36",
    "async-openai@0.37",
];

fn rate_limited(retry_after: &str) -> Outcome {
    Outcome::error(
        429,
        Headers::from_pairs([("retry-after", retry_after)]),
        "rate_limit_exceeded",
    )
}

/// The first decision of each client (one retry left at least), with `u = 0` so the jittered
/// fallback is at its top: 500 ms for python/node, 250 ms (interval 500 ms - 50%) for
/// async-openai 0.36, 100 ms for async-openai 0.37.
fn first_decision(client: &str, outcome: &Outcome) -> Decision {
    let mut client = RetryClient::new(build(client));
    let mut rng = Script::new(&[0.0]);
    let mut request = client.begin(Duration::ZERO, 0);
    client.before_attempt(&mut request, Duration::ZERO, &mut rng);
    client.after_outcome(&mut request, outcome, Duration::ZERO, &mut rng)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Wait(Duration),
    Stop(GiveUpReason),
}
use Expect::{Stop, Wait};

const NOT: Expect = Stop(GiveUpReason::NotRetryable);

#[test]
fn official_clients_table() {
    let scenarios: [(&str, Outcome); 9] = [
        ("retry-after 0", rate_limited("0")),
        ("retry-after 1", rate_limited("1")),
        ("retry-after 60", rate_limited("60")),
        ("retry-after 61", rate_limited("61")),
        ("retry-after 121", rate_limited("121")),
        (
            "x-should-retry false",
            Outcome::error(
                429,
                Headers::from_pairs([("x-should-retry", "false")]),
                "rate_limit_exceeded",
            ),
        ),
        (
            "insufficient_quota",
            Outcome::error(429, Headers::new(), "insufficient_quota"),
        ),
        (
            "400",
            Outcome::error(400, Headers::new(), "context_length_exceeded"),
        ),
        (
            "503",
            Outcome::error(503, Headers::new(), "server_is_overloaded"),
        ),
    ];
    let fallback = Wait(ms(500));
    let too_long = Stop(GiveUpReason::RetryAfterTooLong);
    // Rows follow `scenarios`; columns follow CLIENTS.
    let table: [[Expect; 7]; 9] = [
        // py2.51   py2.52       node4     node6.26        node7.5      async0.36       async0.37
        [
            fallback,
            fallback,
            fallback,
            Wait(secs(0)),
            Wait(secs(0)),
            Wait(ms(250)),
            Wait(secs(0)),
        ],
        [
            Wait(secs(1)),
            Wait(secs(1)),
            Wait(secs(1)),
            Wait(secs(1)),
            Wait(secs(1)),
            Wait(ms(250)),
            Wait(secs(1)),
        ],
        [
            Wait(secs(60)),
            Wait(secs(60)),
            fallback,
            Wait(secs(60)),
            Wait(secs(60)),
            Wait(ms(250)),
            Wait(secs(60)),
        ],
        [
            fallback,
            Wait(secs(61)),
            fallback,
            Wait(secs(61)),
            fallback,
            Wait(ms(250)),
            Wait(secs(61)),
        ],
        [
            fallback,
            too_long,
            fallback,
            Wait(secs(121)),
            fallback,
            Wait(ms(250)),
            Wait(secs(121)),
        ],
        [NOT, NOT, NOT, NOT, NOT, Wait(ms(250)), Wait(ms(100))],
        [fallback, fallback, fallback, fallback, fallback, NOT, NOT],
        [NOT, NOT, NOT, NOT, NOT, NOT, NOT],
        [
            fallback,
            fallback,
            fallback,
            fallback,
            fallback,
            Wait(ms(250)),
            Wait(ms(100)),
        ],
    ];
    let mut mismatches = Vec::new();
    for ((scenario, outcome), row) in scenarios.iter().zip(table) {
        for (client, expected) in CLIENTS.iter().zip(row) {
            let actual = match first_decision(client, outcome) {
                Decision::Retry { after } => Wait(after),
                Decision::GiveUp { reason } => Stop(reason),
                Decision::Done => panic!("{client} / {scenario}: a failure cannot be done"),
            };
            let matches = match (actual, expected) {
                // The 0.36 draw carries the backoff crate's extra nanosecond.
                (Wait(actual), Wait(expected)) => actual.abs_diff(expected) <= ms(1) / 1000,
                _ => actual == expected,
            };
            if !matches {
                mismatches.push(format!(
                    "{client} / {scenario}: got {actual:?}, expected {expected:?}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn retry_after_ms_wins_over_retry_after() {
    let outcome = Outcome::response(
        429,
        Headers::from_pairs([("retry-after", "5"), ("retry-after-ms", "1500")]),
    );
    assert_eq!(
        first_decision("openai-python@2.52", &outcome),
        Decision::Retry { after: ms(1500) }
    );
    // async-openai 0.37 reads integer retry-after only.
    assert_eq!(
        first_decision("async-openai@0.37", &outcome),
        Decision::Retry { after: secs(5) }
    );
}

#[test]
fn x_should_retry_true_makes_a_400_retryable_for_python_and_node_only() {
    let outcome = Outcome::response(400, Headers::from_pairs([("x-should-retry", "true")]));
    for client in &CLIENTS[..5] {
        assert!(
            matches!(first_decision(client, &outcome), Decision::Retry { .. }),
            "{client}"
        );
    }
    for client in &CLIENTS[5..] {
        assert_eq!(
            first_decision(client, &outcome),
            Decision::GiveUp {
                reason: GiveUpReason::NotRetryable
            },
            "{client}"
        );
    }
}

#[test]
fn transport_errors_and_timeouts_are_retried_by_python_and_node_only() {
    for outcome in [Outcome::TransportError, Outcome::Timeout] {
        assert!(matches!(
            first_decision("openai-node@7.5", &outcome),
            Decision::Retry { .. }
        ));
        assert_eq!(
            first_decision("async-openai@0.37", &outcome),
            Decision::GiveUp {
                reason: GiveUpReason::NotRetryable
            }
        );
    }
}

#[test]
fn attempt_counts_follow_max_retries() {
    let cases = [
        ("openai-python@2.52", 3),
        ("openai-node@7.5", 3),
        ("async-openai@0.37", 4),
        ("openai-python@2.52:max-retries=0", 1),
        ("openai-python@2.52:max-retries=5", 6),
    ];
    for (client, expected_calls) in cases {
        let mut client_state = RetryClient::new(build(client));
        let mut rng = Script::new(&[0.0; 8]);
        let (result, sends) = run_request(&mut client_state, Duration::ZERO, &mut rng, |_| {
            rate_limited("1")
        });
        assert_eq!(result, Err(GiveUpReason::MaxAttempts), "{client}");
        assert_eq!(sends.len(), expected_calls, "{client}");
    }
}

#[test]
fn async_openai_0_36_stops_after_fifteen_minutes_elapsed() {
    let mut client = RetryClient::new(build("async-openai@0.36"));
    let mut rng = rand::SeedableRng::seed_from_u64(11);
    let rng: &mut rand_chacha::ChaCha8Rng = &mut rng;
    let (result, sends) = run_request(&mut client, Duration::ZERO, rng, |_| {
        Outcome::response(503, Headers::new())
    });
    assert_eq!(result, Err(GiveUpReason::Deadline));
    let last = *sends.last().unwrap();
    assert!(last <= secs(15 * 60), "last attempt at {last:?}");
    // Intervals reach 60 s +-50%, so the last send is within 90 s of the limit.
    assert!(last >= secs(15 * 60 - 90), "gave up early at {last:?}");
}

#[test]
fn python_and_node_set_a_600_second_attempt_timeout() {
    assert_eq!(
        build("openai-python@2.51").attempt_timeout(),
        Some(secs(600))
    );
    assert_eq!(build("openai-node@4").attempt_timeout(), Some(secs(600)));
    assert_eq!(build("async-openai@0.37").attempt_timeout(), None);
    assert_eq!(
        build("openai-node@4:attempt-timeout=30s").attempt_timeout(),
        Some(secs(30))
    );
}

#[test]
fn versions_resolve_to_the_latest_line_at_or_below() {
    let registry = retry::Registry::with_builtins();
    let resolved = |kind| registry.resolve(kind).map(|info| info.name.clone());
    assert_eq!(
        resolved("openai-python@2.60").unwrap(),
        "openai-python@2.52"
    );
    assert_eq!(
        resolved("openai-python@2.51.3").unwrap(),
        "openai-python@2.51"
    );
    assert_eq!(
        resolved("openai-python@1.40").unwrap(),
        "openai-python@2.51"
    );
    assert_eq!(resolved("async-openai@0.20").unwrap(), "async-openai@0.36");
    assert_eq!(
        resolved("openai-python@latest").unwrap_err().to_string(),
        "strategy \"openai-python@latest\": the version must be dotted numbers such as 2.52 \
         (known: openai-python@2.51, openai-python@2.52)"
    );
    assert_eq!(resolved("openai-node@7.10").unwrap(), "openai-node@7.5");
    assert_eq!(resolved("openai-node@7.4").unwrap(), "openai-node@6.26");
    assert_eq!(resolved("openai-node@5").unwrap(), "openai-node@4");
    assert_eq!(resolved("openai-node").unwrap(), "openai-node@7.5");
    assert_eq!(resolved("tenacity").unwrap(), "tenacity@9");
}
