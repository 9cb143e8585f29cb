//! ratelab-quota integration tests: one binary, one module per feature.

mod algorithms;
mod catalog;
mod durations;
mod messages;
mod proptests;
mod samples;

use quota::{Algorithm, LimitSet, Limits, Scope, ScopedKey};

/// Compiles a limit set that tests build inline.
#[track_caller]
pub fn compile(set: LimitSet) -> Limits {
    set.compile().expect("the test's limit set is valid")
}

/// One organization-scope key for `limits`.
pub fn org<'a>(key: &'a u64, limits: &'a Limits) -> ScopedKey<'a, u64> {
    ScopedKey {
        scope: Scope::Organization,
        key,
        limits,
    }
}

/// Every algorithm, for tests that must hold for all of them.
pub const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::TokenBucket,
    Algorithm::FixedWindow,
    Algorithm::SlidingWindowLog,
    Algorithm::SlidingWindowCounter,
    Algorithm::Gcra,
];
