//! Config, rendering and roles without Docker or Spark: resolving injected config, errors, run
//! options, rendered files, role checks, cgroup sizing, the access settings, closed pipes.
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

mod access_settings;
mod cli_closed_pipe;
mod errors;
mod hostile_files;
mod render_golden;
mod render_injection;
mod render_injection_inputs;
mod render_paths;
mod render_services;
mod render_write;
mod resolve;
mod resources_cgroups;
mod roles_check;
mod roles_check_users;
mod roles_new_role;
mod run_options;
