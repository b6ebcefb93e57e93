//! Role definitions: one YAML file per role in the roles directory (schema in docs/roles.md).
//!
//! These types are the contract between parsing/validation (this module), rendering (`render`, which
//! expands the `{{ }}` in commands, paths and environment values) and supervision (`supervisor`).
//! Parsing is strict: unknown keys and wrong types are errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::source::SourceText;
use crate::error::{Diagnostic, Diagnostics};

mod names;
mod one_of;
mod validate;
mod wait;

pub use names::{capability_known, signal_known};
pub use one_of::OneOf;
pub use validate::{parse_octal, template_name_problem};
pub use wait::{endpoints_of, Target, WaitFor};

/// A role as written in its YAML file (before template expansion).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// One line for `check` and `inspect`.
    #[serde(default)]
    pub description: String,
    /// Roles whose render entries, defaults and services this role includes (e.g. `all-in-one`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Default settings (dotted keys), lowest precedence of all sources.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Warnings logged at every start and reload (and printed by `check` and `render`): each is
    /// expanded like a service string, and one that expands to blank text says nothing. A role
    /// warns this way about a setting that weakens it (the notebook's `notebook.authentication`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Files rendered before any service starts.
    #[serde(default)]
    pub render: Vec<RenderSpec>,
    /// The role's services by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSpec>,
    /// Changes to services defined by included roles (e.g. all-in-one makes the worker start
    /// `after: [spark-master]`). Applied when the includes are merged; empty in a [`LoadedRole`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adjust: BTreeMap<String, ServiceAdjust>,
}

/// How an including role changes a service it got from an included role. Every field is optional;
/// `after`, `forward_signals` and `agent_signals` are added to the included lists, `environment` is merged over the
/// included one (a key set here wins), the other fields replace the included value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAdjust {
    /// Replaces the argv.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Merged over the included environment.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Added to the included `after`.
    #[serde(default)]
    pub after: Vec<String>,
    /// Added to the included `forward_signals`.
    #[serde(default)]
    pub forward_signals: Vec<String>,
    /// Added to the included `agent_signals`.
    #[serde(default)]
    pub agent_signals: Vec<String>,
    /// Replaces the user.
    #[serde(default)]
    pub user: Option<String>,
    /// Replaces the readiness probe.
    #[serde(default)]
    pub ready: Option<Probe>,
    /// Replaces the liveness probe.
    #[serde(default)]
    pub health: Option<Probe>,
    /// Replaces the restart policy.
    #[serde(default)]
    pub restart: Option<RestartPolicy>,
    /// Replaces `critical`.
    #[serde(default)]
    pub critical: Option<bool>,
    /// Replaces the stop signal and grace.
    #[serde(default)]
    pub stop: Option<StopSpec>,
    /// Replaces how a `spark-class` command starts.
    #[serde(default)]
    pub launch: Option<Launch>,
}

impl ServiceAdjust {
    /// Applies this adjustment to `service`.
    pub fn apply(&self, service: &mut ServiceSpec) {
        if let Some(command) = &self.command {
            service.command.clone_from(command);
        }
        for (k, v) in &self.environment {
            service.environment.insert(k.clone(), v.clone());
        }
        for a in &self.after {
            if !service.after.contains(a) {
                service.after.push(a.clone());
            }
        }
        for s in &self.forward_signals {
            if !service.forward_signals.contains(s) {
                service.forward_signals.push(s.clone());
            }
        }
        for s in &self.agent_signals {
            if !service.agent_signals.contains(s) {
                service.agent_signals.push(s.clone());
            }
        }
        if let Some(user) = &self.user {
            service.user = Some(user.clone());
        }
        if let Some(ready) = &self.ready {
            service.ready = Some(ready.clone());
        }
        if let Some(health) = &self.health {
            service.health = Some(health.clone());
        }
        if let Some(restart) = self.restart {
            service.restart = restart;
        }
        if let Some(critical) = self.critical {
            service.critical = critical;
        }
        if let Some(stop) = &self.stop {
            service.stop = stop.clone();
        }
        if let Some(launch) = self.launch {
            service.launch = launch;
        }
    }
}

/// Environment variable naming the roles directory.
pub const ROLES_ENV: &str = "SPARKVISOR_ROLES";
/// Environment variable naming the templates directory.
pub const TEMPLATES_ENV: &str = "SPARKVISOR_TEMPLATES";
/// Where the image ships the built-in roles.
pub const DEFAULT_ROLES_DIR: &str = "/etc/sparkvisor/roles";
/// Where the image ships the built-in templates.
pub const DEFAULT_TEMPLATES_DIR: &str = "/etc/sparkvisor/templates";

/// The roles directory: `SPARKVISOR_ROLES`, default `/etc/sparkvisor/roles`.
pub fn roles_dir(env: &BTreeMap<String, String>) -> PathBuf {
    dir_from_env(env, ROLES_ENV, DEFAULT_ROLES_DIR)
}

/// The templates directory: `SPARKVISOR_TEMPLATES`, default `/etc/sparkvisor/templates`.
pub fn templates_dir(env: &BTreeMap<String, String>) -> PathBuf {
    dir_from_env(env, TEMPLATES_ENV, DEFAULT_TEMPLATES_DIR)
}

fn dir_from_env(env: &BTreeMap<String, String>, var: &str, default: &str) -> PathBuf {
    match env.get(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(default),
    }
}

/// A role loaded from its file with every `include:` merged in and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRole {
    /// The role name (the file name without `.yaml`).
    pub name: String,
    /// The role's own file.
    pub file: PathBuf,
    /// The merged definition: included render entries, defaults and services first, then this
    /// role's own, with `adjust:` applied (so `def.adjust` is empty).
    pub def: RoleDef,
    /// The file each service was defined in (an included role's file for included services).
    pub service_files: BTreeMap<String, PathBuf>,
    /// The file each `def.render` entry was written in (same order as `def.render`).
    pub render_files: Vec<PathBuf>,
    /// The text of every role file merged in (this role's and its includes'), kept so that a
    /// problem found later (by validation or rendering) is placed without reading the file again.
    pub sources: BTreeMap<PathBuf, SourceText>,
}

impl LoadedRole {
    /// A diagnostic in role file `file` at the first `needle` after `anchor` (see
    /// [`SourceText::find`]); about the whole file when its text is not held or `needle` is not in it.
    pub fn diagnostic_in(
        &self,
        file: &Path,
        anchor: Option<&str>,
        needle: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        match self.sources.get(file) {
            Some(source) => source.diagnostic_at(anchor, needle, message),
            None => Diagnostic::new(file.display().to_string(), message),
        }
    }

    /// The file a service was defined in (the role's own file when unknown).
    pub fn file_of_service(&self, service: &str) -> &Path {
        self.service_files
            .get(service)
            .map_or(self.file.as_path(), PathBuf::as_path)
    }
}

/// The file of role `name` in `dir`: `NAME.yaml`, else `NAME.yml`.
pub fn role_file(dir: &Path, name: &str) -> PathBuf {
    let yaml = dir.join(format!("{name}.yaml"));
    if !yaml.exists() {
        let yml = dir.join(format!("{name}.yml"));
        if yml.exists() {
            return yml;
        }
    }
    yaml
}

/// Loads role `name` from `dir`, merges its includes and validates it; every problem found is
/// reported at once, each with its file and (where known) line and column.
pub fn load_role(dir: &Path, name: &str) -> Result<LoadedRole, Diagnostics> {
    let mut diags = Diagnostics::default();
    if let Err(why) = crate::config::validate::check_role_name(name) {
        diags.push(Diagnostic::new(
            role_file(dir, name).display().to_string(),
            why,
        ));
        return Err(diags);
    }
    let file = role_file(dir, name);
    if !file.is_file() {
        let known = list_role_names(dir).unwrap_or_default();
        diags.push(Diagnostic::new(
            file.display().to_string(),
            format!(
                "no role {name:?} in {} (known roles: {})",
                dir.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
        return Err(diags);
    }
    let mut stack = Vec::new();
    let merged = validate::merge(dir, name, &mut stack, &mut diags);
    let Some(role) = merged else {
        return Err(diags);
    };
    validate::check_role(&role, &mut diags);
    diags.into_result(role)
}

/// [`load_role`], then the add-on roles `addons` merged in as if the role included them (how
/// settings such as `SPARKVISOR_SSH=true` add a service to any role; see `access`).
pub fn load_role_with_addons(
    dir: &Path,
    name: &str,
    addons: &[&str],
) -> Result<LoadedRole, Diagnostics> {
    let mut role = load_role(dir, name)?;
    if addons.is_empty() {
        return Ok(role);
    }
    let mut diags = Diagnostics::default();
    for addon in addons {
        validate::merge_addon(&mut role, dir, addon, &mut diags);
    }
    if diags.is_empty() {
        validate::check_role(&role, &mut diags);
    }
    diags.into_result(role)
}

/// The role names in `dir`, sorted.
pub fn list_role_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str());
        if matches!(ext, Some("yaml" | "yml")) && path.is_file() {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.insert(stem.to_string());
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// A role name as the config resolver accepts it (`config::runtime::check_role_name`).
fn valid_role_name(name: &str) -> bool {
    crate::config::validate::check_role_name(name).is_ok()
}

/// One file to render.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenderSpec {
    /// Template path relative to the templates directory.
    pub template: String,
    /// Destination path (itself a template, e.g. `{{ spark.conf_dir }}/spark-env.sh`).
    pub to: String,
    /// Octal mode such as `"0644"`; default 0644, 0600 when `secret` is true.
    #[serde(default)]
    pub mode: Option<String>,
    /// Owner `user[:group]` (name or number, may use `{{ }}`); default: the agent's user (root) for
    /// plain files; for secret files the `user` of the role's first service (by name) that has one.
    #[serde(default)]
    pub owner: Option<String>,
    /// The file holds secrets: mode 0600 and owned by the service user.
    #[serde(default)]
    pub secret: bool,
    /// How a file the user put at the destination (in the Spark conf dir) combines with the
    /// rendered one (docs/conf-files.md); default by format: `keys` for `.properties`, `.conf`
    /// and `.xml`, `append` for `.sh`; other formats are the agent's alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeMode>,
}

/// How the agent's rendered conf file and the user's file at the same place combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Key/value files (Java properties, Hadoop XML): the user's keys win, the agent's fill in.
    Keys,
    /// Sourced shell: the user's lines run after the agent's, so theirs win.
    Append,
    /// A user's file is used whole; the agent's is written only when there is none.
    None,
}

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// argv; each element may use `{{ }}` (expanded, never split by a shell).
    pub command: Vec<String>,
    /// Extra environment (values may use `{{ }}`).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `name`, `uid` or `uid:gid`; default: the agent's own user.
    #[serde(default)]
    pub user: Option<String>,
    /// Primary group (name or gid); default: the user's primary group.
    #[serde(default)]
    pub group: Option<String>,
    /// Supplementary groups (names or gids); default: the user's groups from /etc/group.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// The only capabilities this service keeps (e.g. `NET_BIND_SERVICE`); default none.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Working directory (may use `{{ }}`); default `/`... or the user's home when it exists.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Octal umask, default `"0022"`.
    #[serde(default)]
    pub umask: Option<String>,
    /// Start only when these services are ready.
    #[serde(default)]
    pub after: Vec<String>,
    /// Before its first start (and a start after a stop), wait until a remote endpoint answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<WaitFor>,
    /// Readiness probe; without one a service is ready once it has run for `okay_delay`.
    #[serde(default)]
    pub ready: Option<Probe>,
    /// Liveness probe while running: failing past its threshold restarts the service.
    #[serde(default)]
    pub health: Option<Probe>,
    /// When to restart.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// A critical service that fails for good stops the container with its exit code.
    #[serde(default = "default_true")]
    pub critical: bool,
    /// How to stop it.
    #[serde(default)]
    pub stop: StopSpec,
    /// Signals PID 1 receives that are forwarded to this service's process group (e.g. `PWR`).
    #[serde(default)]
    pub forward_signals: Vec<String>,
    /// Stop and reload signals (`HUP`, `TERM`, `INT`) this service may send to the agent itself
    /// and have obeyed. Default none: the agent ignores them from a service, so a service cannot
    /// make it reload role files it may have changed, or stop the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_signals: Vec<String>,
    /// Restart backoff; defaults follow Pebble (0.5 s doubling to 30 s).
    #[serde(default)]
    pub backoff: BackoffSpec,
    /// How a `spark-class` command starts: `java` (default) execs the daemon's JVM directly with the
    /// command line Spark's launcher would build; `spark-class` runs the script as written.
    #[serde(default)]
    pub launch: Launch,
}

/// How a service whose command is Spark's `bin/spark-class` is started (see `docs/spark-launch.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Launch {
    /// Build the JVM's command line in the agent and exec `java` (no launcher JVM, no leftover
    /// `bash` zombie); falls back to `spark-class` when the Spark version or config is not one the
    /// agent can reproduce exactly.
    #[default]
    Java,
    /// Run `spark-class` as written.
    SparkClass,
}

fn default_true() -> bool {
    true
}

/// Restart policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart whenever it ends.
    #[default]
    Always,
    /// Restart only when it ends with a non-zero code or a signal.
    OnFailure,
    /// Never restart.
    Never,
}

/// A readiness or liveness probe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// `GET` this URL (may use `{{ }}`); 2xx is success.
    #[serde(default)]
    pub http: Option<String>,
    /// With `http`: the JSON body must have these top-level fields equal to this string, or to
    /// one of a list (e.g. `{ status: [ALIVE, STANDBY] }` for the Spark master's `/json/`).
    #[serde(default)]
    pub json: Option<BTreeMap<String, OneOf>>,
    /// Connect to `host:port` (may use `{{ }}`).
    #[serde(default)]
    pub tcp: Option<String>,
    /// Run this argv; exit 0 is success.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// Time between attempts.
    #[serde(default = "default_probe_interval")]
    pub interval: DurationSpec,
    /// Time one attempt may take.
    #[serde(default = "default_probe_timeout")]
    pub timeout: DurationSpec,
    /// Consecutive results needed to change state.
    #[serde(default = "default_probe_threshold")]
    pub threshold: u32,
}

fn default_probe_interval() -> DurationSpec {
    DurationSpec(Duration::from_secs(1))
}
fn default_probe_timeout() -> DurationSpec {
    DurationSpec(Duration::from_secs(1))
}
fn default_probe_threshold() -> u32 {
    3
}

/// How a service is stopped: `signal` to its process group, `grace`, then SIGKILL to the group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
    /// Signal name without or with the `SIG` prefix.
    #[serde(default = "default_stop_signal")]
    pub signal: String,
    /// Time allowed before SIGKILL.
    #[serde(default = "default_grace")]
    pub grace: DurationSpec,
    /// A drain step before `signal` (e.g. a Spark worker's decommission on SIGPWR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainSpec>,
}

impl Default for StopSpec {
    fn default() -> Self {
        Self {
            signal: default_stop_signal(),
            grace: default_grace(),
            drain: None,
        }
    }
}

/// The drain step of a stop: `signal` first, then `signal` of the stop once `until` passes or
/// `grace` is over (whichever comes first); the stop's own grace stays reserved within the
/// agent's total shutdown grace. Used on a stop or shutdown, not on restarts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DrainSpec {
    /// Signal that asks the service to drain (e.g. `PWR`).
    pub signal: String,
    /// Longest drain.
    pub grace: DurationSpec,
    /// A probe that passes once draining is done (optional: without it the whole grace is used).
    #[serde(default)]
    pub until: Option<Probe>,
}

fn default_stop_signal() -> String {
    "TERM".to_string()
}
fn default_grace() -> DurationSpec {
    DurationSpec(Duration::from_secs(8))
}

/// Restart backoff: `initial`, multiplied by `factor` per failure up to `limit`; reset after a run
/// as long as `limit`. `max_failures` within `window` marks the service failed for good.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffSpec {
    /// First delay.
    pub initial: DurationSpec,
    /// Multiplier per consecutive failure.
    pub factor: f64,
    /// Largest delay, and the stable-run time that resets the backoff.
    pub limit: DurationSpec,
    /// Failures within `window` that mark the service failed (0 = never give up).
    pub max_failures: u32,
    /// The crash-loop window.
    pub window: DurationSpec,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        Self {
            initial: DurationSpec(Duration::from_millis(500)),
            factor: 2.0,
            limit: DurationSpec(Duration::from_secs(30)),
            max_failures: 10,
            window: DurationSpec(Duration::from_secs(300)),
        }
    }
}

/// A duration written as `500ms`, `10s`, `2m`, `1h` or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    /// Parses `500ms`, `1.5s`, `10s`, `2m`, `1h`, or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
            Some(i) => t.split_at(i),
            None => (t, "s"),
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 10s, 2m"))?;
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" | "" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m or h)"
                ))
            }
        };
        if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
            return Err(format!("invalid duration {text:?}: out of range"));
        }
        Ok(DurationSpec(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => DurationSpec::parse(&n.to_string()).map_err(serde::de::Error::custom),
            Raw::Text(t) => DurationSpec::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            DurationSpec::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            DurationSpec::parse("10s").unwrap().0,
            Duration::from_secs(10)
        );
        assert_eq!(
            DurationSpec::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(DurationSpec::parse("3").unwrap().0, Duration::from_secs(3));
        assert!(DurationSpec::parse("10x").is_err());
        assert!(DurationSpec::parse("-1s").is_err());
        assert!(DurationSpec::parse("").is_err());
    }
}
