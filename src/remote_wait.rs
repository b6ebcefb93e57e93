//! The blocking side of `wait_for:` (see [`crate::config::role::WaitFor`]): connection rounds over
//! every endpoint until one accepts a TCP connection or the timeout passes. It runs in its own
//! thread (started by the real [`crate::supervisor::Sys`]), never on the supervisor's.
//!
//! Names are resolved again each round: in Compose or Kubernetes a peer's name only resolves once
//! its container or pod exists, which is exactly what is being waited for.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::supervisor::WaitOutcome;

/// Longest single connection attempt: a silent (filtered) address must not hold up the others.
const ATTEMPT: Duration = Duration::from_secs(1);

/// Waits until one of `endpoints` (`host:port`) accepts a connection, trying them in turn every
/// `interval`, for at most `timeout`.
pub fn wait_any(endpoints: &[String], timeout: Duration, interval: Duration) -> WaitOutcome {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        for endpoint in endpoints {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if answers(endpoint, left.min(ATTEMPT)) {
                return WaitOutcome {
                    reached: Some(endpoint.clone()),
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
            closed_addr,
            "no-such-host.invalid:1".to_string(),
            open_addr.clone(),
        ];
        let out = wait_any(
            &endpoints,
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
            &[addr.to_string()],
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
            &[addr],
            Duration::from_millis(300),
            Duration::from_millis(50),
        );
        assert_eq!(out.reached, None);
        assert!(out.waited >= Duration::from_millis(300), "{out:?}");
    }
}
