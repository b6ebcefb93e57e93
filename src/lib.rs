//! sparkvisor: PID 1, config renderer and service supervisor for Apache Spark containers.
//!
//! The binary (`src/main.rs`) only dispatches the command line; everything else lives here so that
//! tests, benchmarks and fuzz targets can reach the pure parts. Layout (DESIGN.md §3):
//! - [`access`]: ssh and LDAP access into a node (add-on roles asked for by settings);
//! - [`config`]: injected runtime config and role definitions (parsing, validation, provenance);
//! - [`resources`]: cgroup limits and the Spark sizing policy;
//! - [`render`]: templates to files, escaped per format, written atomically;
//! - [`conf_merge`]: the rendered Spark conf files merged with the user's own (kept, and winning);
//! - [`service`]: the pure service state machine and backoff;
//! - [`supervisor`]: the one owner of service state;
//! - [`status`]: the operator socket (server, wire types, client);
//! - [`tini`]: the tini-compatible single-child mode;
//! - [`tls`]: the probes' TLS client identity (Spark's keystore and truststore, JKS or PKCS#12);
//! - [`users`]: users and groups from /etc/passwd and /etc/group (pure parsing);
//! - [`sys`]: every `unsafe` block and system call (`nix`, `caps`), behind a narrow seam;
//! - [`signal_names`] and [`process_end`]: pure name tables and values shared by config, service and
//!   status without depending on `sys`.

// Writes to stdout/stderr go through `output` (a closed pipe must never panic PID 1 or the CLI).
#![deny(clippy::print_stdout, clippy::print_stderr)]
// Every `unsafe` block lives in `sys` (DESIGN.md §3): the compiler refuses one anywhere else.
#![deny(unsafe_code)]

pub mod access;
pub mod app;
pub mod cli;
pub mod commands;
pub mod conf_merge;
pub mod config;
pub mod datadirs;
pub mod decommission;
pub mod dropin;
pub mod error;
pub mod image_stamp;
pub mod initscripts;
pub mod inspect;
pub mod k8s_pod;
pub mod kubedirector;
pub mod logs;
pub mod mountinfo;
pub mod node;
pub mod output;
pub mod probe;
pub mod process_end;
pub mod procfs;
pub mod remote_wait;
pub mod render;
pub mod resources;
pub mod run_options;
pub mod service;
pub mod signal_names;
pub mod spark_launch;
pub mod status;
pub mod supervisor;
#[allow(unsafe_code)]
pub mod sys;
pub mod tini;
pub mod tls;
pub mod users;
pub mod writable;
