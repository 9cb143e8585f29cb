//! The timeline through `ServerModel::decide`: a tier upgrade, a limit window, an outage and a
//! latency regime, each in force exactly from `at` until `until`.

use std::time::Duration;

use model::{Refusal, Reply};

use crate::{DEFAULT, cost, model, rng};

/// How many of `count` requests at `at` are admitted.
fn admitted(server: &mut model::ServerModel, at: Duration, count: usize) -> usize {
    (0..count)
        .filter(|_| {
            matches!(
                server.decide(
                    at,
                    &DEFAULT,
                    &cost("gpt-3.5-turbo", 1, 1),
                    &mut rng(),
                    false
                ),
                Reply::Admitted(_)
            )
        })
        .count()
}

#[test]
fn a_tier_upgrade_takes_effect_at_its_time() {
    let mut server = model("tier = \"free\"\n[[timeline]]\nat = \"10m\"\ntier = \"tier-1\"");
    assert_eq!(admitted(&mut server, Duration::from_secs(60), 10), 3);
    // Tier 1 gives gpt-3.5-turbo 3,500 RPM, with buckets that start full at the change.
    assert_eq!(admitted(&mut server, Duration::from_secs(600), 10), 10);
    assert_eq!(
        server
            .limits_at(Duration::from_secs(600), "gpt-3.5-turbo")
            .unwrap()
            .rpm,
        Some(3_500)
    );
}

#[test]
fn a_limit_window_and_an_outage_end_on_time() {
    let mut server = model(
        r#"
        model = "gpt-3.5-turbo"
        tier = "tier-1"
        [[timeline]]
        at = "1m"
        until = "2m"
        limits = { rpm = 2 }
        [[timeline]]
        at = "3m"
        until = "4m"
        fault = { kind = "overloaded" }
        [[timeline]]
        at = "3m"
        latency = { ttft = "2s" }
        "#,
    );
    let at = Duration::from_secs;
    assert_eq!(admitted(&mut server, at(60), 5), 2);
    assert_eq!(admitted(&mut server, at(120), 5), 5);
    let reply = server.decide(
        at(180),
        &DEFAULT,
        &cost("gpt-3.5-turbo", 1, 1),
        &mut rng(),
        false,
    );
    assert!(matches!(reply, Reply::Refused(Refusal::Overloaded)));
    assert_eq!(admitted(&mut server, at(240), 1), 1);
    assert_eq!(
        server.latency_at(at(179)).ttft.0,
        Duration::from_millis(200)
    );
    assert_eq!(server.latency_at(at(180)).ttft.0, Duration::from_secs(2));
}
