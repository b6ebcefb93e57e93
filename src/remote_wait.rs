//! The blocking side of `wait_for:` (see [`crate::config::role::WaitFor`]): rounds over every target
//! until one answers (a TCP connect, or an HTTP GET through [`crate::probe`]) or the timeout passes. It runs in its own
//! thread (started by the real [`crate::supervisor::Sys`]), never on the supervisor's.
//!
//! Names are resolved again each round: in Compose or Kubernetes a peer's name only resolves once
//! its container or pod exists, which is exactly what is being waited for.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::role::{DurationSpec, OneOf, Probe, Target};
use crate::supervisor::WaitOutcome;

/// Longest single attempt: long enough for a JVM's web UI on a loaded machine (a master's `/json/`
/// took over a second under load here), short enough that a silent (filtered) address does not
/// hold up the others for long.
const ATTEMPT: Duration = Duration::from_secs(5);

/// Waits until one of `targets` answers (with `json` for HTTP targets), trying them in turn every
/// `interval`, for at most `timeout`.
pub fn wait_any(
    targets: &[Target],
    json: Option<&BTreeMap<String, OneOf>>,
    timeout: Duration,
    interval: Duration,
) -> WaitOutcome {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        for target in targets {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let limit = left.min(ATTEMPT);
            let ok = match target {
                Target::Tcp(endpoint) => answers(endpoint, limit),
                Target::Http(url) => http_passes(url, json, limit),
            };
            if ok {
                return WaitOutcome {
                    reached: Some(target.to_string()),
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
        std::thread::sleep(interval.min(left));
    }
}

/// One HTTP attempt, as a readiness probe would make it.
fn http_passes(url: &str, json: Option<&BTreeMap<String, OneOf>>, limit: Duration) -> bool {
    let probe = Probe {
        http: Some(url.to_string()),
        json: json.cloned(),
        tcp: None,
        exec: None,
        interval: DurationSpec(limit),
        timeout: DurationSpec(limit),
        threshold: 1,
    };
    let plan = crate::probe::ProbePlan::new(&probe);
    match plan.and_then(|p| crate::probe::attempt(&p).map_err(|e| e.to_string())) {
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
    #![allow(clippy::unwrap_used)]
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn the_first_endpoint_that_answers_opens_the_gate() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let open_addr = open.local_addr().unwrap().to_string();
        let endpoints = vec![
            Target::Tcp(closed_addr),
            Target::Tcp("no-such-host.invalid:1".to_string()),
            Target::Tcp(open_addr.clone()),
        ];
        let out = wait_any(
            &endpoints,
            None,
            Duration::from_secs(30),
            Duration::from_millis(50),
        );
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
        let out = wait_any(
            &[Target::Tcp(addr.to_string())],
            None,
            Duration::from_secs(30),
            Duration::from_millis(50),
        );
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
        let out = wait_any(
            &[Target::Tcp(addr)],
            None,
            Duration::from_millis(300),
            Duration::from_millis(50),
        );
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
        let json: BTreeMap<String, OneOf> = [("status".into(), "ALIVE".into())].into();
        let url = format!("http://{addr}/json/");
        let out = wait_any(
            &[Target::Http(url.clone())],
            Some(&json),
            Duration::from_secs(30),
            Duration::from_millis(20),
        );
        assert_eq!(out.reached, Some(url));
        server.join().unwrap();
    }
}
