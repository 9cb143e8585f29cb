//! Integration tests of the `ratelab` binary: one binary, one module per command.

mod check;
mod client_test;
mod conformance;
mod plan;
mod report;
mod scenarios;
mod seeds;
mod serve;
mod stdout;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fixture scenario in `tests/it/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// Runs `ratelab` with `args` and extra environment variables, never inheriting a GitHub step
/// summary (a test must not write into CI's).
pub fn ratelab_with_env(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ratelab"));
    command
        .args(args)
        .current_dir(repository_root())
        .env_remove("GITHUB_STEP_SUMMARY");
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("the ratelab binary runs")
}

/// The exit code, with the output in the panic message when it is not the expected one.
#[track_caller]
pub fn assert_exit(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `ratelab` with `args` from the repository root.
pub fn ratelab(args: &[&str]) -> Output {
    ratelab_with_env(args, &[])
}

pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory under the system's temporary directory, unique per test and process,
/// removed when the test ends (the value is dropped), so runs leave nothing behind.
pub fn scratch_dir(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("ratelab-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the scratch directory is created");
    Scratch(dir)
}

/// A test's scratch directory ([`scratch_dir`]): a path while the test runs, removed with
/// everything in it when dropped.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
