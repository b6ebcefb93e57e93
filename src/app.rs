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
///
/// Role defaults are not loaded here yet: `resolve` gets an empty map and role file `-`.
pub fn inspect(role: Option<String>, json: bool) -> Result<i32, Fatal> {
    use crate::config::runtime::{resolve_from_env, without_duplicates};
    use crate::error::Diagnostics;

    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut problems = Diagnostics::default();
    let config = resolve_from_env(env, role.as_deref(), |_| {
        Ok(("-".to_string(), std::collections::BTreeMap::new()))
    })
    .map_err(|d| problems.extend(d))
    .ok();
    let resources = crate::resources::detect()
        .map_err(|d| problems.extend(d))
        .ok();
    let sizing = match (&config, &resources) {
        (Some(c), Some(r)) => crate::resources::size(r, c)
            .map_err(|d| problems.extend(d))
            .ok(),
        _ => None,
    };
    match (config, resources, sizing) {
        (Some(config), Some(resources), Some(sizing)) => {
            let report = crate::inspect::inspect_report(config, resources, sizing);
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            Ok(crate::error::exit_code::OK)
        }
        _ => Err(Fatal::Config(without_duplicates(problems))),
    }
}
