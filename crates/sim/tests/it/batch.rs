//! A closed-loop batch (workers with `requests_per_worker`): how many of its requests never
//! started before the run stopped sending, and its makespan, from its start to the end of its
//! last request.

use results::BatchResult;

/// Two workers of one instance, each to send three requests answered in exactly one second,
/// starting at `start`, for `duration`, with `strategy`.
fn batch(start: &str, duration: &str, strategy: &str) -> BatchResult {
    let text = format!(
        r#"name = "batch"
duration = "{duration}"
drain = "1m"
[server]
model = "gpt-4o-mini"
tier = "tier-5"
[server.latency]
ttft = "1s"
per_output_token = "0s"
jitter = 0.0
[[clients]]
name = "workers"
start = "{start}"
closed_loop = {{ concurrency = 2, requests_per_worker = 3 }}
prompt_tokens = {{ kind = "fixed", value = 10 }}
completion_tokens = {{ kind = "fixed", value = 10 }}
[[strategies]]
{strategy}
"#
    );
    let (report, _, _) = crate::simulate(&crate::parse(&text));
    assert_eq!(report.scenario.groups[0].batch_requests, Some(6));
    report.runs[0]
        .batch
        .expect("a scenario with a batch reports it")
}

#[test]
fn a_finished_batch_reports_its_makespan_from_its_own_start() {
    let finished = BatchResult {
        requests: 6,
        not_started: 0,
        makespan_ms: Some(3_000),
    };
    assert_eq!(batch("0s", "1m", "kind = \"none\""), finished);
    assert_eq!(batch("10s", "1m", "kind = \"none\""), finished);
}

#[test]
fn a_batch_cut_short_by_the_duration_counts_requests_never_started_and_is_not_finished() {
    // Workers start requests at 0s and 1s; at 2s the run stops sending.
    assert_eq!(
        batch("0s", "2s", "kind = \"none\""),
        BatchResult {
            requests: 6,
            not_started: 2,
            makespan_ms: None,
        }
    );
    // A pacer at 60 RPM lets one request leave per second: both workers wait, the batch takes
    // longer, and the same 2 s start fewer of its requests.
    let paced = "kind = \"token-bucket\"\nrpm = 60\nrequest-burst = 1\ninner = { kind = \"none\" }";
    let result = batch("0s", "2s", paced);
    assert!(result.not_started > 2, "{result:?}");
    assert_eq!(result.makespan_ms, None);
    let unhurried = batch("0s", "1m", paced);
    assert_eq!(unhurried.not_started, 0);
    assert!(unhurried.makespan_ms > Some(3_000), "{unhurried:?}");
}

#[test]
fn scenarios_without_a_batch_report_none() {
    let scenario = crate::parse(
        r#"name = "open"
duration = "10s"
[server]
model = "gpt-4o-mini"
tier = "tier-1"
[[clients]]
name = "app"
arrival = { kind = "constant", rpm = 60 }
prompt_tokens = { kind = "fixed", value = 10 }
completion_tokens = { kind = "fixed", value = 10 }
[[clients]]
name = "workers"
closed_loop = { concurrency = 2 }
prompt_tokens = { kind = "fixed", value = 10 }
completion_tokens = { kind = "fixed", value = 10 }
"#,
    );
    let (report, json, _) = crate::simulate(&scenario);
    assert!(report.runs.iter().all(|run| run.batch.is_none()));
    assert!(!json.contains("\"batch"), "no batch fields in report.json");
}
