//! The one node-resolution pipeline behind `run` (and its reloads), `render`, `check` and
//! `inspect`: injected config → role → role definition (its `defaults:` are the lowest settings
//! layer) → resolved config; cgroups → resources → sizing; then, for the commands that need them,
//! the role's files rendered in memory and its services expanded.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::role::{LoadedRole, ServiceSpec};
use crate::config::{ResolvedConfig, Source, Sourced};
use crate::error::{Diagnostic, Diagnostics};
use crate::render::RenderedFile;
use crate::resources::{Resources, Sizing};

/// What every role-mode command needs to know about this node.
pub struct Node {
    /// The role definition, includes merged.
    pub role: LoadedRole,
    /// The resolved settings, each with its source.
    pub config: ResolvedConfig,
    /// The detected CPU and memory limits.
    pub resources: Resources,
    /// The Spark sizing derived from `resources` and `config`.
    pub sizing: Sizing,
    /// Problems with the access settings (ssh keys, LDAP): reported, never fatal (`access`).
    pub access: Vec<Diagnostic>,
    /// Where the user's conf files are and where Spark reads its conf (`conf_merge::place`).
    pub conf: crate::startup::conf_merge::Placement,
}

/// The role's files and services as `run` would write and start them.
pub struct Rendered {
    /// The files to write: rendered, and merged with the user's conf files.
    pub files: Vec<RenderedFile>,
    /// The services, every `{{ }}` expanded.
    pub services: BTreeMap<String, ServiceSpec>,
    /// The rest of the conf work (overlay links, `conf.default` copies) and its report.
    pub conf: crate::startup::conf_merge::ConfWork,
}

/// The process environment as UTF-8 pairs (a variable that is not UTF-8 cannot be a setting and
/// is left out rather than aborting).
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Resolves this node from the environment `env` (and the files it points to) and the cgroups;
/// `cli_role` is `--role`. Every stage runs as far as its inputs allow, so every problem is
/// reported at once (each only once).
pub fn resolve_node(
    cli_role: Option<&str>,
    env: &BTreeMap<String, String>,
) -> Result<Node, Diagnostics> {
    resolve_node_with(cli_role, env, &mut crate::config::role::load_role)
}

/// [`resolve_node`] with the role definition loaded by `load_role(roles_dir, name)`: `check`,
/// which has loaded and reported every role already, hands over what it loaded instead of having
/// the same role file's problems found (and listed) a second time.
pub fn resolve_node_with(
    cli_role: Option<&str>,
    env: &BTreeMap<String, String>,
    load_role: &mut dyn FnMut(&Path, &str) -> Result<LoadedRole, Diagnostics>,
) -> Result<Node, Diagnostics> {
    use crate::config::runtime::{Inputs, Resolver};
    let (inputs, gathered) = Inputs::gather_all(env.clone());
    let mut problems = Diagnostics::default();
    for name in crate::config::env::non_utf8(std::env::vars_os()) {
        problems.push(crate::error::Diagnostic::new(
            format!("env {name}"),
            "the value is not valid UTF-8 (refused rather than ignored)",
        ));
    }
    problems.extend(gathered);
    // One pass over the inputs: each stage below reports only its own problems.
    let resolver = Resolver::new(&inputs);
    problems.extend(resolver.problems().clone());
    let role_name = resolver.role(cli_role).map_err(|d| problems.extend(d)).ok();
    let roles_dir = crate::config::role::roles_dir(env);
    let loaded = role_name.as_ref().and_then(|name| {
        load_role(&roles_dir, &name.value)
            .map_err(|d| problems.extend(d))
            .ok()
    });
    // Without a role (or its definition) the settings are still resolved, against a placeholder
    // role and no role defaults, so that their problems are listed too.
    let placeholder = || Sourced::new("unknown".to_string(), Source::Default);
    let (role_file, no_defaults) = ("-".to_string(), BTreeMap::new());
    let (role_file, defaults) = match &loaded {
        Some(loaded) => (loaded.file.display().to_string(), &loaded.def.defaults),
        None => (role_file, &no_defaults),
    };
    let config = resolver
        .resolve(
            role_name.clone().unwrap_or_else(placeholder),
            &role_file,
            defaults,
        )
        .map_err(|d| problems.extend(d))
        .ok();
    // Add-on roles asked for by settings (ssh, ldap): merged into the role, then the settings
    // resolved again with their defaults. A failure there leaves the node without the add-ons.
    let mut access = Vec::new();
    let (loaded, config) = match (loaded, config) {
        (Some(base), Some(first)) => {
            let (role, config) = with_addons(&roles_dir, base, first, &resolver, &mut access);
            (Some(role), Some(config))
        }
        other => other,
    };
    let resources = crate::resources::detect()
        .map_err(|d| problems.extend(d))
        .ok();
    // Sizing depends on the role: none for the placeholder.
    let sizing = match (&config, &resources) {
        (Some(c), Some(r)) if loaded.is_some() => crate::resources::size(r, c)
            .map_err(|d| problems.extend(d))
            .ok(),
        _ => None,
    };
    match (loaded, config, resources, sizing) {
        (Some(role), Some(mut config), Some(resources), Some(sizing)) if problems.is_empty() => {
            let conf = place_conf(&role, &mut config, &resources, &sizing, env)
                .map_err(|e| Diagnostics::from(e.diagnostic()))?;
            Ok(Node {
                role,
                config,
                resources,
                sizing,
                access,
                conf,
            })
        }
        _ => Err(problems),
    }
}

/// Where the conf goes (`conf_merge::place`): when the agent's files cannot be written into the
/// user's conf dir, `spark.conf_dir` becomes the overlay (every service, template and file path
/// then follows it), its source saying why.
fn place_conf(
    role: &LoadedRole,
    config: &mut ResolvedConfig,
    resources: &Resources,
    sizing: &Sizing,
    env: &BTreeMap<String, String>,
) -> Result<crate::startup::conf_merge::Placement, crate::startup::conf_merge::ConfError> {
    let setting = |key: &str, default: &str| {
        config
            .settings
            .get(key)
            .map_or(default.to_string(), |v| v.value.clone())
    };
    let home = setting("spark.home", crate::config::env::DEFAULT_SPARK_HOME);
    let user_dir = crate::render::paths::normalize(Path::new(&setting(
        "spark.conf_dir",
        &format!("{home}/conf"),
    )));
    let context = crate::render::build_context(config, resources, Some(sizing));
    let destinations = crate::render::destinations(role, &context);
    let placement = crate::startup::conf_merge::place::place(
        &user_dir,
        Path::new(&home),
        &destinations,
        &crate::render::write::mount_points(),
        crate::startup::writable::scratch_dir(env),
    )?;
    if let Some(why) = &placement.overlay {
        config.settings.insert(
            "spark.conf_dir".into(),
            Sourced::new(
                placement.dir.display().to_string(),
                Source::Derived {
                    from: format!("overlay: {why}"),
                },
            ),
        );
    }
    Ok(placement)
}

/// `base` with the add-on roles its settings ask for, `first` resolved again with their defaults,
/// and the access settings checked (`access::apply`); the problems go to `access`.
fn with_addons(
    roles_dir: &Path,
    base: LoadedRole,
    first: ResolvedConfig,
    resolver: &crate::config::runtime::Resolver,
    access: &mut Vec<Diagnostic>,
) -> (LoadedRole, ResolvedConfig) {
    let (addons, problems) = crate::startup::access::addons(&first);
    access.extend(problems);
    let (mut role, mut config) = if addons.is_empty() {
        (base, first)
    } else {
        match crate::config::role::load_role_with_addons(roles_dir, &base.name, &addons) {
            Ok(merged) => {
                let role_file = merged.file.display().to_string();
                match resolver.resolve(first.role.clone(), &role_file, &merged.def.defaults) {
                    Ok(config) => (merged, config),
                    Err(d) => {
                        access.extend(d.0);
                        (base, first)
                    }
                }
            }
            Err(d) => {
                access.extend(d.0);
                (base, first)
            }
        }
    };
    let users = crate::sys::users::UserDb::system();
    let agent = crate::startup::access::Agent::current(&resolver.inputs().env, &users);
    access.extend(crate::startup::access::apply(
        &mut role,
        &mut config,
        &agent,
    ));
    (role, config)
}

impl Node {
    /// The role's files rendered in memory and merged with the user's conf files
    /// (`conf_merge`), and its services expanded, from templates under `templates_dir`; the
    /// problems of all are reported together. Reads the user's files; writes nothing.
    pub fn render(&self, templates_dir: &Path) -> Result<Rendered, Diagnostics> {
        let context =
            crate::render::build_context(&self.config, &self.resources, Some(&self.sizing));
        let files =
            crate::render::render_role(&self.role, &context, templates_dir).and_then(|files| {
                crate::startup::conf_merge::merge_files(files, &self.conf, &self.config)
                    .map_err(|errors| Diagnostics(errors.iter().map(|e| e.diagnostic()).collect()))
            });
        let services = crate::render::expand_services(&self.role, &context);
        let warnings = crate::render::expand_warnings(&self.role, &context);
        match (files, services, warnings) {
            (Ok((files, conf)), Ok(services), Ok(_)) => Ok(Rendered {
                files,
                services,
                conf,
            }),
            (files, services, warnings) => {
                let mut problems = Diagnostics::default();
                for d in [files.err(), services.err(), warnings.err()]
                    .into_iter()
                    .flatten()
                {
                    problems.extend(d);
                }
                Err(problems)
            }
        }
    }
}

impl Node {
    /// The role's `warnings` that apply to this node, expanded (a warning that cannot be expanded
    /// is one of [`Node::render`]'s problems, not repeated here). Every command that renders the
    /// node says them: run and each reload in the log, `render` and `check` on stderr.
    pub fn warnings(&self) -> Vec<String> {
        let context =
            crate::render::build_context(&self.config, &self.resources, Some(&self.sizing));
        crate::render::expand_warnings(&self.role, &context)
            .unwrap_or_default()
            .into_iter()
            .map(|w| format!("role {}: {w}", self.role.name))
            .collect()
    }

    /// The expanded services as supervisor definitions, with every service's user, umask and
    /// signal names checked against this system (`run` refuses exactly what `check` reports):
    /// users resolved against `users`, the privilege drop of their spawns planned against the
    /// agent's credentials of this moment (at start and by each reload).
    pub fn service_defs(
        &self,
        services: BTreeMap<String, ServiceSpec>,
        users: &crate::sys::users::UserDb,
    ) -> Result<Vec<crate::supervision::supervisor::ServiceDef>, Diagnostics> {
        let agent = crate::sys::privileges::AgentCredentials::current().map_err(|e| {
            Diagnostics::from(Diagnostic::new(
                "sparkvisor",
                format!("cannot read the agent's own credentials: {e}"),
            ))
        })?;
        let mut problems = Diagnostics::default();
        let mut defs = Vec::new();
        for (name, spec) in services {
            let file = self.role.file_of_service(&name).display().to_string();
            let problem = |m: String| Diagnostic::new(file.clone(), format!("service {name}: {m}"));
            let user = crate::sys::users::resolve_service_user(
                spec.user.as_deref(),
                spec.group.as_deref(),
                spec.groups.as_deref(),
                users,
            )
            .map_err(|e| problems.push(problem(e.to_string())))
            .ok();
            match crate::supervision::supervisor::ServiceDef::new(
                &name,
                spec,
                user.flatten(),
                &agent,
                crate::signal_names::signal_by_name,
            ) {
                Ok(def) => defs.push(def),
                Err(errors) => {
                    for e in errors {
                        problems.push(Diagnostic::new(file.clone(), e));
                    }
                }
            }
        }
        problems.into_result(defs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A roles directory with one role `probe` whose `defaults:` set `probe.greeting`.
    struct RolesDir(std::path::PathBuf);
    impl RolesDir {
        fn new(tag: &str) -> RolesDir {
            let dir =
                std::env::temp_dir().join(format!("sparkvisor-node-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("probe.yaml"),
                "description: test role\ndefaults:\n  probe.greeting: from-role\nservices: {}\n",
            )
            .unwrap();
            RolesDir(dir)
        }
    }
    impl Drop for RolesDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env(roles: &RolesDir, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("SPARKVISOR_ROLES", roles.0.display().to_string()),
            ("SPARKVISOR_CONFIGMETA", String::new()),
            ("SPARKVISOR_HOSTNAME", "node1".into()),
            ("SPARKVISOR_FQDN", "node1.example.org".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    #[test]
    fn role_defaults_are_the_lowest_layer() {
        let roles = RolesDir::new("defaults");
        let node = match resolve_node(Some("probe"), &env(&roles, &[])) {
            Ok(node) => node,
            Err(d) => panic!("{d}"),
        };
        let greeting = &node.config.settings["probe.greeting"];
        assert_eq!(greeting.value, "from-role");
        assert!(
            matches!(&greeting.source, Source::Role { file } if file.ends_with("probe.yaml")),
            "{:?}",
            greeting.source
        );
    }

    #[test]
    fn every_problem_is_reported_once() {
        let roles = RolesDir::new("problems");
        // A role that does not exist and a malformed settings mapping: both are reported.
        let err = match resolve_node(
            Some("nosuch"),
            &env(&roles, &[("SPARKVISOR_SETTINGS", "[not a mapping")]),
        ) {
            Ok(_) => panic!("resolved a role that does not exist"),
            Err(d) => d,
        };
        let text = err.to_string();
        assert!(text.contains("nosuch"), "{text}");
        assert!(text.contains("SPARKVISOR_SETTINGS"), "{text}");
        for (i, d) in err.0.iter().enumerate() {
            assert!(!err.0[..i].contains(d), "listed twice: {d}\n{text}");
        }
    }
}
