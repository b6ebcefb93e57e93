//! A probe as it runs: its target parsed once, when its service's definition is built (at start
//! and by each reload), so a bad URL or address is a config error naming the role file and the
//! service before anything starts, and an attempt only connects. Names are still resolved on
//! every attempt: a peer's name may only resolve once its container exists.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::role::{OneOf, Probe};

/// What one attempt of a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `GET` this URL: a 2xx answer whose JSON body has the `json` fields passes.
    Http {
        /// The parsed URL.
        url: HttpUrl,
        /// Top-level JSON fields the body must have.
        json: Option<BTreeMap<String, OneOf>>,
    },
    /// Connect to this address.
    Tcp(TcpAddr),
    /// Run this argv (by the supervisor, as the service's user); exit 0 passes.
    Exec(Vec<String>),
}

/// An `http://` or `https://` URL, split once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The URL as written (for messages).
    pub text: String,
    /// `https://`: spoken with the TLS identity of [`crate::supervision::tls`].
    pub tls: bool,
    /// `host:port` to connect to (the port defaults to 80 or 443).
    pub addr: String,
    /// The authority as written, for the `Host` header and the TLS server name.
    pub host: String,
    /// The request path (`/` when the URL has none).
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path]` or `https://...`; a URL that no request could be made
    /// from (another scheme, no host, user info, a port that is not a number, a space or line
    /// break in it) is an error.
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("bad URL {url:?}: {why}");
        let (addr, host, path) = super::parse_url(url)
            .ok_or_else(|| bad("expected http://host[:port][/path] or https://..."))?;
        if path.contains(['\r', '\n', ' ']) || host.contains(['\r', '\n', ' ']) {
            return Err(bad("it contains a space or a line break"));
        }
        TcpAddr::parse(&addr).map_err(|why| bad(&why))?;
        let tls = url.starts_with("https://");
        if tls && super::host_name(&host).is_none() {
            return Err(bad("its host is not a TLS server name"));
        }
        Ok(Self {
            text: url.to_string(),
            tls,
            addr,
            host,
            path,
        })
    }
}

/// A `host:port` address, checked once (the host is resolved on every attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpAddr {
    /// The address as written.
    pub addr: String,
    /// Its port.
    pub port: u16,
}

impl TcpAddr {
    /// Parses `host:port` (`[::1]:80` for IPv6), as the standard library splits it to resolve.
    pub fn parse(addr: &str) -> Result<Self, String> {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("bad address {addr:?}: expected host:port"))?;
        let port = port
            .parse()
            .map_err(|_| format!("bad address {addr:?}: {port:?} is not a port number"))?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("bad address {addr:?}: expected host:port"));
        }
        Ok(Self {
            addr: addr.to_string(),
            port,
        })
    }
}

/// A probe with its target parsed and its timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    /// What an attempt does.
    pub check: Check,
    /// Time between attempts.
    pub interval: Duration,
    /// Time one attempt may take.
    pub timeout: Duration,
    /// Consecutive results needed to change state.
    pub threshold: u32,
}

impl ProbePlan {
    /// The plan of an expanded probe (no `{{ }}` left); the error says what is wrong with its
    /// target.
    pub fn new(probe: &Probe) -> Result<Self, String> {
        let check = match (&probe.http, &probe.tcp, &probe.exec) {
            (Some(url), None, None) => Check::Http {
                url: HttpUrl::parse(url)?,
                json: probe.json.clone(),
            },
            (None, Some(addr), None) => Check::Tcp(TcpAddr::parse(addr)?),
            (None, None, Some(argv)) if !argv.is_empty() => Check::Exec(argv.clone()),
            _ => return Err("set exactly one of `http`, `tcp` or a non-empty `exec`".into()),
        };
        Ok(Self {
            check,
            interval: probe.interval.0,
            timeout: probe.timeout.0,
            threshold: probe.threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn targets_parse_once_or_say_why_not() {
        let table: [(&str, Result<&str, &str>); 18] = [
            ("http: 'http://h:80a/'", Err("\"80a\" is not a port number")),
            (
                "http: http://127.0.0.1:8080/json/",
                Ok("http 127.0.0.1:8080 /json/"),
            ),
            ("http: http://localhost", Ok("http localhost:80 /")),
            ("http: 'http://[::1]:81/x'", Ok("http [::1]:81 /x")),
            ("http: https://master:8480/", Ok("https master:8480 /")),
            (
                "http: ftp://h/",
                Err("bad URL \"ftp://h/\": expected http://host[:port][/path]"),
            ),
            ("http: 'http:///x'", Err("expected http://")),
            ("http: http://u@h/", Err("expected http://")),
            ("http: 'http://h/a b'", Err("a space or a line break")),
            ("http: 'https://a b/'", Err("a space or a line break")),
            ("http: 'https://a..b:1/'", Err("not a TLS server name")),
            ("tcp: 127.0.0.1:7077", Ok("tcp 7077")),
            ("tcp: '[::1]:22'", Ok("tcp 22")),
            (
                "tcp: master",
                Err("bad address \"master\": expected host:port"),
            ),
            ("tcp: 'master:http'", Err("\"http\" is not a port number")),
            ("tcp: ':80'", Err("expected host:port")),
            ("tcp: 'h:70000'", Err("is not a port number")),
            ("exec: [true]", Ok("exec true")),
        ];
        for (yaml, want) in table {
            let probe: Probe = serde_yaml::from_str(yaml).expect(yaml);
            let got = ProbePlan::new(&probe).map(|p| match p.check {
                Check::Http { url, .. } => {
                    let scheme = if url.tls { "https" } else { "http" };
                    format!("{scheme} {} {}", url.addr, url.path)
                }
                Check::Tcp(t) => format!("tcp {}", t.port),
                Check::Exec(argv) => format!("exec {}", argv.join(" ")),
            });
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{yaml}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{yaml}: {got}"),
                (got, want) => panic!("{yaml}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_probe_without_exactly_one_target_is_refused() {
        let probe: Probe = serde_yaml::from_str("exec: []").expect("yaml");
        assert!(ProbePlan::new(&probe).is_err());
        let probe: Probe = serde_yaml::from_str("tcp: h:1\nhttp: http://h/").expect("yaml");
        assert!(ProbePlan::new(&probe).is_err());
    }
}
