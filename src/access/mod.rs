//! Access into a node (docs/access.md): the `ssh` and `ldap` add-on roles.
//!
//! Settings ask for them (`access.ssh` = `SPARKVISOR_SSH=true`; `ldap.uri` = `SPARKVISOR_LDAP_URI`),
//! `node::resolve_node` merges the add-on role files into whatever role the node plays, and then
//! [`apply`] checks the access settings and derives the ones the add-on templates use. Access is
//! not critical: a bad key, an invalid port or a missing CA file is reported (naming the setting and
//! where it came from) and the rest of the node starts as usual, without the part that cannot work.

pub mod keys;
mod prepare;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

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
    pub fn current(env: &BTreeMap<String, String>, users: &crate::users::UserDb) -> Agent {
        let uid = crate::sys::peercred::effective_uid();
        Agent {
            root: uid == 0,
            user: users.user_by_uid(uid).map(|u| u.name.clone()),
            path: env.get("PATH").cloned(),
            scratch: crate::writable::scratch_dir(env).0,
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
    if role.def.services.contains_key(SSHD_SERVICE) {
        if !agent.root && agent.user.is_none() {
            // An arbitrary uid (OpenShift) is named only through nss_wrapper, as `spark` (or
            // SPARK_USER_NAME), a name that already belongs to uid 185: a login names a user, and
            // a non-root sshd can only let in the user it runs as, so no login could reach it.
            problems.push(Diagnostic::new(
                SSH_ROLE,
                format!(
                    "ssh: uid {} has no entry of its own in /etc/passwd (an arbitrary uid): a \
                     non-root sshd lets in only the user it runs as, and no login name maps to \
                     this uid; ssh is not started (run as the image's user, 185, or as root)",
                    crate::sys::peercred::effective_uid()
                ),
            ));
            remove_part(role, SSHD_SERVICE);
        } else {
            apply_ssh(role, config, agent, &mut problems);
        }
    }
    if role.def.services.contains_key(NSLCD_SERVICE) {
        if let Err(p) = check_ldap(config, agent) {
            problems.push(p);
            remove_part(role, NSLCD_SERVICE);
        } else {
            problems.extend(ldap_reachability(config));
        }
    }
    problems
}

fn apply_ssh(
    role: &mut LoadedRole,
    config: &mut ResolvedConfig,
    agent: &Agent,
    problems: &mut Vec<Diagnostic>,
) {
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
    // Who reads the injected keys: the Spark user under a root agent, else the agent itself.
    let keys_user = if agent.root || allow.is_empty() {
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
    if let Some(path) = &agent.path {
        derived(config, "ssh.login_path", path.clone(), "the agent's PATH");
    }
    if !agent.root {
        writable_ssh_dirs(config, agent, problems);
        // A non-root agent has no capabilities to give: sshd runs as the agent with none.
        if let Some(spec) = role.def.services.get_mut(SSHD_SERVICE) {
            spec.capabilities.clear();
        }
    }
}

/// The `ldap` part can run: a root agent, a well-formed URI, the CA file when one is named.
fn check_ldap(config: &ResolvedConfig, agent: &Agent) -> Result<(), Diagnostic> {
    let Some(uri) = config.settings.get(LDAP_URI_SETTING) else {
        return Ok(());
    };
    if !agent.root {
        return Err(problem(
            &uri.source,
            format!(
                "{LDAP_URI_SETTING}: LDAP users need the agent to run as root (nslcd, PAM); \
                 LDAP is not started"
            ),
        ));
    }
    for one in uri.value.split_whitespace() {
        if ldap_host_port(one).is_none() {
            return Err(problem(
                &uri.source,
                format!(
                    "{LDAP_URI_SETTING}: {one:?} is not an LDAP URI (ldap://HOST[:PORT] or \
                     ldaps://HOST[:PORT]); LDAP is not started"
                ),
            ));
        }
    }
    if let Some(ca) = config.settings.get("ldap.tls_cacert") {
        let path = ca.value.trim();
        if !path.is_empty() && !Path::new(path).is_file() {
            return Err(problem(
                &ca.source,
                format!(
                    "ldap.tls_cacert: CA file {path:?} does not exist or is not a file; LDAP is \
                     not started"
                ),
            ));
        }
    }
    Ok(())
}

/// `(host, port)` of an `ldap://` or `ldaps://` URI (default ports 389 and 636).
pub fn ldap_host_port(uri: &str) -> Option<(String, u16)> {
    let (rest, default) = if let Some(r) = uri.strip_prefix("ldap://") {
        (r, 389)
    } else if let Some(r) = uri.strip_prefix("ldaps://") {
        (r, 636)
    } else {
        return None;
    };
    let hostport = rest.split('/').next().unwrap_or_default();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (hostport, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || !crate::config::validate::valid_host(host) {
        return None;
    }
    Some((host.to_string(), port))
}

/// A warning for every LDAP server that does not accept a TCP connection now. nslcd still starts
/// (it reconnects when the server comes up); logins through LDAP fail until then.
fn ldap_reachability(config: &ResolvedConfig) -> Vec<Diagnostic> {
    use std::net::{TcpStream, ToSocketAddrs};
    let Some(uri) = config.settings.get(LDAP_URI_SETTING) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for one in uri.value.split_whitespace() {
        let Some((host, port)) = ldap_host_port(one) else {
            continue;
        };
        let reached = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())
            .and_then(|mut addrs| {
                let addr = addrs.next().ok_or_else(|| "no address".to_string())?;
                TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = reached {
            out.push(problem(
                &uri.source,
                format!(
                    "{LDAP_URI_SETTING}: LDAP server {one} is unreachable ({e}); nslcd starts and \
                     retries, LDAP logins fail until it answers"
                ),
            ));
        }
    }
    out
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
        if crate::writable::is_writable(Path::new(&current.value)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_uris() {
        assert_eq!(
            ldap_host_port("ldap://ldap.example.org"),
            Some(("ldap.example.org".into(), 389))
        );
        assert_eq!(
            ldap_host_port("ldaps://10.0.0.1:1636/"),
            Some(("10.0.0.1".into(), 1636))
        );
        assert_eq!(ldap_host_port("http://x"), None);
        assert_eq!(ldap_host_port("ldap://"), None);
        assert_eq!(ldap_host_port("ldap://bad host"), None);
    }
}
