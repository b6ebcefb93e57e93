//! Platforms without Docker: pass-through mode, the Kubernetes manifests and pod security, the
//! KubeDirector hooks.
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

mod dropin_passthrough;
mod k8s_manifests;
mod k8s_pod_security;
mod kubedirector_hooks;
