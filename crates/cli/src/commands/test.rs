//! `ratelab test SCENARIO -- COMMAND...`: plays a scenario's server against a real program and
//! grades how it behaved, from what the server saw.
//!
//! The scenario's server section (one variant) becomes the mock server's config on a free
//! loopback port; COMMAND runs (N copies with `--instances`) with `OPENAI_BASE_URL` and
//! `OPENAI_API_KEY` pointing at it, its output passing through. The server grades every API
//! call (`ratelab_server::grading`); the graded attempts go through `results::RunMetrics` like
//! a simulated trace, so the report has the same formats and charts, and the scenario's
//! `[expect]` judges it as `ratelab check` judges a strategy.
//!
//! While COMMAND runs, a terminal's stderr shows one progress line, redrawn about once a
//! second from the grader's live counts and cleared before the report; a stderr that is not a
//! terminal (CI logs) gets none.
//!
//! Exit codes (mapped in `main.rs`): 0 the client met `[expect]` and every COMMAND exited 0;
//! 1 the client missed `[expect]`, whatever COMMAND's exit code; 2 bad input (or COMMAND could
//! not be started); 3 the client met `[expect]` but a COMMAND exited non-zero or was killed at
//! the time limit.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use model::{
    DEFAULT_ORGANIZATION, DEFAULT_PROJECT, OrganizationConfig, ProjectConfig, ServerConfig,
};
use ratelab_server::{Grader, LiveCounts, MockServer};
use scenario::{Scenario, ServerVariant};

use super::{Outcome, graded};

/// How the progress line starts: a piped stderr must never contain it (the cli tests check).
pub const PROGRESS_MARKER: &str = "ratelab test: running";

/// Arguments of `ratelab test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario whose server section is served and whose [expect] judges the client.
    pub scenario: PathBuf,
    /// The server variant to serve, by its label (`ratelab run` prints them); default the first.
    #[arg(long, value_name = "LABEL")]
    pub variant: Option<String>,
    /// Copies of COMMAND to run at once; each gets its index in RATELAB_INSTANCE and its own key.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub instances: u32,
    /// Directory for the report (default reports/<scenario-name>-test).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write JUnit XML here: one testcase per [expect] threshold.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Seconds COMMAND may run past the scenario's duration before its process group is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub grace: u64,
    /// The client program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// How one copy of COMMAND ended.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Exited(ExitStatus),
    /// Still running at the time limit; its process group was killed.
    TimedOut,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let scenario = super::validate::load(&args.scenario)?;
    let variant = super::validate::pick_variant(&scenario, args.variant.as_deref())?.clone();
    let keys: Vec<String> = (0..args.instances)
        .map(|instance| format!("sk-ratelab-test-{instance:04}-0000000000"))
        .collect();
    let config = server_config(&scenario, &variant, &keys);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(format!("{}-test", scenario.name)));
    let limit = scenario.duration + Duration::from_secs(args.grace);
    // Simulated first: a scenario the simulator cannot run fails before the client starts.
    let models = graded::simulated_models(&scenario, &variant)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let grader = Grader::new();
    let (ended, elapsed) = runtime.block_on(async {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = MockServer::bind_graded(config, loopback, Some(grader.clone())).await?;
        eprintln!(
            "ratelab test: serving {} ({}) at {}; running {} cop{} of `{}`, for at most {}s",
            variant.label,
            scenario.server.model,
            server.base_url(),
            args.instances,
            if args.instances == 1 { "y" } else { "ies" },
            args.command.join(" "),
            limit.as_secs(),
        );
        let started = Instant::now();
        let progress = Progress::start(&grader, started, limit);
        let piped = progress.is_some();
        let mut children = spawn_all(&args, &scenario, &server.base_url(), &keys, piped)?;
        let forwarders = progress
            .as_ref()
            .map(|progress| progress.forward_output(&mut children))
            .unwrap_or_default();
        let ended = wait_all(children, started + limit).await;
        finish_forwarding(forwarders).await;
        let elapsed = started.elapsed();
        // Before anything else is printed: the report starts on a clean line.
        drop(progress);
        server.shutdown().await?;
        anyhow::Ok((ended, elapsed))
    })?;

    let tested = graded::Tested {
        command: args.command.join(" "),
        instances: args.instances,
        elapsed,
        grader: &grader,
    };
    let (report, grading) = graded::graded_report(&scenario, &variant, &tested, &models);
    let passed = graded::conclude(
        &report,
        &grading,
        &graded::Output {
            dir: &out,
            junit: args.junit.as_deref(),
            scenario_path: &args.scenario,
        },
    )?;

    if !passed {
        return Ok(Outcome::Failed);
    }
    let failures: Vec<String> = ended
        .iter()
        .enumerate()
        .filter_map(|(instance, ended)| match ended {
            Ended::Exited(status) if status.success() => None,
            Ended::Exited(status) => Some(format!("instance {instance}: {}", describe(*status))),
            Ended::TimedOut => Some(format!(
                "instance {instance}: still running after {}s, killed",
                limit.as_secs()
            )),
        })
        .collect();
    if failures.is_empty() {
        Ok(Outcome::Success)
    } else {
        eprintln!(
            "the client met [expect] but COMMAND failed: {}",
            failures.join("; ")
        );
        Ok(Outcome::CommandFailed)
    }
}

/// The progress line while COMMAND runs: on a terminal's stderr only, redrawn in place once
/// a second by a task on the runtime, cleared (and the task stopped) when dropped. While it is
/// shown, COMMAND's stdout and stderr come through pipes and are printed line by line above
/// it ([`Progress::forward_output`]), so the two never share a line.
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts the line, or nothing when stderr is not a terminal.
    fn start(grader: &Grader, started: Instant, limit: Duration) -> Option<Progress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        // `{msg}` is a fixed template, valid in every indicatif version.
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        let (line, grader) = (bar.clone(), grader.clone());
        let ticker = tokio::spawn(async move {
            let mut every_second = tokio::time::interval(Duration::from_secs(1));
            loop {
                every_second.tick().await;
                line.set_message(progress_line(
                    started.elapsed(),
                    limit,
                    grader.live_counts(),
                ));
            }
        });
        Some(Progress { bar, ticker })
    }
}

impl Progress {
    /// Takes each child's piped stdout and stderr and prints them, a whole line at a time,
    /// above the progress line, each to the stream it came from; one thread per pipe, which
    /// ends when the pipe closes.
    fn forward_output(&self, children: &mut [Child]) -> Vec<std::thread::JoinHandle<()>> {
        let mut forwarders = Vec::new();
        for child in children {
            if let Some(stdout) = child.stdout.take() {
                forwarders.push(forward_lines(stdout, self.bar.clone(), false));
            }
            if let Some(stderr) = child.stderr.take() {
                forwarders.push(forward_lines(stderr, self.bar.clone(), true));
            }
        }
        forwarders
    }
}

/// Copies `pipe` to our stdout (or stderr) line by line, each line printed with the progress
/// line hidden, so it lands above it.
fn forward_lines(
    pipe: impl std::io::Read + Send + 'static,
    bar: ProgressBar,
    to_stderr: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let mut reader = std::io::BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => bar.suspend(|| {
                    // A closed stdout or stderr loses the line; the command runs on.
                    let _ = if to_stderr {
                        std::io::stderr().lock().write_all(&line)
                    } else {
                        std::io::stdout().lock().write_all(&line)
                    };
                }),
            }
        }
    })
}

/// Lets the forwarders print what the command wrote last before the report starts; a pipe a
/// stray descendant still holds open is left behind after a second.
async fn finish_forwarding(forwarders: Vec<std::thread::JoinHandle<()>>) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while forwarders.iter().any(|forwarder| !forwarder.is_finished()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// The text of the progress line.
fn progress_line(elapsed: Duration, limit: Duration, counts: LiveCounts) -> String {
    format!(
        "{PROGRESS_MARKER} {}s of at most {}s: {} requests, {} answered 429, {} retries",
        elapsed.as_secs(),
        limit.as_secs(),
        counts.requests,
        counts.rate_limited,
        counts.retries,
    )
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => format!("ended by a signal ({status})"),
    }
}

/// The serve config that plays `variant`: the variant's own server config (the scenario's
/// `[server]` table with its tier and rejection rule), seeded by the scenario's seed. A
/// scenario that declares no organizations gets one for the client's keys, acting for the
/// default organization and project, so its limits, latency, faults and timeline apply as in
/// the simulation.
fn server_config(scenario: &Scenario, variant: &ServerVariant, keys: &[String]) -> ServerConfig {
    let mut config = variant.config.clone();
    config.seed = Some(scenario.seed);
    if config.organizations.is_empty() {
        config.organizations = vec![OrganizationConfig {
            id: DEFAULT_ORGANIZATION.to_owned(),
            tier: None,
            budget_usd: None,
            limits: BTreeMap::new(),
            projects: vec![ProjectConfig {
                id: DEFAULT_PROJECT.to_owned(),
                keys: keys.to_vec(),
                limits: BTreeMap::new(),
            }],
        }];
    }
    config
}

fn spawn_all(
    args: &Args,
    scenario: &Scenario,
    base_url: &str,
    keys: &[String],
    piped: bool,
) -> anyhow::Result<Vec<Child>> {
    let (program, rest) = args
        .command
        .split_first()
        .context("no COMMAND after `--` (e.g. `-- python3 app.py`)")?;
    let mut children = Vec::with_capacity(keys.len());
    for (instance, key) in keys.iter().enumerate() {
        let mut command = Command::new(program);
        command
            .args(rest)
            .env("OPENAI_BASE_URL", base_url)
            .env("OPENAI_API_KEY", key)
            .env("RATELAB_INSTANCE", instance.to_string())
            .env("RATELAB_INSTANCES", keys.len().to_string())
            .env("RATELAB_MODEL", &scenario.server.model);
        if piped {
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
        }
        // Its own process group, so a timeout kills whatever the command started too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                // Copies already started must not outlive the test.
                for mut started in children {
                    kill_group(&mut started);
                }
                return Err(anyhow::anyhow!(
                    "cannot start COMMAND `{program}`: {error} (check that it is installed and on PATH)"
                ));
            }
        };
        children.push(child);
    }
    Ok(children)
}

/// Waits for every child until `deadline`, then kills the process groups still running.
async fn wait_all(mut children: Vec<Child>, deadline: Instant) -> Vec<Ended> {
    let mut ended: Vec<Option<Ended>> = vec![None; children.len()];
    // Polled rather than awaited: std's children, so the command's stdio is inherited as is;
    // 20 ms is far below anything a report measures.
    while ended.iter().any(Option::is_none) && Instant::now() < deadline {
        for (child, slot) in children.iter_mut().zip(ended.iter_mut()) {
            if slot.is_none()
                && let Ok(Some(status)) = child.try_wait()
            {
                *slot = Some(Ended::Exited(status));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    children
        .iter_mut()
        .zip(ended)
        .map(|(child, slot)| match slot {
            Some(ended) => ended,
            None => {
                kill_group(child);
                Ended::TimedOut
            }
        })
        .collect()
}

fn kill_group(child: &mut Child) {
    // The child leads its own group (`process_group(0)`), so its pid is the group's id.
    #[cfg(unix)]
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name = "served"
seed = 3
duration = "10m"

[server]
model = "gpt-4o-mini"
tier = "tier-2"
limits = { rpm = 100 }

[server.headers]
rate_limit = "none"

[server.latency]
ttft = "300ms"
per_prompt_token = "1ms"
per_output_token = "5ms"
jitter = 0.3
reject = "40ms"

[[server.timeline]]
at = "1m"
until = "2m"
fault = { kind = "overloaded" }
probability = 0.25

[[server.timeline]]
at = "3m"
fault = { kind = "slow_down" }

[[clients]]
name = "app"
arrival = { kind = "constant", rpm = 10 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }

[[strategies]]
kind = "openai-python@2.52"
"#;

    #[test]
    fn the_progress_line_shows_time_against_the_limit_and_the_live_counts() {
        let counts = LiveCounts {
            requests: 120,
            rate_limited: 7,
            retries: 9,
        };
        assert_eq!(
            progress_line(
                Duration::from_millis(12_900),
                Duration::from_secs(90),
                counts
            ),
            "ratelab test: running 12s of at most 90s: 120 requests, 7 answered 429, 9 retries"
        );
    }

    #[test]
    fn a_variant_is_served_with_its_limits_latency_headers_and_fault_windows() {
        let scenario = scenario::parse_scenario(SCENARIO, "served.toml", &mut |_| {
            unreachable!("the scenario refers to no file")
        })
        .unwrap();
        let keys = ["sk-ratelab-test-0000-0000000000".to_owned()];
        let config = server_config(&scenario, &scenario.server.variants[0], &keys);
        // The variant's config is the scenario's server table itself, as the simulator reads it.
        let variant = &scenario.server.variants[0].config;
        assert_eq!(config.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(config.tier.as_deref(), Some("tier-2"));
        assert_eq!(config.limits, variant.limits);
        assert_eq!(config.limits.as_ref().unwrap().set.rpm, Some(100));
        assert_eq!(config.seed, Some(3));
        assert_eq!(
            config.headers.rate_limit,
            model::RateLimitHeaderPolicy::None
        );
        assert_eq!(config.latency, variant.latency);
        assert_eq!(
            config.latency.reject,
            model::HumanDuration(Duration::from_millis(40))
        );
        assert_eq!(config.timeline, variant.timeline);
        assert_eq!(config.timeline[0].probability, Some(0.25));
        assert_eq!(config.organizations[0].projects[0].keys, keys);
        // The mock server accepts it.
        config.validate("test").unwrap();
    }
}
