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
    use crate::config::runtime::{resolve, resolve_role, Inputs};

    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let (inputs, mut problems) = Inputs::gather_all(env);
    let no_defaults = std::collections::BTreeMap::new();
    // Resolve even when the role is missing (with a placeholder) so every problem is listed at once.
    let role = resolve_role(&inputs, role.as_deref())
        .map_err(|d| problems.extend(d))
        .ok();
    let placeholder =
        crate::config::Sourced::new("unknown".to_string(), crate::config::Source::Default);
    let config = resolve(
        &inputs,
        role.clone().unwrap_or(placeholder),
        "-",
        &no_defaults,
    )
    .map_err(|d| problems.extend(d))
    .ok();
    let resources = crate::resources::detect()
        .map_err(|d| problems.extend(d))
        .ok();
    let sizing = match (&config, &resources) {
        (Some(c), Some(r)) if role.is_some() => crate::resources::size(r, c)
            .map_err(|d| problems.extend(d))
            .ok(),
        _ => None,
    };
    match (config, resources, sizing) {
        (Some(config), Some(resources), Some(sizing)) if problems.is_empty() => {
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

/// Drops repeated diagnostics (the role and the rest are resolved from the same files).
fn without_duplicates(problems: crate::error::Diagnostics) -> crate::error::Diagnostics {
    let mut out = crate::error::Diagnostics::default();
    for d in problems.0 {
        if !out.0.contains(&d) {
            out.push(d);
        }
    }
    out
}
