//! The agent supervising real processes: start order, stop, reload, signals, faults, OOM kills.
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
#[path = "../supervisor_support/mod.rs"]
mod supervisor_support;

mod conf_reload;
mod init_scripts;
mod oom_kills;
mod reload_stall;
mod rt_signals;
mod run;
mod startup_stop;
mod template_bombs;
mod thread_faults;
