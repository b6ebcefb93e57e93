//! Role mode, start to finish: resolve config, detect resources, render files, supervise, shut down.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use crate::error::{Diagnostic, Diagnostics, Fatal};

/// `sparkvisor run`: supervise the role's services (and CMD, when given) as PID 1.
pub fn run(_role: Option<String>, _command: Vec<OsString>) -> Result<i32, Fatal> {
    Err(Fatal::Internal("run is not implemented yet".into()))
}

/// `sparkvisor render --out DIR`: render the role's files under DIR, start nothing.
pub fn render(role: Option<String>, out: &Path) -> Result<i32, Fatal> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let templates_dir = crate::config::role::templates_dir(&env);
    let node = resolve_node(role.as_deref(), &env).map_err(Fatal::Config)?;
    let context = crate::render::build_context(&node.config, &node.resources, Some(&node.sizing));
    let mut diags = Diagnostics::default();
    let files = crate::render::render_role(&node.role, &context, &templates_dir);
    let services = crate::render::expand_services(&node.role, &context);
    if let Err(d) = &files {
        diags.extend(d.clone());
    }
    if let Err(d) = services {
        diags.extend(d);
    }
    let files = match files {
        Ok(files) if diags.is_empty() => files,
        _ => return Err(Fatal::Config(diags)),
    };
    let report = crate::render::write_files(&files, Some(out)).map_err(|e| match e {
        crate::render::RenderError::Io { path, source } => Fatal::Sys {
            context: format!("writing {}", path.display()),
            source,
        },
        other => Fatal::Config(Diagnostic::new("render", other.to_string()).into()),
    })?;
    for file in &files {
        let path = crate::render::write::destination(&file.path, Some(out));
        if report.written.contains(&path) {
            println!(
                "rendered {} ({:04o}{}) from {}",
                path.display(),
                file.mode,
                if file.secret { ", secret" } else { "" },
                file.template
            );
        }
    }
    for path in &report.left_alone {
        println!("left alone {} (a mount point)", path.display());
    }
    Ok(crate::error::exit_code::OK)
}

/// What `render` (and `run`) need about this node, every problem collected before failing.
struct Node {
    role: crate::config::role::LoadedRole,
    config: crate::config::ResolvedConfig,
    resources: crate::resources::Resources,
    sizing: crate::resources::Sizing,
}

/// Injected config (env, cluster file, configmeta) → role → role definition (its `defaults:` are
/// the lowest settings layer) → resolved config; cgroups → resources → sizing.
fn resolve_node(
    cli_role: Option<&str>,
    env: &BTreeMap<String, String>,
) -> Result<Node, Diagnostics> {
    use crate::config::runtime::{resolve, resolve_role, Inputs};
    let (inputs, mut problems) = Inputs::gather_all(env.clone());
    let role_name = resolve_role(&inputs, cli_role)
        .map_err(|d| problems.extend(d))
        .ok();
    let roles_dir = crate::config::role::roles_dir(env);
    let loaded = role_name.as_ref().and_then(|name| {
        crate::config::role::load_role(&roles_dir, &name.value)
            .map_err(|d| problems.extend(d))
            .ok()
    });
    let config = match (&role_name, &loaded) {
        (Some(name), Some(loaded)) => resolve(
            &inputs,
            name.clone(),
            &loaded.file.display().to_string(),
            &loaded.def.defaults,
        )
        .map_err(|d| problems.extend(d))
        .ok(),
        _ => None,
    };
    let resources = crate::resources::detect()
        .map_err(|d| problems.extend(d))
        .ok();
    let sizing = match (&config, &resources) {
        (Some(c), Some(r)) => crate::resources::size(r, c)
            .map_err(|d| problems.extend(d))
            .ok(),
        _ => None,
    };
    match (loaded, config, resources, sizing) {
        (Some(role), Some(config), Some(resources), Some(sizing)) if problems.is_empty() => {
            Ok(Node {
                role,
                config,
                resources,
                sizing,
            })
        }
        _ => {
            let mut unique = Diagnostics::default();
            add_unique(&mut unique, problems);
            Err(unique)
        }
    }
}

/// `sparkvisor check`: validate roles, templates and the injected config.
pub fn check(role: Option<String>) -> Result<i32, Fatal> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let role_arg = role.clone();
    let roles_dir = crate::config::role::roles_dir(&env);
    let templates_dir = crate::config::role::templates_dir(&env);
    let mut diags = Diagnostics::default();
    let names = match role {
        Some(name) => vec![name],
        None => crate::config::role::list_role_names(&roles_dir).map_err(|e| {
            Fatal::Config(
                Diagnostic::new(
                    roles_dir.display().to_string(),
                    format!("cannot read the roles directory: {e}"),
                )
                .into(),
            )
        })?,
    };
    let mut roles = Vec::new();
    for name in &names {
        match crate::config::role::load_role(&roles_dir, name) {
            Ok(r) => roles.push(r),
            Err(d) => add_unique(&mut diags, d),
        }
    }
    match crate::render::Templates::load(&templates_dir) {
        Ok(mut templates) => {
            for r in &roles {
                add_unique(&mut diags, crate::render::check_role(r, &mut templates));
            }
        }
        Err(d) => add_unique(&mut diags, d),
    }
    // The injected config (env, cluster file, configmeta.json), when this node has a role: an
    // image build runs `check` with no role and no config, which is fine.
    let (inputs, problems) = crate::config::runtime::Inputs::gather_all(env.clone());
    add_unique(&mut diags, problems);
    match crate::config::runtime::resolve_role(&inputs, role_arg.as_deref()) {
        Ok(node_role) => {
            if let Some(loaded) = roles.iter().find(|r| r.name == node_role.value) {
                if let Err(d) = crate::config::runtime::resolve(
                    &inputs,
                    node_role.clone(),
                    &loaded.file.display().to_string(),
                    &loaded.def.defaults,
                ) {
                    add_unique(&mut diags, d);
                }
            }
        }
        // No role anywhere is not a problem for `check`; a bad one (e.g. SPARK_MODE=Master!) is.
        Err(d) if d.0.iter().all(|p| p.message.starts_with("no role")) => {}
        Err(d) => add_unique(&mut diags, d),
    }
    if !diags.is_empty() {
        return Err(Fatal::Config(diags));
    }
    println!(
        "ok: {} role(s) in {} ({}), templates in {}",
        roles.len(),
        roles_dir.display(),
        names.join(", "),
        templates_dir.display()
    );
    Ok(crate::error::exit_code::OK)
}

/// Adds diagnostics not already listed (an included role's problems appear once).
fn add_unique(all: &mut Diagnostics, more: Diagnostics) {
    for d in more.0 {
        if !all.0.contains(&d) {
            all.push(d);
        }
    }
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
