//! `wait_for:` — a gate on a remote endpoint (another container) before a service's first start.
//!
//! Why: `after:` orders services inside one container, but a Spark worker in its own container
//! needs the master of another one. Started before the master listens, the worker logs "Failed to
//! connect to master" and waits for Spark's own registration retry (a random 5-15 s). A master whose
//! RPC port is open is not enough either: until it has elected itself leader it answers a worker's
//! registration with "in standby" and the worker again waits for the retry. So the built-in worker
//! waits for a master UI's `/json/` saying `status: ALIVE`.
//!
//! The gate opens as soon as ANY listed endpoint answers (with several masters for HA, any one of
//! them), or when `timeout` passes: the service then starts anyway (Spark retries by itself) and the
//! agent logs that it gave up waiting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DurationSpec, OneOf};

/// One thing to try: a TCP connect, or an HTTP GET (2xx, and the JSON fields when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `host:port`.
    Tcp(String),
    /// `http://host:port/path`.
    Http(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) | Target::Http(a) => f.write_str(a),
        }
    }
}

/// A service's `wait_for:` gate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// Endpoints (each may use `{{ }}`); any one accepting a TCP connection opens the gate. An
    /// entry is `host:port`, or a URL whose authority lists several, as `spark.master_url` does
    /// (`spark://m1:7077,m2:7077`).
    #[serde(default)]
    pub tcp: Vec<String>,
    /// Or: `GET` these URLs (each may use `{{ }}`); an authority may list several hosts
    /// (`http://m1:8080,m2:8080/json/`: one URL per host). 2xx passes, and `json` must match.
    #[serde(default)]
    pub http: Vec<String>,
    /// With `http`: top-level JSON fields the body must have (a value or one of a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<BTreeMap<String, OneOf>>,
    /// Start anyway after this long (logged as a warning).
    #[serde(default = "default_timeout")]
    pub timeout: DurationSpec,
    /// Time between connection rounds while nothing answers.
    #[serde(default = "default_interval")]
    pub interval: DurationSpec,
}

fn default_timeout() -> DurationSpec {
    DurationSpec(std::time::Duration::from_secs(60))
}
fn default_interval() -> DurationSpec {
    DurationSpec(std::time::Duration::from_millis(250))
}

impl WaitFor {
    /// Every target the entries name, in order; an error names the entry that is not one.
    pub fn targets(&self) -> Result<Vec<Target>, String> {
        let mut out = Vec::new();
        for entry in &self.tcp {
            out.extend(endpoints_of(entry)?.into_iter().map(Target::Tcp));
        }
        for url in &self.http {
            let rest = url
                .strip_prefix("http://")
                .ok_or_else(|| format!("wait_for: {url:?} is not an http:// URL"))?;
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            for host in endpoints_of(authority)? {
                out.push(Target::Http(format!("http://{host}{path}")));
            }
        }
        if self.json.is_some() && self.http.is_empty() {
            return Err("wait_for: json needs http".into());
        }
        if out.is_empty() {
            return Err("wait_for: lists no endpoint (give tcp or http)".into());
        }
        Ok(out)
    }

    /// The entries as written (for log lines).
    pub fn describe(&self) -> String {
        self.tcp
            .iter()
            .chain(&self.http)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The `host:port` endpoints of one entry: `host:port`, `h1:p1,h2:p2`, or `scheme://h1:p1,h2:p2[/path]`.
pub fn endpoints_of(entry: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| format!("wait_for: {entry:?} is not host:port[,host:port...] ({why})");
    let rest = match entry.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            rest
        }
        Some(_) => return Err(bad("bad scheme")),
        None => entry,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let mut out = Vec::new();
    for one in authority.split(',') {
        let one = one.trim();
        let (host, port) = match one.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => return Err(bad("no port")),
        };
        let host_ok = if let Some(inner) = host.strip_prefix('[') {
            inner.strip_suffix(']').is_some_and(|ip| !ip.is_empty())
        } else {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        };
        if !host_ok {
            return Err(bad("bad host"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(bad("bad port")),
        }
        out.push(one.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_name_endpoints() {
        let ok = [
            ("spark-master:7077", vec!["spark-master:7077"]),
            ("spark://m1:7077,m2:7077", vec!["m1:7077", "m2:7077"]),
            ("spark://m1:7077/", vec!["m1:7077"]),
            ("[::1]:81", vec!["[::1]:81"]),
            ("zk1:2181, zk2:2181", vec!["zk1:2181", "zk2:2181"]),
        ];
        for (entry, want) in ok {
            assert_eq!(endpoints_of(entry).unwrap(), want, "{entry}");
        }
        for bad in [
            "",
            "m1",
            "spark://m1",
            "m1:0",
            "m1:99999",
            "m 1:7077",
            "://m:1",
            "m1:7077,",
            "$(x):1",
        ] {
            let err = endpoints_of(bad).unwrap_err();
            assert!(err.contains("wait_for"), "{bad}: {err}");
        }
    }

    #[test]
    fn yaml_shape_and_defaults() {
        let w: WaitFor = serde_yaml::from_str("tcp: [\"spark://a:1,b:2\"]").unwrap();
        assert_eq!(w.timeout.0, std::time::Duration::from_secs(60));
        assert_eq!(
            w.targets().unwrap(),
            vec![Target::Tcp("a:1".into()), Target::Tcp("b:2".into())]
        );
        let w: WaitFor =
            serde_yaml::from_str("http: [\"http://m1:8080,m2:8080/json/\"]\njson: {status: ALIVE}")
                .unwrap();
        assert_eq!(
            w.targets().unwrap(),
            vec![
                Target::Http("http://m1:8080/json/".into()),
                Target::Http("http://m2:8080/json/".into())
            ]
        );
        for bad in [
            "tcp: []",
            "json: {a: b}\ntcp: [a:1]",
            "http: [\"https://m:1/\"]",
        ] {
            let w: WaitFor = serde_yaml::from_str(bad).unwrap();
            assert!(w.targets().is_err(), "{bad}");
        }
        assert!(serde_yaml::from_str::<WaitFor>("tcp: [a:1]\nextra: 1").is_err());
    }
}
