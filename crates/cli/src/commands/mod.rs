//! One module per `ratelab` subcommand.

pub mod serve;
pub mod tiers;

/// What a command concluded, when it ran to the end without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done and every check passed.
    Success,
    /// The command ran, but its verdict is negative (exit code 1).
    #[allow(
        dead_code,
        reason = "constructed by the verdict commands (run, compare) that come later"
    )]
    Failed,
}
