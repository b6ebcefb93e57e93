//! Privileges: the spawner's privilege drop, capabilities, and what a service cannot escape.
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
mod support;

mod caps;
mod escape;
mod spawn;
