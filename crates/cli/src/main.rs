//! The `ratelab` binary: parses the command line and dispatches to one module per command.
//!
//! Each command lives in `commands/<name>.rs` and is thin glue over the library crates; this
//! file only parses arguments, runs the command and maps its outcome to an exit code.

// Doc comments on clap types are the `--help` text, written for a terminal rather than for
// rustdoc: `[expect]` names a TOML table, not a link, and `<scenario-name>` is a placeholder.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod commands;
mod runner;
mod stdout;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ratelab: a load-simulation and resilience test harness for rate-limited LLM APIs.
///
/// It emulates OpenAI's tiered RPM/TPM/RPD/TPD limits exactly as OpenAI signals them, replays
/// traffic scenarios in virtual time, and compares retry strategies on identical workloads.
/// Shown after the command list of `ratelab --help`: the common first steps.
const EXAMPLES: &str = "\
Examples:
  # Compare a scenario's strategies through a 3x spike; writes reports/traffic-spike/
  ratelab run scenarios/traffic-spike.toml
  # The same workload with strategies of your choice (see `ratelab strategies`)
  ratelab run scenarios/traffic-spike.toml --strategy openai-python@2.52 --strategy full-jitter
  # Which tier the traffic needs as it grows 1x to 5x, and what it costs; writes reports/capacity-plan-plan/
  ratelab plan scenarios/capacity-plan.toml
  # Gate CI on each scenario's [expect] table
  ratelab check scenarios/*.toml --junit junit.xml
  # A mock OpenAI server on a free port; point OPENAI_BASE_URL at the address it prints
  ratelab serve --addr 127.0.0.1:0
  # Grade your own client against a scenario's server (exit 0 pass, 1 fail, 3 client crashed)
  ratelab test examples/python-openai/scenario.toml -- python3 examples/python-openai/app.py";

#[derive(Debug, Parser)]
#[command(
    name = "ratelab",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the tier catalog: RPM, RPD, TPM, TPD and batch queue limits per tier and model, and
    /// each model's context window and output cap.
    Tiers(commands::tiers::Args),
    /// Simulate a scenario in virtual time and compare its strategies.
    Run(commands::run::Args),
    /// Check scenario files without running them.
    Validate(commands::validate::Args),
    /// Print the JSON Schema of scenario files (`--server`: of a serve config), for editors.
    Schema(commands::schema::Args),
    /// List the retry strategies: parameters, defaults and the source of each formula.
    Strategies(commands::strategies::Args),
    /// Which tier the scenario's traffic needs as it grows, where each tier breaks, and what a
    /// month costs: sweeps tiers x growth factors x strategies x seeds.
    Plan(commands::plan::Args),
    /// Run scenarios and check their [expect] thresholds: exit 0 if all pass, 1 if any fails
    /// (only strategies named in [expect] gate count, when it names some).
    Check(commands::check::Args),
    /// Compare two runs (directories or report.json files), e.g. a baseline and this change.
    Diff(commands::diff::Args),
    /// Re-render report.json, summary.md, index.html and the SVG charts of a run directory.
    Report(commands::report::Args),
    /// Run the mock OpenAI server with tiered limits, faults and time control.
    Serve(commands::serve::Args),
    /// Play a scenario's server against your own client program and grade it: exit 0 pass, 1
    /// missed [expect], 2 bad input, 3 met [expect] but COMMAND exited non-zero.
    Test(commands::test::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Tiers(args) => commands::tiers::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Strategies(args) => commands::strategies::run(args),
        Command::Plan(args) => commands::plan::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Test(args) => commands::test::run(args),
    };
    exit_code(outcome)
}

/// The one place that turns a command's outcome into an exit code.
///
/// 0: success. 1: the command ran and its verdict is negative (e.g. an SLO threshold failed).
/// 2: usage errors, bad input files, or any other error, printed with its full cause chain.
/// 3: `ratelab test` only: the client met `[expect]` but the program under test failed.
fn exit_code(outcome: anyhow::Result<commands::Outcome>) -> ExitCode {
    match outcome {
        Ok(commands::Outcome::Success) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Failed) => ExitCode::from(1),
        Ok(commands::Outcome::CommandFailed) => ExitCode::from(3),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
