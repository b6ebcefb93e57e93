//! Role mode, start to finish: resolve config, detect resources, render files, supervise, shut down.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::error::{Diagnostic, Fatal};

/// `sparkvisor run`: supervise the role's services (and CMD, when given) as PID 1.
///
/// Order: block signals (before any thread exists, so every thread inherits the mask and signals
/// queue for the signalfd) → gather → resolve role → load role → resolve → detect → size → render →
/// expand services → validate users/signals → write files → reduce the agent's bounding set →
/// subreaper (when not PID 1) → signal thread → status socket → supervise → (not PID 1) kill what
/// is left. Any problem before supervision is a [`Fatal`] (bad config: 78, nothing started).
pub fn run(role: Option<String>, command: Vec<OsString>) -> Result<i32, Fatal> {
    use std::sync::Arc;

    use crate::status::backend::{NodeFacts, SupervisorHandle};
    use crate::supervision::supervisor::host::{self, HostSys};
    use crate::supervision::supervisor::{Options, ReloadError, Supervisor};

    let inherited = crate::sys::signals::block_signals().map_err(|source| Fatal::Sys {
        context: "blocking signals".into(),
        source,
    })?;
    init_logging(&crate::startup::node::process_env());
    // Writable places and a passwd entry for whoever the container runs as (docs/kubernetes.md).
    crate::platform::dropin::prepare_role();
    let (agent_uid, _) = crate::sys::process::current_ids();
    if agent_uid != 0 {
        log::info!(
            "sparkvisor runs as uid {agent_uid} (not root): every service runs as this user with \
             no capabilities; its role's user and capabilities apply when started as root"
        );
    }
    let env = crate::startup::node::process_env();
    crate::sys::thread::install_panic_hook();
    // Before anything is resolved or written: stale files on a persistent volume (image_stamp).
    crate::platform::image_stamp::check(std::path::Path::new("/"))?;
    // TERM/INT during a start-up wait (SPARKVISOR_CONFIGMETA_WAIT, a FIFO as input) end it.
    if let Err(e) = crate::sys::interrupt::arm() {
        log::warn!("start-up waits cannot be interrupted by SIGTERM: {e}");
    }
    let users = crate::sys::users::UserDb::system();
    // Run options and the injected config are checked together: every problem at once, before
    // anything is written.
    let options = crate::startup::run_options::RunOptions::parse(&env);
    let prepared = prepare_role(&env, role.as_deref(), &users);
    if let Some(signo) = crate::sys::interrupt::stop_requested() {
        log::info!(
            "{} during start-up: nothing was started, exiting",
            crate::signal_names::signal_name(signo)
        );
        return Ok(crate::error::exit_code::OK);
    }
    let (options, prepared) = match (options, prepared) {
        (Ok(options), Ok(prepared)) => (options, prepared),
        (Err(problems), Err(Fatal::Config(mut config))) => {
            config.extend(problems);
            return Err(Fatal::Config(config));
        }
        (Err(problems), _) => return Err(Fatal::Config(problems)),
        (Ok(_), Err(fatal)) => return Err(fatal),
    };
    if let Some(why) = &prepared.conf.report.overlay {
        log::info!(
            "{why}: rendering the config into SPARK_CONF_DIR={} (your files in {} are linked \
             there, never written)",
            prepared.conf.report.dir.display(),
            prepared.conf.report.user_dir.display()
        );
    }
    write_conf(&prepared.files, &prepared.conf, &prepared.node_conf)?;
    let data_owner = prepared
        .config
        .settings
        .get("spark.user")
        .and_then(|u| crate::sys::users::resolve_user(&u.value, None, None, &users).ok())
        .map(|ids| (ids.uid, ids.gid));
    crate::startup::datadirs::prepare(&prepared.config, data_owner)?;
    crate::startup::access::prepare(&prepared.role, &prepared.config);
    // Before the capability drop: a root agent may need CAP_DAC_OVERRIDE to read the stores.
    if let Some(problem) = crate::supervision::tls::install(&prepared.config) {
        log::warn!("Spark SSL is on but the probes cannot speak HTTPS: {problem}");
    }

    let service_caps = prepared
        .defs
        .iter()
        .fold(crate::sys::caps::CapabilitySet::EMPTY, |all, d| {
            all.union(d.capabilities)
        });
    if crate::sys::caps::looks_privileged() {
        log::warn!(
            "sparkvisor runs with EVERY capability (a --privileged container?): services still get \
             only the capabilities their role lists, but the container is not isolated"
        );
    }
    if agent_uid != 0 {
        log::debug!("not root: no capabilities to reduce (the services get none)");
    } else {
        reduce_capabilities(service_caps);
    }
    let pid1 = crate::sys::process::current_pid() == 1;
    if !pid1 {
        if let Err(e) = crate::sys::process::set_child_subreaper() {
            log::warn!("cannot become a child subreaper, orphans will not be reaped: {e}");
        }
    }

    let (tx, rx) = std::sync::mpsc::channel();
    // From here the signal thread reads TERM/INT (and wakes interruptible reads of a reload).
    crate::sys::interrupt::disarm();
    host::spawn_signal_thread(tx.clone()).map_err(|source| Fatal::Sys {
        context: "starting the signal thread".into(),
        source,
    })?;
    let format = options.log_format;
    let shutdown_grace = options.shutdown_grace;
    let reload_timeout = options.reload_timeout;
    let store = crate::supervision::logs::LogStore::new(
        crate::supervision::logs::DEFAULT_LINES_PER_SERVICE,
    );
    let facts = NodeFacts {
        node: crate::status::wire::Node {
            hostname: prepared.config.node.hostname.value.clone(),
            fqdn: prepared.config.node.fqdn.value.clone(),
            role: prepared.config.role.value.clone(),
        },
        resources: serde_json::to_value(&prepared.resources).unwrap_or_default(),
        sizing: serde_json::to_value(&prepared.sizing).unwrap_or_default(),
    };
    let handle = SupervisorHandle::new(
        tx.clone(),
        Arc::clone(&store),
        facts,
        prepared.defs.iter().map(|d| d.name.clone()),
    );
    let server = match crate::status::serve(Arc::new(handle), options.server) {
        Ok(server) => Some(server),
        Err(e) => {
            log::warn!("status socket not available: {e}");
            None
        }
    };

    // KubeDirector rewrites configmeta.json when the cluster changes: reload as on SIGHUP.
    let watched: Vec<std::path::PathBuf> = [
        env.get(crate::config::env::CONFIGMETA_VAR)
            .map_or(crate::config::env::DEFAULT_CONFIGMETA, String::as_str),
        env.get(crate::config::env::CONFIG_VAR)
            .map_or("", String::as_str),
    ]
    .into_iter()
    .filter(|p| !p.is_empty())
    .map(std::path::PathBuf::from)
    .collect();
    let watch_tx = tx.clone();
    if let Err(e) = crate::sys::watch::watch_files(
        &watched,
        move |path| {
            watch_tx
                .send(crate::supervision::supervisor::Msg::ConfigChanged(
                    path.to_path_buf(),
                ))
                .is_ok()
        },
        host::on_death(tx.clone()),
    ) {
        log::warn!("cannot watch the config files for changes (SIGHUP still reloads): {e}");
    }
    let base_env = service_base_env(&env, &prepared.config);
    let sys = HostSys::new(tx, store, format, base_env, inherited);
    let output = sys.output_drain();
    let reload_role = role.clone();
    let mut current_files = prepared.files.clone();
    // Runs on a reload thread (never the supervisor's), within `reload_timeout`; it writes the
    // new files only when the supervisor has not given it up meanwhile (the commit gate).
    let reload = move |gate: &crate::supervision::supervisor::CommitGate| -> Result<crate::supervision::supervisor::ReloadPlan, ReloadError> {
        let users = crate::sys::users::UserDb::system();
        let fresh =
            prepare_role(&env, reload_role.as_deref(), &users).map_err(ReloadError::Prepare)?;
        let changed_files: Vec<std::path::PathBuf> = fresh
            .files
            .iter()
            .filter(|f| !current_files.contains(f))
            .map(|f| f.path.clone())
            .collect();
        if !gate.begin_commit() {
            return Err(ReloadError::GivenUp);
        }
        write_conf(&fresh.files, &fresh.conf, &fresh.node_conf).map_err(ReloadError::Write)?;
        current_files = fresh.files;
        Ok(crate::supervision::supervisor::ReloadPlan {
            services: fresh.defs,
            changed_files,
        })
    };
    let supervisor = Supervisor::new(
        sys,
        prepared.defs,
        Options {
            shutdown_grace,
            main: (!command.is_empty()).then_some(command),
            reload: Some(Box::new(reload)),
            reload_timeout,
        },
    );
    let code = supervisor.run(&rx);
    // Requests still queued get "disconnected" at once instead of waiting for a reply that never
    // comes (which would delay the exit past the container's grace).
    drop(rx);
    if let Some(server) = server {
        server.shutdown();
    }
    // Orphans that escaped their service's process group (setsid daemons) are our children now:
    // they end with us (as PID 1 the kernel would end them anyway, but only after our exit, and
    // one still holding a service's pipe would hold up the output drain below).
    kill_leftover_children();
    // The services' last lines (often the reason for the exit code) may still be in their pipes.
    let open = output.wait(OUTPUT_DRAIN_LIMIT);
    if open > 0 {
        log::info!("{open} output pipe(s) still open after {OUTPUT_DRAIN_LIMIT:?}: not waiting");
    }
    Ok(code)
}

// The boundary errors of role mode, each turned into the fatal error (and so the exit code) it is,
// here and only here; the modules that fail return their own typed error.

/// A failure writing rendered files: an I/O error is the system's, anything else the config's.
impl From<crate::render::RenderError> for Fatal {
    fn from(e: crate::render::RenderError) -> Fatal {
        use crate::render::RenderError;
        match e {
            // A full disk or a read-only file system is the container's configuration, not a
            // crash: 78 naming the path, before anything starts.
            RenderError::Io { path, source }
                if matches!(source.raw_os_error(), Some(28 | 30 | 122)) =>
            {
                Fatal::Config(
                    Diagnostic::new(
                        path.display().to_string(),
                        format!("cannot write: {source}"),
                    )
                    .into(),
                )
            }
            RenderError::Io { path, source } => Fatal::Sys {
                context: format!("writing {}", path.display()),
                source,
            },
            other => Fatal::Config(Diagnostic::new("render", other.to_string()).into()),
        }
    }
}

/// Longest wait at exit for the output forwarders: their pipes end as soon as the last writer
/// has; this bounds only a pipe some stray process still holds.
const OUTPUT_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Drops every capability the agent and its services do not need, from the agent's bounding set
/// and (so a bug in the agent cannot use what it does not need) its effective sets too.
fn reduce_capabilities(service_caps: crate::sys::caps::CapabilitySet) {
    let keep = crate::sys::caps::agent_keep_set(service_caps);
    match crate::sys::caps::reduce_agent_bounding_set(&keep) {
        Ok(dropped) => {
            log::debug!("dropped {} capabilities from the agent", dropped.len());
        }
        Err(e) => log::info!("the agent's bounding set stays as it is: {e}"),
    }
    if let Err(e) = crate::sys::caps::reduce_agent_sets(&keep) {
        log::info!("the agent's capability sets stay as they are: {e}");
    }
}

/// SIGKILLs every remaining child of the agent (they are re-parented to init, which reaps them).
fn kill_leftover_children() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            log::info!("pid {pid} outlived its service: SIGKILL");
            let _ =
                crate::sys::process::send_signal(pid, crate::supervision::supervisor::signo::KILL);
        }
    }
}

/// The agent's own messages go to stderr as `sparkvisor: LEVEL: message`; `SPARKVISOR_LOG` sets the
/// level (error, warn, info — the default —, debug, trace; env_logger filter syntax).
fn init_logging(env: &BTreeMap<String, String>) {
    use std::io::Write;
    let filter = env.get("SPARKVISOR_LOG").map_or("info", String::as_str);
    let _ = env_logger::Builder::new()
        .parse_filters(filter)
        .format(|buf, record| {
            writeln!(
                buf,
                "sparkvisor: {}: {}",
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        })
        .try_init();
}

/// Writes the rendered (and merged) files, then copies `conf.default` entries the conf dir lacks
/// and links the user's entries into an overlay; says what the user should know about their conf
/// files (edits found inside the agent's block, what could not be linked or copied).
fn write_conf(
    files: &[crate::render::RenderedFile],
    conf: &crate::startup::conf_merge::ConfWork,
    placement: &crate::startup::conf_merge::Placement,
) -> Result<(), crate::render::RenderError> {
    crate::render::write_files(files, None)?;
    for problem in crate::startup::conf_merge::place::apply(placement, &conf.links, &conf.seeds) {
        log::warn!("conf: {problem}");
    }
    for file in &conf.report.files {
        for note in &file.notes {
            log::warn!("conf: {}: {note}", file.path.display());
        }
        let replaced: Vec<&str> = file
            .values
            .iter()
            .filter(|v| {
                matches!(
                    &v.from,
                    crate::startup::conf_merge::ValueFrom::Yours {
                        replaces: Some(_),
                        ..
                    }
                )
            })
            .map(|v| v.key.as_str())
            .collect();
        match (file.outcome, &file.user_file) {
            (crate::startup::conf_merge::Outcome::Merged, Some(user)) => log::info!(
                "conf: {}: merged with your {}{}",
                file.path.display(),
                user.display(),
                if replaced.is_empty() {
                    String::new()
                } else {
                    format!(" (yours win: {})", replaced.join(", "))
                }
            ),
            (crate::startup::conf_merge::Outcome::Yours, Some(user)) => log::info!(
                "conf: {}: your {} is used whole; sparkvisor's {} is not written",
                file.path.display(),
                user.display(),
                file.template.as_deref().unwrap_or("rendering")
            ),
            _ => {}
        }
    }
    Ok(())
}

/// Everything `run` (and a SIGHUP reload) derives before starting anything.
struct PreparedRole {
    config: crate::config::ResolvedConfig,
    resources: crate::resources::Resources,
    sizing: crate::resources::Sizing,
    files: Vec<crate::render::RenderedFile>,
    /// The conf work besides writing `files` (links, seeds) and whose each value is.
    conf: crate::startup::conf_merge::ConfWork,
    /// Where the user's conf files are and Spark reads its conf.
    node_conf: crate::startup::conf_merge::Placement,
    defs: Vec<crate::supervision::supervisor::ServiceDef>,
    /// The role with its add-ons (for `access::prepare`).
    role: crate::config::role::LoadedRole,
}

/// Resolves the node ([`crate::startup::node::resolve_node`]), renders its files in memory and expands its
/// services into supervisor definitions ([`crate::startup::node::Node::service_defs`]). Reports every
/// problem at once.
fn prepare_role(
    env: &BTreeMap<String, String>,
    cli_role: Option<&str>,
    users: &crate::sys::users::UserDb,
) -> Result<PreparedRole, Fatal> {
    let node = crate::startup::node::resolve_node(cli_role, env)?;
    let crate::startup::node::Rendered {
        files,
        mut services,
        conf,
    } = node.render(&crate::config::role::templates_dir(env))?;
    let base_env = service_base_env_map(env, &node.config);
    crate::startup::spark_launch::apply(&mut services, &base_env, &files).map_err(|problems| {
        let file = node.role.file.display().to_string();
        let mut diags = crate::error::Diagnostics::default();
        for p in problems {
            diags.push(crate::error::Diagnostic::new(file.clone(), p));
        }
        Fatal::Config(diags)
    })?;
    let scripts =
        crate::startup::initscripts::find(&crate::startup::initscripts::dir(&node.config))
            .map_err(|d| Fatal::Config(d.into()))?;
    let user = node
        .config
        .settings
        .get("spark.user")
        .map(|u| u.value.as_str());
    let services = crate::startup::initscripts::add_to(services, &scripts, user)
        .map_err(|d| Fatal::Config(d.into()))?;
    let defs = node.service_defs(services, users)?;
    if crate::sys::peercred::effective_uid() == 0 {
        untrusted_config(&node, &defs, &crate::config::role::templates_dir(env))?;
    }
    for problem in &node.access {
        log::error!("access: {problem}");
    }
    for warning in node.warnings() {
        log::warn!("{warning}");
    }
    Ok(PreparedRole {
        role: node.role,
        config: node.config,
        resources: node.resources,
        sizing: node.sizing,
        files,
        conf,
        node_conf: node.conf,
        defs,
    })
}

/// Refuses role files and templates that a service (one with a `user:`) could change: see
/// [`crate::config::trust`]. A service without `user:` runs as the agent itself.
fn untrusted_config(
    node: &crate::startup::node::Node,
    defs: &[crate::supervision::supervisor::ServiceDef],
    templates_dir: &std::path::Path,
) -> Result<(), Fatal> {
    use crate::config::trust::{check_config_files, Writer};
    let writers: Vec<Writer> = defs
        .iter()
        .filter(|d| d.spec.user.is_some())
        .filter_map(|d| {
            let ids = d.user.clone()?;
            let mut gids = ids.groups.clone();
            gids.push(ids.gid);
            Some(Writer {
                service: d.name.clone(),
                uid: ids.uid,
                gids,
            })
        })
        .collect();
    let mut files = vec![node.role.file.clone()];
    files.extend(node.role.service_files.values().cloned());
    files.extend(node.role.render_files.iter().cloned());
    let problems = check_config_files(&files, templates_dir, &writers);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Fatal::Config(problems))
    }
}

/// The environment every service starts from: the container's, without sparkvisor's own variables
/// (`SPARKVISOR_*`), the `<NAME>_FILE` pointers sparkvisor itself consumed (only those: other
/// `*_FILE` variables such as `AWS_WEB_IDENTITY_TOKEN_FILE` are the services' and pass unchanged)
/// and any variable holding a resolved secret; plus `SPARK_HOME`/`SPARK_CONF_DIR` from the resolved
/// settings. A service's `environment` wins over it.
fn service_base_env(
    env: &BTreeMap<String, String>,
    config: &crate::config::ResolvedConfig,
) -> Vec<(OsString, OsString)> {
    service_base_env_map(env, config)
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

/// [`service_base_env`] as a map (what the direct Spark launch reads).
fn service_base_env_map(
    env: &BTreeMap<String, String>,
    config: &crate::config::ResolvedConfig,
) -> BTreeMap<String, String> {
    let secrets: Vec<&str> = config.secrets.values().map(|s| s.expose()).collect();
    let consumed: Vec<String> = crate::config::env::file_capable_names()
        .iter()
        .map(|name| format!("{name}_FILE"))
        .collect();
    let mut out: BTreeMap<String, String> = env
        .iter()
        .filter(|(k, v)| {
            !k.starts_with("SPARKVISOR_")
                && !consumed.contains(k)
                && !secrets.iter().any(|s| !s.is_empty() && *s == v.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, var) in [
        ("spark.home", "SPARK_HOME"),
        ("spark.conf_dir", "SPARK_CONF_DIR"),
    ] {
        if let Some(v) = config.settings.get(key) {
            out.insert(var.to_string(), v.value.clone());
        }
    }
    out
}
