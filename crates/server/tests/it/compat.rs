//! The official `openai` Python SDK against a real server: chat (whole and streamed),
//! base64 embeddings, the Responses API, and a scripted 429 the SDK waits out.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use model::{Fault, FaultScript, HumanDuration, ScriptStep, ServerConfig};
use ratelab_server::MockServer;

const RETRY_KEY: &str = "sk-compat-retry-0001";

fn python_with_openai() -> Result<(), String> {
    let probe = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .map_err(|error| format!("python3 cannot be run ({error})"))?;
    if probe.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the `openai` Python package is missing ({})",
            String::from_utf8_lossy(&probe.stderr).trim()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_works_unchanged() {
    if let Err(problem) = python_with_openai() {
        panic!(
            "{problem}: the SDK compatibility test needs python3 with the official `openai` \
             package; run `bash .ci/test`, which installs it"
        );
    }
    // The real clock: the SDK really sleeps for Retry-After, and the script measures it. The
    // default, realistic latency: streams are paced in real time.
    let server = MockServer::start(ServerConfig::default()).await.unwrap();
    server.add_fault_script(FaultScript {
        key: Some(RETRY_KEY.to_owned()),
        steps: vec![ScriptStep {
            fault: Some(Fault::RateLimited {
                retry_after: Some(HumanDuration(Duration::from_secs(1))),
            }),
            count: 1,
        }],
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/openai_sdk.py");
    let base_url = server.base_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("OPENAI_BASE_URL", base_url)
            .env("OPENAI_API_KEY", "sk-compat-main-0001")
            .env("RATELAB_RETRY_KEY", RETRY_KEY)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|error| panic!("no JSON report ({error}):\n{stdout}\n{stderr}"));
    assert_eq!(report["embedding_dimensions"], 1536);
    let gap = report["retry_gap_seconds"].as_f64().unwrap();
    assert!((0.95..10.0).contains(&gap), "retry gap {gap}s");

    let metrics = server.state().metrics().render();
    for expected in [
        "ratelab_rate_limited_total{kind=\"rpm\"} 1",
        "ratelab_retries_total 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}
