//! Integration tests of the results crate: one binary, one module per feature.

mod analysis;
mod storm;
mod summary;

use std::path::Path;

/// Serves referenced files from the repository, so tests run from any directory.
pub fn read_from_disk(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}
