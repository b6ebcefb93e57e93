//! The offline role-mode commands: `render`, `check` and `inspect` resolve this node like `run`
//! does ([`crate::startup::node`]) and report; they start nothing.

use std::path::Path;

use crate::error::{Diagnostic, Diagnostics, Fatal};
use crate::startup::node::{process_env, resolve_node, resolve_node_with};

/// `sparkvisor render --out DIR`: render the role's files under DIR, start nothing.
pub fn render(role: Option<String>, out: &Path) -> Result<i32, Fatal> {
    let env = process_env();
    let node = resolve_node(role.as_deref(), &env).map_err(Fatal::Config)?;
    for problem in &node.access {
        crate::errln!("warning: access: {problem}");
    }
    for warning in node.warnings() {
        crate::errln!("warning: {warning}");
    }
    let rendered = node
        .render(&crate::config::role::templates_dir(&env))
        .map_err(Fatal::Config)?;
    let files = rendered.files;
    let report = crate::render::write_files(&files, Some(out))?;
    for file in &files {
        let path = crate::render::write::destination(&file.path, Some(out));
        if report.written.contains(&path) {
            crate::outln!(
                "rendered {} ({:04o}{}) from {}",
                path.display(),
                file.mode,
                if file.secret { ", secret" } else { "" },
                file.template
            );
        }
    }
    for path in &report.left_alone {
        crate::outln!("left alone {} (a mount point)", path.display());
    }
    for file in &rendered.conf.report.files {
        if let (crate::startup::conf_merge::Outcome::Yours, Some(user), Some(template)) =
            (file.outcome, &file.user_file, &file.template)
        {
            crate::outln!(
                "left alone {} (your file {}: {template} is not written)",
                file.path.display(),
                user.display()
            );
        }
        for note in &file.notes {
            crate::errln!("note: {}: {note}", file.path.display());
        }
    }
    Ok(crate::error::exit_code::OK)
}

/// `sparkvisor check`: validate roles, templates and the injected config.
pub fn check(role: Option<String>) -> Result<i32, Fatal> {
    let env = process_env();
    let roles_dir = crate::config::role::roles_dir(&env);
    let templates_dir = crate::config::role::templates_dir(&env);
    // Roles overlap (an included role's files and templates are checked with every role that
    // includes it, and the node's role again with its real settings), so the same problem can be
    // found more than once: `extend_unique` lists it once. The injected config itself is resolved
    // in one pass and reports each of its problems once.
    let mut diags = Diagnostics::default();
    if let Err(stale) = crate::platform::image_stamp::check(Path::new("/")) {
        diags.extend(stale);
    }
    let names = match &role {
        Some(name) => vec![name.clone()],
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
    let mut failed = Vec::new();
    for name in &names {
        match crate::config::role::load_role(&roles_dir, name) {
            Ok(r) => roles.push(r),
            Err(d) => {
                failed.push(name.clone());
                diags.extend_unique(d);
            }
        }
    }
    match crate::render::Templates::load(&templates_dir) {
        Ok(mut templates) => {
            for r in &roles {
                diags.extend_unique(crate::render::check_role(r, &mut templates));
            }
        }
        Err(d) => diags.extend_unique(d),
    }
    // The node's role as loaded above: its problems are listed already.
    let mut load = |dir: &Path, name: &str| match roles.iter().find(|r| r.name == name) {
        Some(loaded) => Ok(loaded.clone()),
        None if failed.iter().any(|f| f == name) => Err(Diagnostics::default()),
        None => crate::config::role::load_role(dir, name),
    };
    // The injected config (env, cluster file, configmeta.json), resolved as `run` would. No role
    // anywhere is not a problem for `check` (an image build runs it with no role and no config);
    // a bad one (e.g. SPARK_MODE=Master!) is.
    match resolve_node_with(role.as_deref(), &env, &mut load) {
        // The node's services as `run` would start them: users, umasks and signals on this system.
        Ok(node) => {
            // Access problems never stop a node (docs/access.md): warnings, not errors.
            for problem in &node.access {
                crate::errln!("warning: access: {problem}");
            }
            for warning in node.warnings() {
                crate::errln!("warning: {warning}");
            }
            match node.render(&templates_dir) {
                Ok(crate::startup::node::Rendered {
                    files, services, ..
                }) => {
                    // Where `run` would write, checked by the code `run` uses (nothing written).
                    if let Err(e) = crate::render::write::plan(&files, None) {
                        diags.push(Diagnostic::new("render", e.to_string()));
                    }
                    let users = crate::sys::users::UserDb::system();
                    if let Err(problems) = node.service_defs(services, &users) {
                        diags.extend(problems);
                    }
                }
                // The same templates as `check_role`'s, with the node's settings.
                Err(problems) => diags.extend_unique(problems),
            }
        }
        Err(problems) => diags.extend(Diagnostics(
            problems
                .0
                .into_iter()
                .filter(|p| p.message != crate::config::runtime::NO_ROLE)
                .collect(),
        )),
    }
    if !diags.is_empty() {
        return Err(Fatal::Config(diags));
    }
    crate::outln!(
        "ok: {} role(s) in {} ({}), templates in {}",
        roles.len(),
        roles_dir.display(),
        names.join(", "),
        templates_dir.display()
    );
    Ok(crate::error::exit_code::OK)
}

/// `sparkvisor inspect`: resolved config (role defaults included) with sources, resources and
/// sizing.
pub fn inspect(role: Option<String>, json: bool) -> Result<i32, Fatal> {
    let env = process_env();
    let node = resolve_node(role.as_deref(), &env).map_err(Fatal::Config)?;
    // The conf files as `run` would write them (nothing is written): whose each value is. A
    // problem there (a file that cannot be merged) is shown, as `check` would report it.
    let conf = node
        .render(&crate::config::role::templates_dir(&env))
        .map(|r| r.conf.report)
        .map_err(|problems| problems.to_string());
    let report =
        crate::startup::inspect::inspect_report(node.config, node.resources, node.sizing, conf);
    if json {
        crate::outln!("{}", report.to_json());
    } else {
        crate::out!("{report}");
    }
    Ok(crate::error::exit_code::OK)
}
