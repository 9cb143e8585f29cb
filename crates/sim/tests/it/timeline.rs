//! The server's timeline in the simulator: a tier upgrade, a limit that drops for a window and
//! an outage each take effect exactly while their entry is in force.

use results::{AttemptOutcome, AttemptRecord};

/// `rpm` of constant traffic for 6 minutes, no retries, against `server`.
fn scenario(server: &str, rpm: u32) -> String {
    format!(
        r#"name = "timeline"
duration = "6m"
drain = "0s"
[server]
model = "gpt-4o-mini"
{server}
[server.latency]
ttft = "10ms"
per_output_token = "0s"
jitter = 0.0
[[clients]]
name = "app"
arrival = {{ kind = "constant", rpm = {rpm} }}
prompt_tokens = {{ kind = "fixed", value = 10 }}
completion_tokens = {{ kind = "fixed", value = 10 }}
[[strategies]]
kind = "none"
"#
    )
}

/// Attempts sent in `[from, to)` seconds, and how many of them were rate limited.
fn window(attempts: &[AttemptRecord], from: u64, to: u64) -> (usize, usize) {
    let inside: Vec<&AttemptRecord> = attempts
        .iter()
        .filter(|record| (from * 1_000_000_000..to * 1_000_000_000).contains(&record.sent_ns))
        .collect();
    let limited = inside
        .iter()
        .filter(|record| matches!(record.outcome, AttemptOutcome::RateLimited { .. }))
        .count();
    (inside.len(), limited)
}

#[test]
fn a_limit_that_drops_for_a_window_rejects_only_inside_it() {
    // 1,000 RPM outside the window, 300 RPM inside it, against 10 requests a second.
    let text = scenario(
        "tier = \"tier-1\"\nlimits = { rpm = 1000 }\n[[server.timeline]]\nat = \"2m\"\nuntil = \"4m\"\nlimits = { rpm = 300 }",
        600,
    );
    let (_, _, attempts) = crate::simulate(&crate::parse(&text));
    let (before, limited_before) = window(&attempts, 0, 120);
    let (during, limited_during) = window(&attempts, 125, 235);
    let (after, limited_after) = window(&attempts, 245, 360);
    assert!(before >= 1_190 && after >= 1_140, "{before} {after}");
    assert_eq!((limited_before, limited_after), (0, 0));
    // The bucket starts afresh at the change, full at 300, and refills 5 a second: it lasts
    // 60 s at 10 a second, then half the requests are refused, about 5 x 55 s of the window.
    assert_eq!(during, 1_100);
    assert!(
        (240..=300).contains(&limited_during),
        "{limited_during} of {during}"
    );
    let (first_minute, limited_first_minute) = window(&attempts, 120, 179);
    assert_eq!((first_minute, limited_first_minute), (590, 0));
}

#[test]
fn a_tier_upgrade_mid_run_ends_the_429s() {
    // 1,200 RPM empties Tier 1's 500-RPM bucket within a minute; Tier 2's 5,000 RPM refuses
    // none.
    let text = scenario(
        "tier = \"tier-1\"\n[[server.timeline]]\nat = \"3m\"\ntier = \"tier-2\"",
        1_200,
    );
    let (_, _, attempts) = crate::simulate(&crate::parse(&text));
    let (before, limited_before) = window(&attempts, 60, 180);
    let (after, limited_after) = window(&attempts, 180, 360);
    assert!(limited_before > before / 10, "{limited_before} of {before}");
    assert_eq!(limited_after, 0, "of {after}");
}

#[test]
fn an_outage_fails_every_attempt_while_it_lasts() {
    let text = scenario(
        "tier = \"tier-5\"\n[[server.timeline]]\nat = \"1m\"\nuntil = \"2m\"\nfault = { kind = \"overloaded\" }",
        600,
    );
    let (_, _, attempts) = crate::simulate(&crate::parse(&text));
    let failed = |record: &&AttemptRecord| {
        matches!(record.outcome, AttemptOutcome::ServerError { status: 503 })
    };
    let inside: Vec<&AttemptRecord> = attempts
        .iter()
        .filter(|record| (60_000_000_000..120_000_000_000).contains(&record.sent_ns))
        .collect();
    assert_eq!(inside.len(), 600);
    assert!(inside.iter().all(failed));
    assert!(
        attempts
            .iter()
            .filter(|record| !(60_000_000_000..120_000_000_000).contains(&record.sent_ns))
            .all(|record| record.outcome == AttemptOutcome::Success)
    );
}
