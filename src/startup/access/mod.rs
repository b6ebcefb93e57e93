//! Access into a node (docs/access.md): the `ssh` and `ldap` add-on roles.
//!
//! Settings ask for them (`access.ssh` = `SPARKVISOR_SSH=true`; `ldap.uri` = `SPARKVISOR_LDAP_URI`),
//! `node::resolve_node` merges the add-on role files into whatever role the node plays, and then
//! [`apply`] checks the access settings and derives the ones the add-on templates use. Access is
//! not critical: a bad key, an invalid port or a missing CA file is reported (naming the setting and
//! where it came from) and the rest of the node starts as usual, without the part that cannot work.

pub mod keys;
pub mod ldap;
mod prepare;

use std::collections::BTreeMap;

pub use prepare::prepare;

use crate::config::model::source_location;
use crate::config::role::LoadedRole;
use crate::config::{ResolvedConfig, Source, Sourced};
use crate::error::Diagnostic;

/// The add-on role that runs sshd.
pub const SSH_ROLE: &str = "ssh";
/// The add-on role that runs nslcd (LDAP users through NSS and PAM).
pub const LDAP_ROLE: &str = "ldap";
/// The service the `ssh` role defines.
pub const SSHD_SERVICE: &str = "sshd";
/// The service the `ldap` role defines.
pub const NSLCD_SERVICE: &str = "nslcd";
/// Setting that enables ssh (`SPARKVISOR_SSH`).
pub const SSH_SETTING: &str = "access.ssh";
/// Setting holding the injected public keys (`SPARKVISOR_SSH_AUTHORIZED_KEYS`).
pub const KEYS_SETTING: &str = "ssh.authorized_keys";
/// Setting holding the LDAP server URIs (`SPARKVISOR_LDAP_URI`); set = LDAP on.
pub const LDAP_URI_SETTING: &str = "ldap.uri";
/// The KubeDirector `secret_keys` entry that carries authorized keys.
pub const KUBEDIRECTOR_KEYS_SECRET: &str = "kubedirector.ssh_authorized_keys";

/// Where the add-on settings default when no role says otherwise.
const DEFAULT_PORT: &str = "2222";

/// What `apply` needs to know about the agent itself.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The agent's effective uid.
    pub uid: u32,
    /// The agent runs as uid 0 (it can run sshd with capabilities and nslcd at all).
    pub root: bool,
    /// The agent's user name (a non-root sshd lets only this user in).
    pub user: Option<String>,
    /// The agent's `PATH` (given to ssh sessions, so `spark-submit` is found).
    pub path: Option<String>,
    /// The writable scratch directory (`$TMPDIR` or `/tmp`), for what a non-root agent cannot
    /// write where the image put it.
    pub scratch: Option<std::path::PathBuf>,
}

impl Agent {
    /// The running agent, from its effective uid, the user database and `env`.
    pub fn current(env: &BTreeMap<String, String>, users: &crate::sys::users::UserDb) -> Agent {
        let uid = crate::sys::peercred::effective_uid();
        Agent {
            uid,
            root: uid == 0,
            user: users.user_by_uid(uid).map(|u| u.name.clone()),
            path: env.get("PATH").cloned(),
            scratch: crate::startup::writable::scratch_dir(env).0,
        }
    }
}

/// The add-on roles the resolved settings ask for, in merge order, and the problems of the
/// settings that ask (an `access.ssh` that is not a boolean leaves ssh off).
pub fn addons(config: &ResolvedConfig) -> (Vec<&'static str>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    if let Some(v) = config.settings.get(SSH_SETTING) {
        match crate::config::units::parse_bool(&v.value) {
            Ok(true) => out.push(SSH_ROLE),
            Ok(false) => {}
            Err(e) => problems.push(problem(
                &v.source,
                format!("{SSH_SETTING}: {e}; ssh stays off"),
            )),
        }
    }
    if config
        .settings
        .get(LDAP_URI_SETTING)
        .is_some_and(|v| !v.value.trim().is_empty())
    {
        out.push(LDAP_ROLE);
    }
    (out, problems)
}

/// A problem with an access setting: reported, never fatal.
fn problem(source: &Source, message: String) -> Diagnostic {
    Diagnostic::new(source_location(source), message)
}

fn derived(config: &mut ResolvedConfig, key: &str, value: String, from: &str) {
    config.settings.insert(
        key.to_string(),
        Sourced::new(
            value,
            Source::Derived {
                from: from.to_string(),
            },
        ),
    );
}

/// Checks the access settings of a role that has the add-ons merged, derives the settings their
/// templates use, and removes what cannot work (the `ldap` part without a root agent or with a
/// missing CA file). Returns every problem found; none of them stops the node.
pub fn apply(role: &mut LoadedRole, config: &mut ResolvedConfig, agent: &Agent) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    // LDAP first: whether it runs decides where sshd looks up keys.
    let mut ldap_keys = None;
    if role.def.services.contains_key(NSLCD_SERVICE) {
        if let Err(p) = ldap::check(config, agent) {
            problems.push(p);
            remove_part(role, NSLCD_SERVICE);
        } else {
            problems.extend(ldap::reachability(config));
            let (attr, p) = ldap::key_attr(config);
            problems.extend(p);
            derived(
                config,
                ldap::KEY_ATTR_SETTING,
                attr.clone().unwrap_or_default(),
                ldap::KEY_ATTR_SETTING,
            );
            ldap_keys = attr;
        }
    }
    if role.def.services.contains_key(SSHD_SERVICE) {
        apply_ssh(role, config, agent, ldap_keys.is_some(), &mut problems);
    }
    problems
}

fn apply_ssh(
    role: &mut LoadedRole,
    config: &mut ResolvedConfig,
    agent: &Agent,
    ldap_keys: bool,
    problems: &mut Vec<Diagnostic>,
) {
    if !agent.root && agent.user.is_none() {
        // An arbitrary uid (OpenShift's restricted SCC, `--user 1000700000:0`): its only account
        // is nss_wrapper's (src/platform/dropin.rs), named like the image's spark user (185) so that Spark
        // finds a user name. sshd looks the login name up through NSS and gets uid 185, which a
        // non-root sshd (running as this uid) cannot become; the sessions would not see the
        // wrapper either. Refused with the reason rather than started to fail every login.
        let location = config.settings.get(SSH_SETTING).map_or_else(
            || role.file.display().to_string(),
            |v| source_location(&v.source),
        );
        problems.push(Diagnostic::new(
            location,
            format!(
                "{SSH_SETTING}: the container runs as uid {}, which has no account in \
                 /etc/passwd (an arbitrary uid, as OpenShift assigns): sshd needs a real account \
                 for the user who logs in; ssh is not started (run the container as spark, uid \
                 185, or as root; on Kubernetes use kubectl exec / oc rsh)",
                agent.uid
            ),
        ));
        remove_part(role, SSHD_SERVICE);
        return;
    }
    // Keys from every place they can be injected, each checked against where it came from.
    let mut valid = Vec::new();
    let sources = [
        config
            .settings
            .get(KEYS_SETTING)
            .map(|v| (v.value.clone(), v.source.clone())),
        config
            .secrets
            .get(KEYS_SETTING)
            .map(|s| (s.expose().to_string(), s.source.clone())),
        config
            .secrets
            .get(KUBEDIRECTOR_KEYS_SECRET)
            .map(|s| (s.expose().to_string(), s.source.clone())),
    ];
    for (text, source) in sources.into_iter().flatten() {
        let checked = keys::check(&text);
        for (line, why) in checked.invalid {
            problems.push(problem(
                &source,
                format!("{KEYS_SETTING}: line {line}: {why}; this key is ignored"),
            ));
        }
        valid.extend(checked.valid);
    }
    if valid.is_empty() && !agent.root {
        log::info!("ssh: no authorized keys injected ({KEYS_SETTING}): nobody can log in yet");
    }
    derived(
        config,
        "ssh.valid_authorized_keys",
        valid.join("\n"),
        KEYS_SETTING,
    );

    let port = config.settings.get("ssh.port").cloned();
    if let Some(port) = port {
        match crate::config::units::parse_port(&port.value) {
            Ok(n) if n < 1024 && !agent.root => {
                problems.push(problem(
                    &port.source,
                    format!(
                        "ssh.port {n}: a non-root sshd cannot listen below 1024; using {DEFAULT_PORT}"
                    ),
                ));
                derived(
                    config,
                    "ssh.port",
                    DEFAULT_PORT.into(),
                    "ssh.port (invalid)",
                );
            }
            Ok(_) => {}
            Err(e) => {
                problems.push(problem(
                    &port.source,
                    format!("ssh.port: {e}; using {DEFAULT_PORT}"),
                ));
                derived(
                    config,
                    "ssh.port",
                    DEFAULT_PORT.into(),
                    "ssh.port (invalid)",
                );
            }
        }
    }

    let password = match config.settings.get("ssh.password_auth") {
        None => false,
        Some(v) => crate::config::units::parse_bool(&v.value).unwrap_or_else(|e| {
            problems.push(problem(
                &v.source,
                format!("ssh.password_auth: {e}; password logins stay off"),
            ));
            false
        }),
    };
    if password && !agent.root {
        log::warn!("ssh: password logins need a root agent (PAM); they stay off");
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    derived(
        config,
        "ssh.password_authentication",
        yes_no(password && agent.root),
        "ssh.password_auth",
    );
    // PAM (passwords, LDAP accounts, home directories) needs root; a non-root sshd can only let
    // its own user in, with a key.
    derived(config, "ssh.use_pam", yes_no(agent.root), "the agent's uid");
    let allow = if agent.root {
        String::new()
    } else {
        agent.user.clone().unwrap_or_default()
    };
    derived(config, "ssh.allow_users", allow.clone(), "the agent's user");
    // Who reads the injected keys: the Spark user under a root agent, else the agent itself; with
    // keys in the directory, nslcd's user runs the lookup script, which also prints the injected
    // keys (sshd has a single AuthorizedKeysCommand).
    let keys_user = if ldap_keys {
        ldap::KEYS_USER.to_string()
    } else if agent.root || allow.is_empty() {
        config
            .settings
            .get("spark.user")
            .map_or_else(|| "spark".to_string(), |u| u.value.clone())
    } else {
        allow
    };
    derived(
        config,
        "ssh.keys_user",
        keys_user,
        "spark.user and the agent's user",
    );
    if !agent.root {
        // Before anything derives paths from them: the directories may move to scratch.
        writable_ssh_dirs(config, agent, problems);
    }
    let run_dir = config
        .settings
        .get("ssh.run_dir")
        .map_or_else(|| "/run/sparkvisor/ssh".to_string(), |v| v.value.clone());
    let injected = format!("{run_dir}/authorized_keys/%u");
    let command = if ldap_keys {
        format!("{} %u {injected}", ldap::KEYS_COMMAND)
    } else {
        format!("/bin/cat {injected}")
    };
    derived(
        config,
        "ssh.keys_command",
        command,
        "ssh.run_dir and ldap.ssh_key_attr",
    );
    if let Some(path) = &agent.path {
        derived(config, "ssh.login_path", path.clone(), "the agent's PATH");
    }
    if !agent.root {
        // A non-root agent has no capabilities to give: sshd runs as the agent with none.
        if let Some(spec) = role.def.services.get_mut(SSHD_SERVICE) {
            spec.capabilities.clear();
        }
    }
}

/// Removes a service and the render entries of the role file that defined it.
/// A non-root agent on a read-only root (or with `/data` not its own) cannot write sshd's run
/// directory or its host key directory: both move under the scratch directory (`$TMPDIR` or
/// `/tmp`), as the Spark config does. Host keys there are new on every start, which is said.
fn writable_ssh_dirs(config: &mut ResolvedConfig, agent: &Agent, problems: &mut Vec<Diagnostic>) {
    let Some(scratch) = &agent.scratch else {
        return;
    };
    let dirs = [
        ("ssh.run_dir", "sparkvisor-ssh", false),
        ("ssh.host_key_dir", "sparkvisor-ssh-hostkeys", true),
    ];
    for (key, sub, keys) in dirs {
        let Some(current) = config.settings.get(key).cloned() else {
            continue;
        };
        if crate::startup::writable::is_writable(std::path::Path::new(&current.value)) {
            continue;
        }
        let moved = scratch.join(sub).display().to_string();
        let why = if keys {
            "; the host key is new on every start (mount a volume there to keep it)"
        } else {
            ""
        };
        problems.push(problem(
            &current.source,
            format!(
                "{key}: {} is not writable; using {moved}{why}",
                current.value
            ),
        ));
        derived(config, key, moved, key);
    }
}

fn remove_part(role: &mut LoadedRole, service: &str) {
    let Some(file) = role.service_files.remove(service) else {
        return;
    };
    role.def.services.remove(service);
    let mut keep = role.render_files.iter().map(|f| *f != file);
    role.def.render.retain(|_| keep.next().unwrap_or(true));
    role.render_files.retain(|f| *f != file);
}
