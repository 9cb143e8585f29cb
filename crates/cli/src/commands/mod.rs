//! One module per `ratelab` subcommand.

pub mod check;
pub mod diff;
pub mod graded;
pub mod plan;
pub mod report;
pub mod run;
pub mod schema;
pub mod serve;
pub mod strategies;
pub mod test;
pub mod tiers;
pub mod validate;

/// What a command concluded, when it ran to the end without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done and every check passed.
    Success,
    /// The command ran, but its verdict is negative (exit code 1).
    Failed,
    /// `ratelab test`: the client met `[expect]`, but the program under test exited non-zero
    /// (exit code 3; the command printed which code).
    CommandFailed,
}
