//! Configuration: what is injected into the container (env, cluster file, KubeDirector configmeta.json)
//! resolved into one [`model::ResolvedConfig`] with provenance, and the role definitions.
//!
//! No I/O beyond reading the input files; no `nix`, no `unsafe`.

pub mod advertise;
pub mod cluster_file;
pub mod configmeta;
pub mod env;
pub mod inputs;
pub mod limits;
pub mod model;
pub mod recovery;
pub mod role;
pub mod runtime;
pub mod scan;
pub mod sizing;
pub mod source;
pub mod trust;
pub mod units;
pub mod validate;

pub use model::{ResolvedConfig, Secret, Source, Sourced};
pub use role::{RoleDef, ServiceSpec};
