//! Integration tests of the report crate: one binary, one module per feature.

mod render;
mod verdict;
