//! ratelab-server integration tests: the router through `oneshot`, and real sockets.

mod admin;
mod compat;
mod connections;
mod endpoints;
mod errors;
mod faults;
mod fuzz;
mod grading;
mod hardening;
mod key_metrics;
mod limits;
mod logs;
mod model_limits;
mod socket;
mod streaming;
mod support;
mod tokens;
