//! tini mode (drop-in tini): exit codes, signals, reaping, the child's state, the command line.
//!
//! One test binary for the area; each module is one former test file, and the helpers live once in
//! tests/common (and tests/docker_support, tests/supervisor_support).

// Test code: a failed expectation panics (the crate's lints deny these outside tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod child_state;
mod cli;
mod exit_codes;
mod reaping;
mod rt_signals;
mod signals;
