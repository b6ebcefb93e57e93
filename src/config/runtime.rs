//! Resolving the injected runtime config: role defaults < cluster file < configmeta.json < env <
//! `<NAME>_FILE` secrets, each value keeping its [`crate::config::Source`].

use std::collections::BTreeMap;

use crate::config::{ResolvedConfig, Sourced};
use crate::error::{Diagnostic, Diagnostics};

/// A text file read from outside, with the path it came from (for diagnostics and provenance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Path as given (shown in diagnostics and sources).
    pub path: String,
    /// Whole contents.
    pub text: String,
}

/// The value of a `<NAME>_FILE` variable: the file's contents, trailing newline trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileValue {
    /// The value read.
    pub value: String,
    /// The file it was read from.
    pub file: String,
}

/// Everything read from outside, gathered once so resolution is pure and testable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// The process environment.
    pub env: BTreeMap<String, String>,
    /// `<NAME>_FILE` values by NAME (only for the names sparkvisor honours).
    pub file_values: BTreeMap<String, FileValue>,
    /// The cluster file (`SPARKVISOR_CONFIG`), when set.
    pub cluster_file: Option<InputFile>,
    /// KubeDirector's configmeta.json, when present.
    pub configmeta: Option<InputFile>,
    /// The kernel's hostname.
    pub hostname: String,
    /// The FQDN found for it (from /etc/hosts or the domain name), else the hostname.
    pub fqdn: String,
    /// True when `/data` is a mount point (work and scratch directories go there).
    pub data_mounted: bool,
}

impl Inputs {
    /// Reads what `env` points at: SPARKVISOR_CONFIG (YAML or JSON), configmeta.json
    /// (SPARKVISOR_CONFIGMETA, default /etc/guestconfig/configmeta.json; optionally waits for it:
    /// SPARKVISOR_CONFIGMETA_WAIT=<duration>), `<NAME>_FILE` secrets, the hostname/FQDN.
    pub fn gather(env: BTreeMap<String, String>) -> Result<Inputs, Diagnostics> {
        let _ = env;
        Err(Diagnostic::new("config", "not implemented yet").into())
    }
}

/// The node's role: --role flag > SPARKVISOR_ROLE > SPARK_MODE > configmeta node.role_id (mapped
/// through the role map) > cluster file `nodes:` entry for this host > cluster file `role`.
pub fn resolve_role(
    inputs: &Inputs,
    cli_role: Option<&str>,
) -> Result<Sourced<String>, Diagnostics> {
    let _ = (inputs, cli_role);
    Err(Diagnostic::new("config", "not implemented yet").into())
}

/// Everything else, with the role's `defaults:` (from role_file) as the lowest layer.
pub fn resolve(
    inputs: &Inputs,
    role: Sourced<String>,
    role_file: &str,
    role_defaults: &BTreeMap<String, String>,
) -> Result<ResolvedConfig, Diagnostics> {
    let _ = (inputs, role, role_file, role_defaults);
    Err(Diagnostic::new("config", "not implemented yet").into())
}
