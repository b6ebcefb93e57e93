//! Architecture checks on the source tree: imports flow down the layers, no module cycles.
//!
//! One test binary for the area; each module is one former test file.

// Test code: a failed expectation panics (the crate's lints deny these outside tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod module_cycles;
