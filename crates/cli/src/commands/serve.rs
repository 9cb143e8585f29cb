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
        let server = MockServer::bind(config, args.addr).await?;
        crate::outln!("ratelab mock OpenAI server listening on {}", server.url())?;
        crate::outln!("OPENAI_BASE_URL={}", server.base_url())?;
        shutdown_signal().await?;
        eprintln!("shutting down");
        server.shutdown().await?;
        Ok(Outcome::Success)
    })
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}
