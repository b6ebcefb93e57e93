//! Routing and authorisation: one parsed request and who sent it, in; one answer (or a log stream),
//! out. Pure over a [`Backend`], so it is unit-tested and fuzzed with an in-memory backend.

use std::sync::mpsc::Receiver;

use serde::Deserialize;

use super::http::{Request, Response, NDJSON, PROMETHEUS};
use super::wire::{parse_signal, Action, ApiError, ErrorKind, Health, LogLine};
use super::{metrics, Backend};

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The caller's uid from `SO_PEERCRED` (None on TCP, or when the kernel would not say).
    pub uid: Option<u32>,
    /// Which listener the connection came in on.
    pub listener: Listener,
}

/// The two listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The Unix socket: every route; control needs an admin uid.
    Unix,
    /// The optional TCP listener: `/metrics` only.
    MetricsTcp,
}

/// Who may control services: uid 0 and the agent's own uid (Pebble's default model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The agent's effective uid.
    pub agent_uid: u32,
}

impl Policy {
    /// True when `peer` may start, stop, restart or signal services.
    pub fn may_control(&self, peer: &Peer) -> bool {
        peer.listener == Listener::Unix
            && matches!(peer.uid, Some(uid) if uid == 0 || uid == self.agent_uid)
    }
}

/// Default number of log lines when `n` is not given.
pub const DEFAULT_LOG_LINES: usize = 100;
/// Most log lines one request may ask for.
pub const MAX_LOG_LINES: usize = 100_000;

/// What the server should do with a request.
pub enum Outcome {
    /// Send this answer.
    Reply(Response),
    /// Send the backlog, then stream lines from the receiver until either side goes away.
    Follow {
        /// Lines already kept, sent first.
        backlog: Vec<LogLine>,
        /// New lines.
        lines: Receiver<LogLine>,
    },
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Reply(r) => f.debug_tuple("Reply").field(r).finish(),
            Outcome::Follow { backlog, .. } => f
                .debug_struct("Follow")
                .field("backlog", &backlog.len())
                .finish_non_exhaustive(),
        }
    }
}

/// Every route the server answers: (method, path pattern). `{name}` is one path segment.
/// `docs/openapi.yaml` lists exactly these; a test checks both directions.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/status"),
    ("GET", "/v1/services"),
    ("GET", "/v1/services/{name}"),
    ("POST", "/v1/services/{name}/start"),
    ("POST", "/v1/services/{name}/stop"),
    ("POST", "/v1/services/{name}/restart"),
    ("POST", "/v1/services/{name}/signal"),
    ("GET", "/v1/health"),
    ("GET", "/v1/logs"),
    ("GET", "/metrics"),
    ("GET", "/v1/metrics"),
];

/// Answers one request.
pub fn handle(req: &Request, peer: &Peer, policy: &Policy, backend: &dyn Backend) -> Outcome {
    let segments: Vec<&str> = req.path.split('/').skip(1).collect();
    let is_metrics = matches!(segments.as_slice(), ["metrics"] | ["v1", "metrics"]);
    if peer.listener == Listener::MetricsTcp && !is_metrics {
        return reply_err(ApiError::new(
            ErrorKind::NotFound,
            "this listener serves /metrics only",
        ));
    }
    let get = req.method == "GET" || req.method == "HEAD";
    let post = req.method == "POST";
    let result = match segments.as_slice() {
        ["metrics"] | ["v1", "metrics"] if get => backend
            .status()
            .map(|s| Response::with_body(200, PROMETHEUS, metrics::render(&s).into_bytes())),
        ["v1", "status"] if get => backend.status().map(|s| Response::json(200, &s)),
        ["v1", "services"] if get => backend.status().map(|s| Response::json(200, &s.services)),
        ["v1", "services", name] if get => service(backend, name),
        ["v1", "services", name, action] if post => {
            if !policy.may_control(peer) {
                Err(forbidden(peer))
            } else {
                control(req, backend, name, action)
            }
        }
        ["v1", "health"] if get => backend.status().map(|s| {
            let h = Health::of(&s);
            Response::json(if h.healthy { 200 } else { 503 }, &h)
        }),
        ["v1", "logs"] if get => return logs(req, backend),
        _ => Err(no_route(req, &segments)),
    };
    match result {
        Ok(r) => Outcome::Reply(r),
        Err(e) => reply_err(e),
    }
}

fn reply_err(e: ApiError) -> Outcome {
    Outcome::Reply(Response::error(&e))
}

fn forbidden(peer: &Peer) -> ApiError {
    let who = peer
        .uid
        .map_or_else(|| "this caller".to_string(), |u| format!("uid {u}"));
    ApiError::new(
        ErrorKind::Forbidden,
        format!("{who} may read but not control services (control needs uid 0 or the agent's uid)"),
    )
}

/// 405 when the path exists for another method, else 404.
fn no_route(req: &Request, segments: &[&str]) -> ApiError {
    let path_known = ROUTES.iter().any(|(_, pattern)| {
        let p: Vec<&str> = pattern.split('/').skip(1).collect();
        p.len() == segments.len()
            && p.iter()
                .zip(segments)
                .all(|(a, b)| a == b || (a.starts_with('{') && !b.is_empty()))
    });
    if path_known {
        ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!("{} is not allowed on {}", req.method, req.path),
        )
    } else {
        ApiError::new(ErrorKind::NotFound, format!("no route {}", req.path))
    }
}

fn decode_name(raw: &str) -> Result<String, ApiError> {
    super::http::percent_decode(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn service(backend: &dyn Backend, raw: &str) -> Result<Response, ApiError> {
    let name = decode_name(raw)?;
    let status = backend.status()?;
    let svc = status
        .services
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::unknown_service(&name))?;
    Ok(Response::json(200, &svc))
}

/// Body of `POST /v1/services/{name}/signal` (the signal may also be given as `?signal=`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    signal: serde_json::Value,
}

fn control(
    req: &Request,
    backend: &dyn Backend,
    raw: &str,
    action: &str,
) -> Result<Response, ApiError> {
    let name = decode_name(raw)?;
    let action = match action {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "restart" => Action::Restart,
        "signal" => Action::Signal(signal_of(req)?),
        other => {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("no action {other:?} (start, stop, restart, signal)"),
            ))
        }
    };
    backend
        .control(&name, action)
        .map(|s| Response::json(200, &s))
}

fn signal_of(req: &Request) -> Result<i32, ApiError> {
    let text = if let Some(q) = req.param("signal") {
        q.to_string()
    } else if req.body.iter().any(|b| !b.is_ascii_whitespace()) {
        let body: SignalBody = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
        match body.signal {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(ApiError::bad_request("signal must be a name or a number")),
        }
    } else {
        return Err(ApiError::bad_request(
            "which signal? give ?signal=TERM or a body {\"signal\": \"TERM\"}",
        ));
    };
    parse_signal(&text).ok_or_else(|| ApiError::bad_request(format!("unknown signal {text:?}")))
}

fn logs(req: &Request, backend: &dyn Backend) -> Outcome {
    match logs_inner(req, backend) {
        Ok(o) => o,
        Err(e) => reply_err(e),
    }
}

fn logs_inner(req: &Request, backend: &dyn Backend) -> Result<Outcome, ApiError> {
    let service = req.param("service").filter(|s| !s.is_empty());
    let lines = match req.param("n") {
        None => DEFAULT_LOG_LINES,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("n must be a number, not {n:?}")))?
            .min(MAX_LOG_LINES),
    };
    let follow = match req.param("follow") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "follow must be true or false, not {other:?}"
            )))
        }
    };
    if follow {
        // Subscribe first so no line falls between the backlog and the stream.
        let receiver = backend.follow(service)?;
        let backlog = backend.logs(service, lines)?;
        return Ok(Outcome::Follow {
            backlog,
            lines: receiver,
        });
    }
    let backlog = backend.logs(service, lines)?;
    Ok(Outcome::Reply(Response::with_body(
        200,
        NDJSON,
        ndjson(&backlog),
    )))
}

/// Log lines as newline-delimited JSON.
pub fn ndjson(lines: &[LogLine]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() * 96);
    for line in lines {
        if serde_json::to_writer(&mut out, line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::mpsc;
    use std::sync::Mutex;

    use super::super::http::{parse, Limits, Parsed};
    use super::super::wire::*;
    use super::*;

    /// An in-memory backend for unit tests and the fuzz target's twin.
    pub(crate) struct FakeBackend {
        pub(crate) services: Mutex<Vec<ServiceStatus>>,
    }

    impl FakeBackend {
        pub(crate) fn new() -> Self {
            let svc = |name: &str, ready: bool| ServiceStatus {
                name: name.into(),
                state: if ready {
                    ServiceState::Ready
                } else {
                    ServiceState::Backoff
                },
                pid: ready.then_some(42),
                started_at: Some(1000),
                uptime_secs: Some(5),
                restarts: 2,
                last_exit: Some(LastExit {
                    code: Some(1),
                    signal: None,
                }),
                ready,
                healthy: None,
                critical: true,
                required: true,
                oom_kills: Some(0),
            };
            Self {
                services: Mutex::new(vec![svc("master", true), svc("my worker", false)]),
            }
        }
    }

    impl Backend for FakeBackend {
        fn status(&self) -> Result<Status, ApiError> {
            let services = self
                .services
                .lock()
                .map_err(|_| ApiError::internal("poisoned"))?
                .clone();
            Ok(Status {
                version: "0.1.0".into(),
                node: Node {
                    hostname: "n1".into(),
                    fqdn: "n1.example".into(),
                    role: "master".into(),
                },
                resources: serde_json::json!({"host_cpus": 2}),
                sizing: serde_json::Value::Null,
                services,
                agent: Agent {
                    pid: 1,
                    rss_bytes: 1 << 20,
                    zombies_reaped: 3,
                    started_at: 1000,
                    oom_kills_total: Some(0),
                    last_reload: None,
                },
            })
        }
        fn control(&self, service: &str, action: Action) -> Result<ServiceStatus, ApiError> {
            let mut services = self
                .services
                .lock()
                .map_err(|_| ApiError::internal("poisoned"))?;
            let s = services
                .iter_mut()
                .find(|s| s.name == service)
                .ok_or_else(|| ApiError::unknown_service(service))?;
            match action {
                Action::Stop => s.state = ServiceState::Stopped,
                Action::Start | Action::Restart => s.state = ServiceState::Starting,
                Action::Signal(n) => s.restarts = n as u32,
            }
            Ok(s.clone())
        }
        fn logs(&self, service: Option<&str>, lines: usize) -> Result<Vec<LogLine>, ApiError> {
            let all: Vec<LogLine> = (0..5)
                .map(|i| LogLine {
                    time: f64::from(i),
                    service: "master".into(),
                    stream: Stream::Stdout,
                    message: format!("line {i}"),
                })
                .filter(|l| service.is_none_or(|s| s == l.service))
                .collect();
            Ok(all[all.len().saturating_sub(lines)..].to_vec())
        }
        fn follow(&self, _service: Option<&str>) -> Result<Receiver<LogLine>, ApiError> {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(LogLine {
                time: 9.0,
                service: "master".into(),
                stream: Stream::Stderr,
                message: "new".into(),
            });
            Ok(rx)
        }
    }

    const ADMIN: Peer = Peer {
        uid: Some(0),
        listener: Listener::Unix,
    };
    const NOBODY: Peer = Peer {
        uid: Some(65534),
        listener: Listener::Unix,
    };
    const TCP: Peer = Peer {
        uid: None,
        listener: Listener::MetricsTcp,
    };
    const POLICY: Policy = Policy { agent_uid: 1000 };

    fn request(raw: &str) -> Request {
        match parse(raw.as_bytes(), &Limits::default()) {
            Ok(Parsed::Complete(r, _)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn answer(raw: &str, peer: Peer, b: &FakeBackend) -> (u16, String) {
        match handle(&request(raw), &peer, &POLICY, b) {
            Outcome::Reply(r) => (r.status, String::from_utf8(r.body).unwrap()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_are_open_to_everyone() {
        let b = FakeBackend::new();
        let (s, body) = answer("GET /v1/status HTTP/1.1\r\n\r\n", NOBODY, &b);
        assert_eq!(s, 200);
        let v: Status = serde_json::from_str(&body).unwrap();
        assert_eq!(v.services.len(), 2);
        let (s, body) = answer("GET /v1/services/my%20worker HTTP/1.1\r\n\r\n", NOBODY, &b);
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("\"name\":\"my worker\""));
        let (s, _) = answer("GET /v1/services/ghost HTTP/1.1\r\n\r\n", NOBODY, &b);
        assert_eq!(s, 404);
        let (s, body) = answer("GET /v1/health HTTP/1.1\r\n\r\n", NOBODY, &b);
        assert_eq!(s, 503);
        assert!(body.contains("my worker: backoff (not ready)"), "{body}");
    }

    #[test]
    fn control_needs_an_admin_uid() {
        let b = FakeBackend::new();
        let (s, body) = answer("POST /v1/services/master/stop HTTP/1.1\r\n\r\n", NOBODY, &b);
        assert_eq!(s, 403, "{body}");
        assert!(body.contains("uid 65534"));
        assert_eq!(b.status().unwrap().services[0].state, ServiceState::Ready);
        let (s, _) = answer("POST /v1/services/master/stop HTTP/1.1\r\n\r\n", ADMIN, &b);
        assert_eq!(s, 200);
        assert_eq!(b.status().unwrap().services[0].state, ServiceState::Stopped);
        let own = Peer {
            uid: Some(1000),
            listener: Listener::Unix,
        };
        let (s, _) = answer("POST /v1/services/master/start HTTP/1.1\r\n\r\n", own, &b);
        assert_eq!(s, 200);
    }

    #[test]
    fn signal_by_query_or_body() {
        let b = FakeBackend::new();
        let (s, body) = answer(
            "POST /v1/services/master/signal?signal=USR1 HTTP/1.1\r\n\r\n",
            ADMIN,
            &b,
        );
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("\"restarts\":10"));
        let (s, body) = answer(
            "POST /v1/services/master/signal HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"signal\":12}",
            ADMIN,
            &b,
        );
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("\"restarts\":12"));
        for bad in [
            "POST /v1/services/master/signal HTTP/1.1\r\n\r\n",
            "POST /v1/services/master/signal?signal=NOPE HTTP/1.1\r\n\r\n",
            "POST /v1/services/master/signal HTTP/1.1\r\nContent-Length: 2\r\n\r\n{]",
        ] {
            assert_eq!(answer(bad, ADMIN, &b).0, 400, "{bad}");
        }
    }

    #[test]
    fn unknown_routes_and_methods() {
        let b = FakeBackend::new();
        assert_eq!(answer("GET /nope HTTP/1.1\r\n\r\n", ADMIN, &b).0, 404);
        assert_eq!(
            answer("DELETE /v1/status HTTP/1.1\r\n\r\n", ADMIN, &b).0,
            405
        );
        assert_eq!(
            answer(
                "POST /v1/services/master/explode HTTP/1.1\r\n\r\n",
                ADMIN,
                &b
            )
            .0,
            404
        );
        assert_eq!(
            answer("GET /v1/services/master/start HTTP/1.1\r\n\r\n", ADMIN, &b).0,
            405
        );
    }

    #[test]
    fn tcp_listener_serves_metrics_only() {
        let b = FakeBackend::new();
        let (s, body) = answer("GET /metrics HTTP/1.1\r\n\r\n", TCP, &b);
        assert_eq!(s, 200);
        assert!(body.contains("sparkvisor_service_up{service=\"master\"} 1"));
        assert_eq!(answer("GET /v1/status HTTP/1.1\r\n\r\n", TCP, &b).0, 404);
        assert_eq!(
            answer("POST /v1/services/master/stop HTTP/1.1\r\n\r\n", TCP, &b).0,
            404
        );
    }

    #[test]
    fn logs_tail_and_follow() {
        let b = FakeBackend::new();
        let (s, body) = answer("GET /v1/logs?n=2 HTTP/1.1\r\n\r\n", NOBODY, &b);
        assert_eq!(s, 200);
        let lines: Vec<LogLine> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].message, "line 4");
        assert_eq!(
            answer("GET /v1/logs?n=x HTTP/1.1\r\n\r\n", NOBODY, &b).0,
            400
        );
        match handle(
            &request("GET /v1/logs?follow=true&n=1 HTTP/1.1\r\n\r\n"),
            &NOBODY,
            &POLICY,
            &b,
        ) {
            Outcome::Follow { backlog, lines } => {
                assert_eq!(backlog.len(), 1);
                assert_eq!(lines.recv().unwrap().message, "new");
            }
            other => panic!("{other:?}"),
        }
    }
}
