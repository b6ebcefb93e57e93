//! The start-up layer: role mode from the injected config to a running, supervised node, and the
//! offline commands (`render`, `check`, `inspect`) that share its pipeline.
//!
//! [`app`] runs role mode start to finish; [`node`] is the one pipeline (injected config, role,
//! resources, sizing, each service's plan); the rest are its steps.

pub mod access;
pub mod app;
pub mod commands;
pub mod conf_merge;
pub mod datadirs;
pub mod initscripts;
pub mod inspect;
pub mod node;
pub mod run_options;
pub mod spark_launch;
pub mod writable;
