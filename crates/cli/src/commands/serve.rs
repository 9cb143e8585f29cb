//! `ratelab serve`: runs the mock OpenAI server until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ratelab_server::{ClockKind, MockServer, ServerConfig};

use super::Outcome;

/// Arguments of `ratelab serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Tier of organizations that do not set their own (free, tier-1 ... tier-5).
    #[arg(long)]
    pub tier: Option<String>,
    /// TOML config: organizations, projects, keys, limits, latency, faults, header switches.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `manual` freezes server time until `POST /_admin/clock/advance`.
    #[arg(long, value_enum)]
    pub clock: Option<ClockArg>,
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

/// Reads the config file (if any) and applies the command-line overrides on top.
fn load_config(args: &Args) -> anyhow::Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the server config {}", path.display()))?;
            ServerConfig::from_toml_str(&text, &path.display().to_string())?
        }
        None => ServerConfig::default(),
    };
    if let Some(tier) = &args.tier {
        config.tier = tier.clone();
    }
    if let Some(clock) = args.clock {
        config.clock = match clock {
            ClockArg::Real => ClockKind::Real,
            ClockArg::Manual => ClockKind::Manual,
        };
    }
    if let Some(token) = &args.admin_token {
        config.admin_token = Some(token.clone());
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.validate("command line")?;
    Ok(config)
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let config = load_config(&args)?;
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
    runtime.block_on(async {
        // Listen for the signals before the address is printed: a client that reads it and
        // stops the server at once must find the handlers installed, however busy the cores.
        let shutdown = ShutdownSignal::install()?;
        let server = MockServer::bind(config, args.addr).await?;
        crate::outln!("ratelab mock OpenAI server listening on {}", server.url())?;
        crate::outln!("OPENAI_BASE_URL={}", server.base_url())?;
        shutdown.recv().await;
        eprintln!("shutting down");
        server.shutdown().await?;
        Ok(Outcome::Success)
    })
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
