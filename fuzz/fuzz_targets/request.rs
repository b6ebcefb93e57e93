//! Arbitrary bytes from a client, handled the way a server worker does: parse (pipelined requests
//! included), route, authorise, answer. Must never panic, and every answer must be well-formed.
#![no_main]

use std::sync::mpsc::{self, Receiver};

use libfuzzer_sys::fuzz_target;
use sparkvisor::status::api::{handle, Listener, Outcome, Peer, Policy};
use sparkvisor::status::http::{parse, Limits, Parsed};
use sparkvisor::status::wire::*;
use sparkvisor::status::Backend;

struct Fixed;

fn service(name: &str) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        state: ServiceState::Ready,
        pid: Some(7),
        started_at: Some(1),
        uptime_secs: Some(2),
        restarts: 0,
        last_exit: None,
        ready: true,
        healthy: Some(true),
        critical: true,
        required: true,
        oom_kills: None,
    }
}

impl Backend for Fixed {
    fn status(&self) -> Result<Status, ApiError> {
        Ok(Status {
            version: "fuzz".into(),
            node: Node {
                hostname: "h".into(),
                fqdn: "h".into(),
                role: "r".into(),
            },
            resources: serde_json::Value::Null,
            sizing: serde_json::Value::Null,
            services: vec![service("a"), service("b c")],
            agent: Agent {
                pid: 1,
                rss_bytes: 1,
                zombies_reaped: 0,
                started_at: 0,
                oom_kills_total: None,
                last_reload: None,
            },
        })
    }
    fn control(&self, name: &str, _action: Action) -> Result<ServiceStatus, ApiError> {
        if name == "a" || name == "b c" {
            Ok(service(name))
        } else {
            Err(ApiError::unknown_service(name))
        }
    }
    fn logs(&self, _service: Option<&str>, lines: usize) -> Result<Vec<LogLine>, ApiError> {
        Ok((0..lines.min(3))
            .map(|i| LogLine {
                time: f64::from(i as u32),
                service: "a".into(),
                stream: Stream::Stdout,
                message: "m".into(),
            })
            .collect())
    }
    fn follow(&self, _service: Option<&str>) -> Result<Receiver<LogLine>, ApiError> {
        let (_tx, rx) = mpsc::channel();
        Ok(rx)
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let policy = Policy { agent_uid: 1000 };
    let uid = data.first().map(|b| u32::from(*b) * 1000 / 255);
    let listener = if data.get(1).is_some_and(|b| b & 1 == 1) {
        Listener::MetricsTcp
    } else {
        Listener::Unix
    };
    let peer = Peer { uid, listener };
    let mut rest = data;
    while let Ok(Parsed::Complete(req, used)) = parse(rest, &limits) {
        assert!(used > 0 && used <= rest.len());
        match handle(&req, &peer, &policy, &Fixed) {
            Outcome::Reply(resp) => {
                assert!((200..600).contains(&resp.status));
                let mut out = Vec::new();
                resp.write_to(&mut out, req.close);
                assert!(out.starts_with(b"HTTP/1.1 "));
                if resp.status != 200 {
                    let _: ErrorBody = serde_json::from_slice(&resp.body).expect("error body");
                }
                if resp.status == 200 && req.method == "POST" {
                    assert!(listener == Listener::Unix && policy_allows(uid));
                }
            }
            Outcome::Follow { .. } => {}
        }
        rest = &rest[used..];
    }
});

fn policy_allows(uid: Option<u32>) -> bool {
    matches!(uid, Some(0) | Some(1000))
}
