//! Gathering what is injected into the container: the environment, the files it names
//! (cluster file, configmeta.json, `<NAME>_FILE` values), the hostname/FQDN and the `/data` mount.
//! The only module of `config` that reads the outside world; resolution (`config::runtime`) is pure.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::config::configmeta;
use crate::config::env as vars;
use crate::config::limits::{self, InputKind};
use crate::config::role::DurationSpec;
use crate::config::source::SourceText;
use crate::config::validate::valid_host;
use crate::error::{Diagnostic, Diagnostics};
use crate::sys::watch;

/// The value of a `<NAME>_FILE` variable: the file's contents, trailing newline trimmed.
/// `Debug` shows the file, not the value (it is usually a secret).
#[derive(Clone, PartialEq, Eq)]
pub struct FileValue {
    /// The value read.
    pub value: String,
    /// The file it was read from.
    pub file: String,
}

impl std::fmt::Debug for FileValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileValue(<redacted>, {})", self.file)
    }
}

/// Everything read from outside, gathered once so resolution is pure and testable.
/// `Debug` lists the environment's names only: its values may be secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// The process environment.
    pub env: BTreeMap<String, String>,
    /// `<NAME>_FILE` values by NAME (only for the names sparkvisor honours).
    pub file_values: BTreeMap<String, FileValue>,
    /// The cluster file (`SPARKVISOR_CONFIG`), when set.
    pub cluster_file: Option<SourceText>,
    /// KubeDirector's configmeta.json, when present.
    pub configmeta: Option<SourceText>,
    /// The kernel's hostname.
    pub hostname: String,
    /// The FQDN found for it (from /etc/hosts or the domain name), else the hostname.
    pub fqdn: String,
    /// Where `fqdn` came from (`/etc/hosts`, `/proc/sys/kernel/domainname`, `hostname`).
    pub fqdn_from: String,
    /// True when `/data` is a mount point (work and scratch directories go there).
    pub data_mounted: bool,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("file_values", &self.file_values)
            .field("cluster_file", &self.cluster_file.as_ref().map(|c| &c.path))
            .field("configmeta", &self.configmeta.as_ref().map(|c| &c.path))
            .field("hostname", &self.hostname)
            .field("fqdn", &self.fqdn)
            .field("fqdn_from", &self.fqdn_from)
            .field("data_mounted", &self.data_mounted)
            .finish()
    }
}

impl Inputs {
    /// Reads what `env` points at: SPARKVISOR_CONFIG (YAML or JSON), configmeta.json
    /// (SPARKVISOR_CONFIGMETA, default /etc/guestconfig/configmeta.json; optionally waits for it:
    /// `SPARKVISOR_CONFIGMETA_WAIT=<duration>`), `<NAME>_FILE` secrets, the hostname/FQDN.
    pub fn gather(env: BTreeMap<String, String>) -> Result<Inputs, Diagnostics> {
        let (inputs, problems) = Inputs::gather_all(env);
        problems.into_result(inputs)
    }

    /// Like [`Inputs::gather`], but always returns what could be read, with the problems beside it,
    /// so that a caller can go on resolving and report every problem at once.
    pub fn gather_all(env: BTreeMap<String, String>) -> (Inputs, Diagnostics) {
        let mut problems = Diagnostics::default();
        let mut file_values = BTreeMap::new();
        for name in vars::file_capable_names() {
            let var = format!("{name}_FILE");
            let Some(path) = env.get(&var).filter(|p| !p.is_empty()) else {
                continue;
            };
            match limits::read_text(path, InputKind::ValueFile) {
                Ok(text) => {
                    let value = text.trim_end_matches(['\n', '\r']).to_string();
                    file_values.insert(
                        name.to_string(),
                        FileValue {
                            value,
                            file: path.clone(),
                        },
                    );
                }
                Err(e) => problems.push(Diagnostic::new(
                    path.clone(),
                    format!("cannot read the file named by {var}: {e}"),
                )),
            }
        }
        let cluster_file = env
            .get(vars::CONFIG_VAR)
            .filter(|p| !p.is_empty())
            .and_then(
                |path| match limits::read_text(path, InputKind::ClusterFile) {
                    Ok(text) => Some(SourceText::new(path.clone(), text)),
                    Err(e) => {
                        problems.push(Diagnostic::new(
                            path.clone(),
                            format!("cannot read the cluster file ({}): {e}", vars::CONFIG_VAR),
                        ));
                        None
                    }
                },
            );
        let configmeta = read_configmeta(&env, &mut problems);
        let hostname = crate::sys::host::hostname()
            .or_else(|| crate::sys::procfs::read("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
        let domain = crate::sys::procfs::read("/proc/sys/kernel/domainname").unwrap_or_default();
        let (fqdn, fqdn_from) = find_fqdn(&hostname, &hosts, &domain);
        let mountinfo = crate::sys::mountinfo::read_self();
        let inputs = Inputs {
            env,
            file_values,
            cluster_file,
            configmeta,
            hostname,
            fqdn,
            fqdn_from,
            data_mounted: is_mount_point(&mountinfo, "/data"),
        };
        (inputs, problems)
    }
}

/// Reads configmeta.json. A missing default file is fine (not on KubeDirector); a missing explicit
/// one is an error. With SPARKVISOR_CONFIGMETA_WAIT, first waits until the file exists and parses (it
/// is written after the container starts), re-checking whenever it is created, renamed into place
/// or rewritten (inotify, [`crate::sys::watch`]), up to the deadline: a bounded wait before anything
/// starts, never during supervision.
fn read_configmeta(
    env: &BTreeMap<String, String>,
    problems: &mut Diagnostics,
) -> Option<SourceText> {
    let explicit = env.get(vars::CONFIGMETA_VAR).filter(|p| !p.is_empty());
    let path = explicit
        .cloned()
        .unwrap_or_else(|| vars::DEFAULT_CONFIGMETA.to_string());
    let wait = match env.get(vars::CONFIGMETA_WAIT_VAR).filter(|w| !w.is_empty()) {
        Some(text) => match DurationSpec::parse(text) {
            Ok(d) => Some(d.0),
            Err(message) => {
                problems.push(Diagnostic::new(
                    format!("env {}", vars::CONFIGMETA_WAIT_VAR),
                    message,
                ));
                None
            }
        },
        None => None,
    };
    let mut watch_error = None;
    if let Some(wait) = wait {
        log::info!(
            "waiting up to {} for {path} ({})",
            DurationSpec(wait),
            vars::CONFIGMETA_WAIT_VAR
        );
        let parses = || {
            limits::read_text(&path, InputKind::Configmeta)
                .is_ok_and(|text| configmeta::parse(&SourceText::new(path.clone(), text)).is_ok())
        };
        if let Err(e) = watch::wait_until(Path::new(&path), Instant::now() + wait, parses) {
            watch_error = Some(e);
        }
    }
    // After the wait, the file as it is: one that still does not parse is reported by the parser.
    match limits::read_text(&path, InputKind::Configmeta) {
        Ok(text) => Some(SourceText::new(path, text)),
        Err(e) if e.is_not_found() => {
            match (wait, watch_error) {
                (Some(_), Some(watch_error)) => problems.push(Diagnostic::new(
                    path,
                    format!(
                        "cannot wait for configmeta.json ({}): {watch_error}",
                        vars::CONFIGMETA_WAIT_VAR
                    ),
                )),
                (Some(w), None) => problems.push(Diagnostic::new(
                    path,
                    format!(
                        "configmeta.json did not appear within {} ({})",
                        DurationSpec(w),
                        vars::CONFIGMETA_WAIT_VAR
                    ),
                )),
                (None, _) if explicit.is_some() => problems.push(Diagnostic::new(
                    path,
                    format!(
                        "cannot read configmeta.json ({}): {e}",
                        vars::CONFIGMETA_VAR
                    ),
                )),
                (None, _) => {}
            }
            None
        }
        Err(e) => {
            problems.push(Diagnostic::new(
                path,
                format!("cannot read configmeta.json: {e}"),
            ));
            None
        }
    }
}

/// The FQDN for `hostname`: a dotted name starting with `hostname.` on an /etc/hosts line that
/// names the host (what `hostname -f` finds on Docker and Kubernetes), else `hostname.domainname`
/// when the kernel domain name is set (`docker run --domainname`), else the hostname itself.
pub fn find_fqdn(hostname: &str, hosts: &str, domainname: &str) -> (String, String) {
    let prefix = format!("{hostname}.");
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        let names_host = names
            .iter()
            .any(|n| *n == hostname || n.starts_with(&prefix));
        if !names_host {
            continue;
        }
        if let Some(fqdn) = names
            .iter()
            .find(|n| n.starts_with(&prefix) && n.len() > prefix.len())
        {
            return (fqdn.to_string(), "/etc/hosts".to_string());
        }
    }
    let domain = domainname.trim();
    if !domain.is_empty() && domain != "(none)" && valid_host(domain) {
        return (
            format!("{hostname}.{domain}"),
            "/proc/sys/kernel/domainname".to_string(),
        );
    }
    (hostname.to_string(), "hostname".to_string())
}

/// True when `/proc/self/mountinfo` lists `path` as a mount point.
pub fn is_mount_point(mountinfo: &str, path: &str) -> bool {
    crate::sys::mountinfo::is_mount_point(mountinfo, std::path::Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_from_hosts_and_domain() {
        let hosts = "127.0.0.1 localhost\n10.1.2.3 kdss-x-0.kdhs-y.ns.svc.cluster.local kdss-x-0\n";
        assert_eq!(
            find_fqdn("kdss-x-0", hosts, "(none)").0,
            "kdss-x-0.kdhs-y.ns.svc.cluster.local"
        );
        assert_eq!(
            find_fqdn("abc", "172.18.0.2 abc\n", "example.org\n"),
            (
                "abc.example.org".to_string(),
                "/proc/sys/kernel/domainname".to_string()
            )
        );
        assert_eq!(find_fqdn("abc", "172.18.0.2 abc\n", "(none)").0, "abc");
    }
}
