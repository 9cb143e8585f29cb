//! Integration tests of the `ratelab` binary: one binary, one module per command.

mod scenarios;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `ratelab` with `args` from the repository root.
pub fn ratelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(args)
        .current_dir(repository_root())
        .output()
        .expect("the ratelab binary runs")
}

pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory under the system's temporary directory, unique per test and process.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ratelab-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the scratch directory is created");
    dir
}
