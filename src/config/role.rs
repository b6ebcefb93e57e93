//! Role definitions: one YAML file per role in the roles directory (schema in the README).
//!
//! These types are the contract between parsing/validation (this module), rendering (`render`, which
//! expands the `{{ }}` in commands, paths and environment values) and supervision (`supervisor`).
//! Parsing is strict: unknown keys and wrong types are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

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
    /// Files rendered before any service starts.
    #[serde(default)]
    pub render: Vec<RenderSpec>,
    /// The role's services by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSpec>,
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
    /// Owner `user[:group]` (name or number); default: the user of the role's first service, else root.
    #[serde(default)]
    pub owner: Option<String>,
    /// The file holds secrets: mode 0600 and owned by the service user.
    #[serde(default)]
    pub secret: bool,
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
    /// Restart backoff; defaults follow Pebble (0.5 s doubling to 30 s).
    #[serde(default)]
    pub backoff: BackoffSpec,
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
    /// With `http`: the JSON body must have this top-level field equal to this string
    /// (e.g. `{ status: ALIVE }` for the Spark master's `/json/`).
    #[serde(default)]
    pub json: Option<BTreeMap<String, String>>,
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
}

impl Default for StopSpec {
    fn default() -> Self {
        Self {
            signal: default_stop_signal(),
            grace: default_grace(),
        }
    }
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
