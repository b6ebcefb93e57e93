//! Every Docker test: the image, compose clusters, HA, TLS, chaos, the drop-in images, Kubernetes
//! pods, KubeDirector, access add-ons, Swarm on one host and on three, the prerequisite scripts.
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

mod access_support;
#[path = "../common/mod.rs"]
mod common;
#[path = "../docker_support/mod.rs"]
mod docker_support;
mod imagecompat_support;
#[path = "../multinode/mod.rs"]
mod multinode;

mod access_ldap;
mod access_ssh;
mod chaos;
mod cluster;
mod conf_files;
mod dropin_bitnami;
mod dropin_k8s_pods;
mod dropin_roles_nonroot;
mod dropin_smoke;
mod dropin_writable;
mod ha;
mod kubedirector_protocol;
mod launch;
mod multihost;
mod scripts_prereqs;
mod services;
mod swarm_stack;
mod tls;
