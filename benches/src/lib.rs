//! Holds no code: the benchmarks live in `benches/`, one criterion harness per pure crate.
