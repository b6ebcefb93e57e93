//! sparkvisor: PID 1, config renderer and service supervisor for Apache Spark containers.
//!
//! The binary (`src/main.rs`) only dispatches the command line; everything else lives here so that
//! tests, benchmarks and fuzz targets can reach the pure parts. The modules are grouped by layer,
//! and imports flow down only (docs/architecture.md draws it; `tests/arch` checks it):
//! - [`cli`]: argv to one mode to an exit code;
//! - [`startup`] and [`platform`]: role mode start to finish and the offline commands, and what
//!   each platform (tini, the official and bitnami images, Kubernetes, KubeDirector) expects;
//! - [`status`]: the operator socket (server, wire types, client);
//! - [`supervision`]: the one owner of service state, the pure state machine, logs, probes;
//! - [`render`]: templates to files, escaped per format, written atomically;
//! - [`resources`]: cgroup limits and the Spark sizing policy;
//! - [`config`]: injected runtime config and role definitions (parsing, validation, provenance);
//! - [`sys`]: every `unsafe` block and system call (`nix`, `caps`), behind a narrow seam, and the
//!   readers of the kernel's and the host's files;
//! - [`error`], [`output`], [`signal_names`] and [`process_end`]: the shared vocabulary every layer
//!   may use (exit codes and fatal errors, panic-free printing, signal names, how a process ended).

// Writes to stdout/stderr go through `output` (a closed pipe must never panic PID 1 or the CLI).
#![deny(clippy::print_stdout, clippy::print_stderr)]
// Every `unsafe` block lives in `sys` (DESIGN.md §3): the compiler refuses one anywhere else.
#![deny(unsafe_code)]

pub mod cli;
pub mod config;
pub mod error;
pub mod output;
pub mod platform;
pub mod process_end;
pub mod render;
pub mod resources;
pub mod signal_names;
pub mod startup;
pub mod status;
pub mod supervision;
#[allow(unsafe_code)]
pub mod sys;
