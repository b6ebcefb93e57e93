//! Role mode, start to finish: resolve config, detect resources, render files, supervise, shut down.

use std::ffi::OsString;
use std::path::Path;

use crate::error::Fatal;

/// `sparkvisor run`: supervise the role's services (and CMD, when given) as PID 1.
pub fn run(_role: Option<String>, _command: Vec<OsString>) -> Result<i32, Fatal> {
    Err(Fatal::Internal("run is not implemented yet".into()))
}

/// `sparkvisor render --out DIR`: render the role's files under DIR, start nothing.
pub fn render(_role: Option<String>, _out: &Path) -> Result<i32, Fatal> {
    Err(Fatal::Internal("render is not implemented yet".into()))
}

/// `sparkvisor check`: validate roles, templates and the injected config.
pub fn check(_role: Option<String>) -> Result<i32, Fatal> {
    Err(Fatal::Internal("check is not implemented yet".into()))
}

/// `sparkvisor inspect`: resolved config with sources, resources and sizing.
pub fn inspect(_role: Option<String>, _json: bool) -> Result<i32, Fatal> {
    Err(Fatal::Internal("inspect is not implemented yet".into()))
}
