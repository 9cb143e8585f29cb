//! `ratelab serve`: runs the mock OpenAI server until SIGINT or SIGTERM. With `--scenario` it
//! grades the clients it serves as `ratelab test` does, answers the report on
//! `GET /_admin/report`, and at shutdown writes it and exits with the verdict of `[expect]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use model::{ClockKind, ServerConfig};
use ratelab_server::{Grader, MockServer};
use scenario::{Scenario, ServerVariant};

use super::{Outcome, graded};

/// Arguments of `ratelab serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Tier of organizations that do not set their own (free, tier-1 ... tier-5).
    #[arg(long)]
    pub tier: Option<String>,
    /// TOML config, the schema of a scenario's `[server]` table: organizations, projects,
    /// keys, limits, latency, faults, timeline, headers (crates/server/serve.example.toml,
    /// docs/server-config.md).
    #[arg(long, conflicts_with = "scenario")]
    pub config: Option<PathBuf>,
    /// Serve a scenario's server: its `[server]` table, seeded by its `seed`, so a real client
    /// meets the server the simulation ran against. Point the client at the printed address.
    /// Every client is graded, as `ratelab test` grades one: `GET /_admin/report` answers the
    /// report so far; at shutdown it is written (--out) and the exit code is 1 when the clients
    /// missed the scenario's [expect].
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// With --scenario: the server variant to serve, by label (`tier-2`,
    /// `tier-1, rejections count`; `ratelab run` prints them). Default: the first.
    #[arg(long, requires = "scenario")]
    pub variant: Option<String>,
    /// With --scenario: where the graded clients' report is written at shutdown (default
    /// reports/<scenario-name>-serve). `GET /_admin/report` answers it while serving.
    #[arg(long, value_name = "DIR", requires = "scenario")]
    pub out: Option<PathBuf>,
    /// With --scenario: also write JUnit XML at shutdown, one testcase per [expect] threshold.
    #[arg(long, value_name = "FILE", requires = "scenario")]
    pub junit: Option<PathBuf>,
    /// `manual` freezes server time until `POST /_admin/clock/advance`.
    #[arg(long, value_enum)]
    pub clock: Option<ClockArg>,
    /// Answer at once: no time to first token, per token or before a refusal, no jitter (over
    /// the config's `[latency]`). With `--clock manual`, requests then never wait for the clock.
    #[arg(long)]
    pub no_latency: bool,
    /// Enables the `/_admin` API; callers must send it as a bearer token.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Seed for content, latency jitter and fault draws.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The `--clock` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ClockArg {
    Real,
    Manual,
}

/// A scenario's server being served: its clients are graded, and judged at shutdown.
struct Served {
    scenario: Scenario,
    variant: ServerVariant,
    /// `the server of scenario NAME (FILE), variant LABEL`.
    description: String,
}

/// Reads the config file or the scenario (if any) and applies the command-line overrides on
/// top; with a scenario, also returns it and the variant served.
fn load_config(args: &Args) -> anyhow::Result<(ServerConfig, Option<Served>)> {
    let mut served = None;
    let mut config = match (&args.config, &args.scenario) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the server config {}", path.display()))?;
            ServerConfig::from_toml_str(&text, &path.display().to_string())?
        }
        (None, Some(path)) => {
            let scenario = super::validate::load(path)?;
            let variant = super::validate::pick_variant(&scenario, args.variant.as_deref())?;
            let mut config = variant.config.clone();
            config.seed = Some(scenario.seed);
            let description = format!(
                "the server of scenario {} ({}), variant {}",
                scenario.name,
                path.display(),
                variant.label
            );
            served = Some(Served {
                variant: variant.clone(),
                scenario,
                description,
            });
            config
        }
        (None, None) => ServerConfig::default(),
    };
    if let Some(tier) = &args.tier {
        config.tier = Some(tier.clone());
    }
    if let Some(clock) = args.clock {
        config.clock = match clock {
            ClockArg::Real => ClockKind::Real,
            ClockArg::Manual => ClockKind::Manual,
        };
    }
    if args.no_latency {
        config.latency = model::LatencyConfig::instant();
    }
    if let Some(token) = &args.admin_token {
        config.admin_token = Some(token.clone());
    }
    if let Some(seed) = args.seed {
        config.seed = Some(seed);
    }
    config.validate("command line")?;
    Ok((config, served))
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let (config, served) = load_config(&args)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let banner = banner(&config)?;
    // A scenario's server grades its clients, beside the simulated models of its strategies
    // (simulated first: a scenario the simulator cannot run fails before anything listens).
    let graded = match &served {
        Some(served) => Some((
            Grader::new(),
            graded::simulated_models(&served.scenario, &served.variant)?,
        )),
        None => None,
    };
    let elapsed = runtime.block_on(async {
        // Listen for the signals before the address is printed: a client that reads it and
        // stops the server at once must find the handlers installed, however busy the cores.
        let shutdown = ShutdownSignal::install()?;
        let grader = graded.as_ref().map(|(grader, _)| grader.clone());
        let server = MockServer::bind_graded(config, args.addr, grader).await?;
        if let (Some(served), Some((grader, models))) = (&served, &graded) {
            let (scenario, variant) = (served.scenario.clone(), served.variant.clone());
            let (grader, models) = (grader.clone(), models.clone());
            server.state().set_report_source(move |elapsed| {
                let tested = by_hand(elapsed, &grader);
                let (report, grading) =
                    graded::graded_report(&scenario, &variant, &tested, &models);
                graded::report_document(&report, &grading)
            });
        }
        crate::outln!("ratelab mock OpenAI server listening on {}", server.url())?;
        crate::outln!("OPENAI_BASE_URL={}", server.base_url())?;
        if let Some(served) = &served {
            crate::outln!("serving {}", served.description)?;
        }
        for line in banner {
            crate::outln!("{line}")?;
        }
        if served.is_some() {
            crate::outln!(
                "grading every client; the report is written at shutdown (Ctrl-C), and GET /_admin/report answers it meanwhile (with --admin-token)"
            )?;
        }
        shutdown.recv().await;
        eprintln!("shutting down");
        let elapsed = server.state().clock().now();
        server.shutdown().await?;
        anyhow::Ok(elapsed)
    })?;
    let (Some(served), Some((grader, models))) = (served, graded) else {
        return Ok(Outcome::Success);
    };
    let (report, grading) = graded::graded_report(
        &served.scenario,
        &served.variant,
        &by_hand(elapsed, &grader),
        &models,
    );
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!("{}-serve", served.scenario.name))
    });
    let scenario_path = args.scenario.clone().unwrap_or_default();
    let passed = graded::conclude(
        &report,
        &grading,
        &graded::Output {
            dir: &out,
            junit: args.junit.as_deref(),
            scenario_path: &scenario_path,
        },
    )?;
    Ok(if passed {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// What a served scenario's report says was tested: clients started by hand, which ran for
/// `elapsed` of server time.
fn by_hand(elapsed: Duration, grader: &Grader) -> graded::Tested<'_> {
    graded::Tested {
        command: String::new(),
        instances: 0,
        elapsed,
        grader,
    }
}

/// What the server will enforce, printed after its address: the default tier with each model's
/// limits, the limiter's modelling choices, the latency, the timeline, the clock and whether the
/// admin API is on.
fn banner(config: &ServerConfig) -> anyhow::Result<Vec<String>> {
    let catalog = model::build_catalog(config)
        .map_err(|message| anyhow::anyhow!("the server config's [catalog]: {message}"))?;
    let limiter = &config.limiter;
    let tier = config.default_tier();
    let mut lines = vec![format!(
        "{} (catalog {}, {}); rejected requests: {}; token charge: {}; algorithm: {}{}",
        tier.map_or_else(|| "custom limits".to_owned(), |tier| format!("tier {tier}")),
        catalog.version,
        catalog.date,
        kebab(&limiter.rejected_requests),
        kebab(&limiter.token_charge),
        kebab(&limiter.algorithm),
        limiter
            .quantum_ms
            .map_or_else(String::new, |quantum| format!(
                ", enforced per {quantum} ms"
            )),
    )];
    let mut models = Vec::new();
    for (name, entry) in &catalog.models {
        if !entry.is_model() {
            continue;
        }
        let base = tier
            .and_then(|tier| catalog.limits(tier, name).ok())
            .map(quota::ModelLimits::limit_set);
        // `limits` lays the config's own figures for `model` over the tier's.
        let enforced = match (&config.model, &config.limits) {
            (Some(configured), Some(limits)) if configured == name => {
                Some(limits.overlay(base.as_ref(), limiter))
            }
            _ => base,
        };
        let Some(limits) = enforced else {
            continue;
        };
        let figures: Vec<String> = [
            ("RPM", limits.rpm),
            ("RPD", limits.rpd),
            ("TPM", limits.tpm),
            ("TPD", limits.tpd),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| format!("{value} {name}")))
        .collect();
        models.push(format!("  {name}: {}", figures.join(", ")));
    }
    lines.push(match tier {
        Some(tier) => format!("limits per model on {tier}:"),
        None => "limits per model:".to_owned(),
    });
    lines.extend(models);
    if !config.organizations.is_empty() {
        lines.push(format!(
            "organizations: {} (from the config; their own tiers and limits apply)",
            config.organizations.len()
        ));
    }
    let latency = &config.latency;
    lines.push(format!(
        "latency: first token after {} + {} per prompt token, then {} per token, jitter {}; refusals after {}",
        latency.ttft, latency.per_prompt_token, latency.per_output_token, latency.jitter, latency.reject
    ));
    if !config.timeline.is_empty() {
        lines.push("timeline, in server time from the start:".to_owned());
        lines.extend(
            config
                .timeline
                .iter()
                .map(|entry| format!("  {}", entry.describe())),
        );
    }
    if !config.compare_tiers.is_empty() || !config.compare_rejections.is_empty() {
        lines.push(
            "compare_tiers and compare_rejections are not served: the server plays the first variant (`tier`, `[limiter]`); `ratelab serve --scenario FILE --variant LABEL` serves another".to_owned(),
        );
    }
    lines.push(format!(
        "clock: {}; admin API: {}",
        match config.clock {
            ClockKind::Real => "real",
            ClockKind::Manual => "manual (time moves only on POST /_admin/clock/advance)",
        },
        if config.admin_token.is_some() {
            "on (docs/admin.md)"
        } else {
            "off (pass --admin-token to enable)"
        }
    ));
    Ok(lines)
}

/// A config enum as its files spell it.
fn kebab(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// SIGINT (Ctrl-C) and, on Unix, SIGTERM, listened for from the moment it is installed.
struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> anyhow::Result<ShutdownSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignal {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    /// Resolves on the first of the signals.
    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::banner;

    #[test]
    fn the_banner_states_the_tier_its_limits_the_rules_the_clock_and_the_admin_api() {
        let config = model::ServerConfig::from_toml_str(
            "tier = \"free\"\nclock = \"manual\"\n[limiter]\nrejected_requests = \"count-per-minute\"\nquantum_ms = 1000\n",
            "serve.toml",
        )
        .unwrap();
        let lines = banner(&config).unwrap();
        assert!(
            lines[0].starts_with("tier free (catalog ")
                && lines[0].contains("rejected requests: count-per-minute; token charge: guide")
                && lines[0].ends_with("algorithm: token-bucket, enforced per 1000 ms"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "limits per model on free:");
        assert!(
            lines.contains(&"  gpt-3.5-turbo: 3 RPM, 200 RPD, 40000 TPM".to_owned()),
            "{lines:?}"
        );
        // The long-context pool is not a model.
        assert!(!lines.iter().any(|line| line.contains("long-context")));
        assert!(
            lines.contains(
                &"latency: first token after 200ms + 0s per prompt token, then 10ms per token, jitter 0.2; refusals after 20ms"
                    .to_owned()
            ),
            "{lines:?}"
        );
        assert_eq!(
            lines.last().unwrap(),
            "clock: manual (time moves only on POST /_admin/clock/advance); admin API: off (pass --admin-token to enable)"
        );
    }

    #[test]
    fn the_banner_states_custom_limits_and_the_timeline() {
        let config = model::ServerConfig::from_toml_str(
            "model = \"gpt-4o-mini\"\nlimits = { rpm = 3, tpm = 1000 }\n[[timeline]]\nat = \"1m\"\ntier = \"tier-2\"\n",
            "serve.toml",
        )
        .unwrap();
        let lines = banner(&config).unwrap();
        assert!(lines[0].starts_with("custom limits (catalog "), "{lines:?}");
        assert_eq!(lines[1], "limits per model:");
        // Without a tier, only the model the config gives limits for is served.
        assert_eq!(lines[2], "  gpt-4o-mini: 3 RPM, 1000 TPM");
        assert!(lines[3].starts_with("latency: "), "{lines:?}");
        assert_eq!(lines[4], "timeline, in server time from the start:");
        assert_eq!(lines[5], "  1m: tier tier-2");
    }
}
