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
    let roles_dir = crate::config::role::roles_dir(&env);
    let templates_dir = crate::config::role::templates_dir(&env);
    let name = role
        .or_else(|| env.get("SPARKVISOR_ROLE").cloned())
        .or_else(|| env.get("SPARK_MODE").cloned())
        .unwrap_or_else(|| "master".to_string());
    let loaded = crate::config::role::load_role(&roles_dir, &name)?;
    let (config, resources, sizing) = provisional_inputs(&loaded, &env);
    let context = crate::render::build_context(&config, &resources, sizing.as_ref());
    let mut diags = Diagnostics::default();
    let files = crate::render::render_role(&loaded, &context, &templates_dir);
    let services = crate::render::expand_services(&loaded, &context);
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
    for (file, path) in files.iter().zip(&report.written) {
        println!(
            "rendered {} ({:04o}{}) from {}",
            path.display(),
            file.mode,
            if file.secret { ", secret" } else { "" },
            file.template
        );
    }
    for path in &report.left_alone {
        println!("left alone {} (a mount point)", path.display());
    }
    Ok(crate::error::exit_code::OK)
}

/// PROVISIONAL (until the `config` branch's resolver is wired in): a ResolvedConfig from the
/// environment with the documented defaults, and resources/sizing from `resources` or, while
/// those are stubs, from the CPU count alone. The lead replaces this function.
fn provisional_inputs(
    role: &crate::config::role::LoadedRole,
    env: &BTreeMap<String, String>,
) -> (
    crate::config::ResolvedConfig,
    crate::resources::Resources,
    Option<crate::resources::Sizing>,
) {
    use crate::config::{Source, Sourced};
    let mut config = crate::render::context::sample_config(role);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    let system = |v: &str| {
        Sourced::new(
            v.to_string(),
            Source::System {
                from: "hostname".into(),
            },
        )
    };
    config.node.hostname = system(&hostname);
    config.node.fqdn = system(&hostname);
    config.peers.clear();
    config.spark_conf.clear();
    config.secrets.clear();
    let from_env = [
        ("spark.home", "SPARK_HOME"),
        ("spark.conf_dir", "SPARK_CONF_DIR"),
        ("spark.master_host", "SPARK_MASTER_HOST"),
        ("spark.master_url", "SPARK_MASTER_URL"),
        ("spark.public_dns", "SPARK_PUBLIC_DNS"),
        ("spark.local_hostname", "SPARK_LOCAL_HOSTNAME"),
    ];
    for key in [
        "spark.master_host",
        "spark.public_dns",
        "spark.local_hostname",
    ] {
        config.settings.insert(key.into(), system(&hostname));
    }
    config.settings.insert(
        "spark.master_url".into(),
        system(&format!("spark://{hostname}:7077")),
    );
    for (key, var) in from_env {
        if let Some(v) = env.get(var) {
            config.settings.insert(
                key.into(),
                Sourced::new(v.clone(), Source::Env { name: var.into() }),
            );
        }
    }
    if !env.contains_key("SPARK_CONF_DIR") {
        if let Some(home) = env.get("SPARK_HOME") {
            config.settings.insert(
                "spark.conf_dir".into(),
                Sourced::new(
                    format!("{home}/conf"),
                    Source::Derived {
                        from: "SPARK_HOME".into(),
                    },
                ),
            );
        }
    }
    let resources =
        crate::resources::detect().unwrap_or_else(|_| crate::render::context::sample_resources());
    let sizing = crate::resources::size(&resources, &config)
        .ok()
        .or_else(|| Some(crate::render::context::sample_sizing()));
    (config, resources, sizing)
}

/// `sparkvisor check`: validate roles, templates and the injected config.
pub fn check(role: Option<String>) -> Result<i32, Fatal> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
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
    // Seam for the `config` branch: validate the injected config (env, cluster file, configmeta)
    // here and add its diagnostics, so `check` reports everything in one pass.
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
pub fn inspect(_role: Option<String>, _json: bool) -> Result<i32, Fatal> {
    Err(Fatal::Internal("inspect is not implemented yet".into()))
}
