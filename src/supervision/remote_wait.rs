//! `wait_for:` (see [`crate::config::role::WaitFor`]) as it runs: its targets parsed once into a
//! [`WaitPlan`] with the service's definition (at start and by each reload), and the blocking
//! rounds over them until one answers (a TCP connect, or an HTTP GET through [`crate::supervision::probe`]) or
//! the timeout passes. The rounds run in their own thread (started by the real
//! [`crate::supervision::supervisor::Sys`]), never on the supervisor's.
//!
//! Names are resolved again each round: in Compose or Kubernetes a peer's name only resolves once
//! its container or pod exists, which is exactly what is being waited for.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::role::{Target, WaitFor};
use crate::supervision::probe::{Check, HttpUrl, TcpAddr};

/// Longest single attempt: long enough for a JVM's web UI on a loaded machine (a master's `/json/`
/// took over a second under load here), short enough that a silent (filtered) address does not
/// hold up the others for long.
const ATTEMPT: Duration = Duration::from_secs(5);

/// A service's `wait_for:` gate, its targets parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitPlan {
    /// Every target, in order: [`Check::Tcp`], or [`Check::Http`] (with the `json` fields).
    pub targets: Vec<Check>,
    /// The entries as written (for log lines).
    pub described: String,
    /// Start anyway after this long.
    pub timeout: Duration,
    /// Time between rounds while nothing answers.
    pub interval: Duration,
}

impl WaitPlan {
    /// The plan of an expanded `wait_for` (no `{{ }}` left); the error names the entry that no
    /// attempt could use.
    pub fn new(wait: &WaitFor) -> Result<Self, String> {
        let targets = wait
            .targets()?
            .into_iter()
            .map(|target| match target {
                Target::Tcp(endpoint) => TcpAddr::parse(&endpoint)
                    .map(Check::Tcp)
                    .map_err(|why| format!("wait_for: {why}")),
                Target::Http(url) => HttpUrl::parse(&url)
                    .map(|url| Check::Http {
                        url,
                        json: wait.json.clone(),
                    })
                    .map_err(|why| format!("wait_for: {why}")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            targets,
            described: wait.describe(),
            timeout: wait.timeout.0,
            interval: wait.interval.0,
        })
    }
}

/// How a remote wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOutcome {
    /// The endpoint that answered; `None` when the timeout passed first.
    pub reached: Option<String>,
    /// How long the wait took.
    pub waited: Duration,
}

/// Waits until one of `plan`'s targets answers, trying them in turn every `interval`, for at
/// most `timeout`.
pub fn wait_any(plan: &WaitPlan) -> WaitOutcome {
    let started = Instant::now();
    let deadline = started + plan.timeout;
    loop {
        for target in &plan.targets {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let limit = left.min(ATTEMPT);
            let (ok, reached) = match target {
                Check::Tcp(endpoint) => (answers(&endpoint.addr, limit), &endpoint.addr),
                Check::Http { url, .. } => (http_passes(target, &url.text, limit), &url.text),
                Check::Exec(_) => continue,
            };
            if ok {
                return WaitOutcome {
                    reached: Some(reached.clone()),
                    waited: started.elapsed(),
                };
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return WaitOutcome {
                reached: None,
                waited: started.elapsed(),
            };
        }
        std::thread::sleep(plan.interval.min(left));
    }
}

/// One HTTP attempt of `check` (at `url`), as a readiness probe would make it, within `limit`.
fn http_passes(check: &Check, url: &str, limit: Duration) -> bool {
    match crate::supervision::probe::attempt_within(check, limit) {
        Ok(()) => true,
        Err(e) => {
            log::debug!("wait_for: {url}: {e}");
            false
        }
    }
}

/// One attempt: resolve `endpoint` and connect to any of its addresses within `limit`.
fn answers(endpoint: &str, limit: Duration) -> bool {
    let Ok(addrs) = endpoint.to_socket_addrs() else {
        log::debug!("wait_for: {endpoint} does not resolve (yet)");
        return false;
    };
    let addrs: Vec<SocketAddr> = addrs.collect();
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, limit).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::net::TcpListener;

    use super::*;

    /// The plan of a `wait_for:` written in YAML.
    fn plan(yaml: &str) -> WaitPlan {
        WaitPlan::new(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn targets_are_parsed_once_with_the_plan() {
        let p =
            plan("http: [\"http://m1:8080,m2:8080/json/\"]\njson: {status: ALIVE}\ninterval: 1s");
        let urls: Vec<&str> = p
            .targets
            .iter()
            .map(|t| match t {
                Check::Http { url, json } => {
                    assert!(json.is_some());
                    url.addr.as_str()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(urls, ["m1:8080", "m2:8080"]);
        assert_eq!(p.interval, Duration::from_secs(1));
        // A URL no request could be made from is refused when the plan is made.
        let bad: WaitFor = serde_yaml::from_str("http: [\"http://m1:8080/a b\"]").unwrap();
        let err = WaitPlan::new(&bad).unwrap_err();
        assert!(err.contains("wait_for") && err.contains("space"), "{err}");
    }

    #[test]
    fn the_first_endpoint_that_answers_opens_the_gate() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let open_addr = open.local_addr().unwrap().to_string();
        let out = wait_any(&plan(&format!(
            "tcp: [\"{closed_addr}\", \"no-such-host.invalid:1\", \"{open_addr}\"]\n\
             timeout: 30s\ninterval: 50ms"
        )));
        assert_eq!(out.reached, Some(open_addr));
    }

    #[test]
    fn a_listener_that_appears_later_is_found() {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // The port may have been taken meanwhile; then the waiter times out and says so.
            TcpListener::bind(addr).ok().map(|l| {
                let _ = l.accept();
            })
        });
        let out = wait_any(&plan(&format!(
            "tcp: [\"{addr}\"]\ntimeout: 30s\ninterval: 50ms"
        )));
        if out.reached.is_some() {
            assert!(out.waited >= Duration::from_millis(250), "{out:?}");
        }
        let _ = late.join();
    }

    #[test]
    fn nothing_answering_ends_at_the_timeout() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let out = wait_any(&plan(&format!(
            "tcp: [\"{addr}\"]\ntimeout: 300ms\ninterval: 50ms"
        )));
        assert_eq!(out.reached, None);
        assert!(out.waited >= Duration::from_millis(300), "{out:?}");
    }

    #[test]
    fn an_http_target_passes_only_with_the_wanted_json() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A master that is STANDBY for the first two requests, then ALIVE.
        let server = std::thread::spawn(move || {
            for status in ["STANDBY", "STANDBY", "ALIVE"] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).unwrap();
                let body = format!("{{\"status\":\"{status}\"}}");
                s.write_all(format!("HTTP/1.0 200 OK\r\n\r\n{body}").as_bytes())
                    .unwrap();
            }
        });
        let url = format!("http://{addr}/json/");
        let out = wait_any(&plan(&format!(
            "http: [\"{url}\"]\njson: {{status: ALIVE}}\ntimeout: 30s\ninterval: 20ms"
        )));
        assert_eq!(out.reached, Some(url));
        server.join().unwrap();
    }
}
