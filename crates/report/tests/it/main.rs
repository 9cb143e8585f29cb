//! Integration tests of the report crate: one binary, one module per feature.

mod accounting;
mod answers;
mod diff;
mod html;
mod layout;
mod render;
mod seeds;
mod simulated;
mod verdict;
