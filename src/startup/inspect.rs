//! `sparkvisor inspect`: the resolved config with each value's source, the detected resources and
//! the sizing, as text or JSON. Secrets are redacted ([`crate::config::Secret`] never serialises its value).

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::config::{ResolvedConfig, Source};
use crate::resources::{Resources, Sizing};
use crate::startup::conf_merge::ConfReport;

/// What `inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The resolved config (secrets redacted).
    pub config: ResolvedConfig,
    /// The detected limits and where they came from.
    pub resources: Resources,
    /// The derived Spark sizing.
    pub sizing: Sizing,
    /// Spark's conf files: whose each is, and where each value comes from (a user's file, the
    /// agent's block and its input); or why they could not be prepared.
    pub conf_files: ConfFiles,
}

/// The conf files part of the report (JSON: the report itself, or `{"error": "..."}`).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ConfFiles {
    /// Whose each file and value is.
    Report(ConfReport),
    /// Why the files could not be prepared (what `check` and `run` refuse).
    Error {
        /// The problems, one a line.
        error: String,
    },
}

/// Builds the report (the seam the lead wires role loading into).
pub fn inspect_report(
    config: ResolvedConfig,
    resources: Resources,
    sizing: Sizing,
    conf_files: Result<ConfReport, String>,
) -> Report {
    Report {
        config,
        resources,
        sizing,
        conf_files: match conf_files {
            Ok(report) => ConfFiles::Report(report),
            Err(error) => ConfFiles::Error { error },
        },
    }
}

impl Report {
    /// The JSON document (`inspect --json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
    }
}

/// Shows a value on one line: control characters and quotes escaped, so an injected newline or
/// escape sequence cannot forge report lines or drive the terminal.
fn one_line(value: &str) -> String {
    if value.chars().any(char::is_control) || value.is_empty() {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

const MIB: u64 = 1024 * 1024;

fn row(out: &mut String, width: usize, name: &str, value: &str, source: &Source) {
    let _ = writeln!(out, "  {name:<width$}  {value}  ({source})");
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "role: {}  ({})",
            one_line(&c.role.value),
            c.role.source
        );
        let _ = writeln!(out, "node:");
        row(
            &mut out,
            8,
            "hostname",
            &one_line(&c.node.hostname.value),
            &c.node.hostname.source,
        );
        row(
            &mut out,
            8,
            "fqdn",
            &one_line(&c.node.fqdn.value),
            &c.node.fqdn.source,
        );

        let _ = writeln!(out, "peers:");
        if c.peers.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        let width = c.peers.keys().map(String::len).max().unwrap_or(0);
        for (role, hosts) in &c.peers {
            let list = hosts
                .value
                .iter()
                .map(|h| one_line(h))
                .collect::<Vec<_>>()
                .join(", ");
            row(&mut out, width, role, &list, &hosts.source);
        }

        let _ = writeln!(out, "settings:");
        let width = c.settings.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in &c.settings {
            row(&mut out, width, key, &one_line(&value.value), &value.source);
        }
        let _ = writeln!(out, "spark_conf:");
        if c.spark_conf.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        let width = c.spark_conf.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in &c.spark_conf {
            row(&mut out, width, key, &one_line(&value.value), &value.source);
        }
        let _ = writeln!(out, "secrets:");
        if c.secrets.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        let width = c.secrets.keys().map(String::len).max().unwrap_or(0);
        for (key, secret) in &c.secrets {
            row(&mut out, width, key, "<redacted>", &secret.source);
        }

        let r = &self.resources;
        let _ = writeln!(out, "resources (cgroup {}):", r.cgroup);
        let quota = r
            .cpu_quota
            .map_or("none".to_string(), |q| format!("{q} cores"));
        let cpuset = r.cpuset_cpus.map_or("-".to_string(), |n| n.to_string());
        let _ = writeln!(
            out,
            "  cpus: host {}, cpuset {cpuset}, visible {}, quota {quota}",
            r.host_cpus, r.visible_cpus
        );
        let limit = r.memory_limit.map_or("none".to_string(), |m| {
            format!("{} MiB ({m} bytes)", m / MIB)
        });
        let _ = writeln!(
            out,
            "  memory: host {} MiB, limit {limit}",
            r.host_memory / MIB
        );
        for source in &r.sources {
            let _ = writeln!(out, "  - {}", one_line(source));
        }

        let s = &self.sizing;
        let _ = writeln!(out, "sizing:");
        let cpus = s.cpus.value.to_string();
        row(&mut out, 16, "cpus", &cpus, &s.cpus.source);
        row(
            &mut out,
            16,
            "worker_cores",
            &s.worker_cores.value.to_string(),
            &s.worker_cores.source,
        );
        for (name, v) in [
            ("worker_memory_mb", &s.worker_memory_mb),
            ("daemon_memory_mb", &s.daemon_memory_mb),
            ("memory_mb", &s.memory_mb),
            ("overhead_mb", &s.overhead_mb),
        ] {
            row(&mut out, 16, name, &v.value.to_string(), &v.source);
        }
        for note in &s.notes {
            let _ = writeln!(out, "  note: {}", one_line(note));
        }
        match &self.conf_files {
            ConfFiles::Report(conf) => {
                let _ = write!(out, "{conf}");
            }
            ConfFiles::Error { error: problems } => {
                let _ = writeln!(out, "conf files: cannot be prepared:");
                for line in problems.lines() {
                    let _ = writeln!(out, "  {}", one_line(line));
                }
            }
        }
        f.write_str(&out)
    }
}
