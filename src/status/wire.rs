//! JSON wire types of the status socket (`/v1/...`), shared by the server, the CLI client and the
//! supervisor's [`super::Backend`] implementation. `docs/openapi.yaml` describes the same shapes; a
//! test keeps the two in step.
//!
//! Secrets never travel here: nothing in these types carries a setting's value except `resources` and
//! `sizing`, which hold figures only (and the config's `Secret` serialises as `<redacted>` anyway).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ProcessEnd;

/// Where a service is in its life, as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Waiting for the services it comes `after` to be ready.
    Waiting,
    /// Spawned, readiness not reached yet.
    Starting,
    /// Running; no readiness check configured, or not passed yet after a restart of the check.
    Running,
    /// Running and its readiness check passed.
    Ready,
    /// Exited; waiting out the backoff delay before the next start.
    Backoff,
    /// Stop signal sent; waiting for the process group to exit.
    Stopping,
    /// Not running, by operator request, by `restart: never`/`on-failure` after a clean exit, or at shutdown.
    Stopped,
    /// Gave up: crash loop or a start that could not happen.
    Failed,
}

impl ServiceState {
    /// The snake_case name used on the wire and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Waiting => "waiting",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Ready => "ready",
            ServiceState::Backoff => "backoff",
            ServiceState::Stopping => "stopping",
            ServiceState::Stopped => "stopped",
            ServiceState::Failed => "failed",
        }
    }

    /// True while a process of the service exists.
    pub fn is_up(self) -> bool {
        matches!(
            self,
            ServiceState::Starting
                | ServiceState::Running
                | ServiceState::Ready
                | ServiceState::Stopping
        )
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the last process of a service ended: exactly one of `code` and `signal` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// Exit code, when the process exited.
    pub code: Option<i32>,
    /// Signal number, when the process was killed by a signal.
    pub signal: Option<i32>,
}

impl LastExit {
    /// Builds the wire form of a reaped process's end.
    pub fn from_end(end: ProcessEnd) -> Self {
        match end {
            ProcessEnd::Exited(code) => Self {
                code: Some(code),
                signal: None,
            },
            ProcessEnd::Signaled(signal) => Self {
                code: None,
                signal: Some(signal),
            },
        }
    }
}

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service name from the role file.
    pub name: String,
    /// Current state.
    pub state: ServiceState,
    /// Pid of the running process (the process-group leader), when one runs.
    pub pid: Option<u32>,
    /// When the current process started (unix seconds).
    pub started_at: Option<u64>,
    /// Seconds since `started_at`.
    pub uptime_secs: Option<u64>,
    /// How many times the supervisor restarted it (operator restarts included).
    pub restarts: u32,
    /// How its previous process ended.
    pub last_exit: Option<LastExit>,
    /// Readiness check passed (true as soon as it runs when no check is configured).
    pub ready: bool,
    /// Result of the latest health check; `None` when the service has no health check.
    pub healthy: Option<bool>,
    /// A critical service that fails for good stops the container.
    pub critical: bool,
    /// Counts for `/v1/health`: false for services an operator stopped on purpose, and for
    /// services that finished cleanly under `restart: never|on-failure`.
    #[serde(default = "yes")]
    pub required: bool,
    /// Times the kernel's OOM killer killed this service's process since the agent started: it
    /// died of a SIGKILL sparkvisor did not send while the cgroup's OOM-kill counter
    /// (`memory.events` `oom_kill`, v1 `memory.oom_control`) rose; `None` when there is no counter.
    pub oom_kills: Option<u64>,
}

fn yes() -> bool {
    true
}

/// This node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Short hostname.
    pub hostname: String,
    /// Fully qualified name.
    pub fqdn: String,
    /// The role this node plays.
    pub role: String,
}

/// The agent process itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Its pid (1 in a container).
    pub pid: u32,
    /// Resident set size in bytes (`/proc/self/statm`).
    pub rss_bytes: u64,
    /// Orphans and other non-service processes reaped since start.
    pub zombies_reaped: u64,
    /// When it started (unix seconds).
    pub started_at: u64,
    /// OOM kills in the container's memory cgroup (every process in it, since the cgroup was
    /// created); `None` when the kernel provides no counter there.
    #[serde(default)]
    pub oom_kills_total: Option<u64>,
    /// The last reload's result (SIGHUP, a rewritten config file); `None` before the first.
    #[serde(default)]
    pub last_reload: Option<LastReload>,
}

/// How the last reload ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReload {
    /// When it ended or was given up (unix seconds).
    pub at: u64,
    /// The new config runs (false: it failed and the running config was kept).
    pub ok: bool,
    /// What triggered it and what happened.
    pub message: String,
}

/// `GET /v1/status`: the whole node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// sparkvisor's version.
    pub version: String,
    /// Who this node is.
    pub node: Node,
    /// Detected resources ([`crate::resources::Resources`] serialised), `null` when unknown.
    pub resources: serde_json::Value,
    /// Derived Spark sizing ([`crate::resources::Sizing`] serialised), `null` when unknown.
    pub sizing: serde_json::Value,
    /// Every service, in start order.
    pub services: Vec<ServiceStatus>,
    /// The agent.
    pub agent: Agent,
}

/// `GET /v1/health`: 200 with `healthy: true`, or 503 with the reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Every required service is ready (and healthy, where it has a health check).
    pub healthy: bool,
    /// One line per required service that is not, e.g. `spark-worker: backoff (not ready)`.
    pub reasons: Vec<String>,
}

impl Health {
    /// Health of a node: every service with `required` must be ready and not unhealthy.
    pub fn of(status: &Status) -> Self {
        let reasons: Vec<String> = status
            .services
            .iter()
            .filter(|s| s.required)
            .filter_map(|s| {
                if !s.ready {
                    Some(format!("{}: {} (not ready)", s.name, s.state))
                } else if s.healthy == Some(false) {
                    Some(format!("{}: health check failing", s.name))
                } else {
                    None
                }
            })
            .collect();
        Self {
            healthy: reasons.is_empty(),
            reasons,
        }
    }
}

/// What an operator asks of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Start it if it is not running (clears `failed`).
    Start,
    /// Stop it with its configured stop signal and grace; it stays stopped until started.
    Stop,
    /// Stop it (if running), then start it again.
    Restart,
    /// Send this signal number to its process group.
    Signal(i32),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Start => f.write_str("start"),
            Action::Stop => f.write_str("stop"),
            Action::Restart => f.write_str("restart"),
            Action::Signal(n) => write!(f, "signal {n}"),
        }
    }
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a service's output, as kept by the agent (`GET /v1/logs`, one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the agent read it (unix seconds, fractional).
    pub time: f64,
    /// The service that wrote it.
    pub service: String,
    /// Which stream.
    pub stream: Stream,
    /// The line, without its newline (invalid UTF-8 replaced).
    pub message: String,
}

/// Kinds of API errors; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: the request is malformed or a parameter is invalid.
    BadRequest,
    /// 403: the caller's uid may read but not control.
    Forbidden,
    /// 404: no such route or service.
    NotFound,
    /// 405: the route exists for another method.
    MethodNotAllowed,
    /// 409: the action does not fit the service's state (e.g. signal to a stopped service).
    Conflict,
    /// 413 / 431: the request or its headers are too large.
    TooLarge,
    /// 503: the agent is busy (too many connections) or shutting down.
    Unavailable,
    /// 500: the agent failed to answer (e.g. the supervisor is gone).
    Internal,
}

impl ErrorKind {
    /// The HTTP status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// The body of every error answer: `{"error": {"kind": "not_found", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// For humans, one line.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    /// 404 for an unknown service.
    pub fn unknown_service(name: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("no service named {name:?}"))
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
}

/// Envelope of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

/// Parses a signal given as a name (`TERM`, `SIGTERM`, `term`, `RTMIN+2`) or a number (`15`),
/// as [`crate::signal_names::signal_by_name`] does (one table for the agent and the client).
pub fn parse_signal(text: &str) -> Option<i32> {
    crate::signal_names::signal_by_name(text)
}

/// The name of a signal number without `SIG` (`15` → `TERM`, `36` → `RTMIN+2` with glibc), for
/// messages and tables; None for a number without a name (32, 33 and out of range).
pub fn signal_name(number: i32) -> Option<String> {
    crate::signal_names::short_signal_name(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("TERM"), Some(15));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("SIGPWR"), Some(30));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal(""), None);
        assert_eq!(signal_name(10).as_deref(), Some("USR1"));
        let rt2 = crate::signal_names::rt_min() + 2;
        assert_eq!(signal_name(rt2).as_deref(), Some("RTMIN+2"));
    }

    #[test]
    fn last_exit_from_end() {
        let e = LastExit::from_end(ProcessEnd::Signaled(9));
        assert_eq!((e.code, e.signal), (None, Some(9)));
        let e = LastExit::from_end(ProcessEnd::Exited(3));
        assert_eq!((e.code, e.signal), (Some(3), None));
    }

    fn svc(name: &str, state: ServiceState, ready: bool, required: bool) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state,
            pid: None,
            started_at: None,
            uptime_secs: None,
            restarts: 0,
            last_exit: None,
            ready,
            healthy: None,
            critical: true,
            required,
            oom_kills: None,
        }
    }

    #[test]
    fn health_names_every_required_service_not_ready() {
        let mut status = Status {
            version: "x".into(),
            node: Node {
                hostname: "h".into(),
                fqdn: "h".into(),
                role: "worker".into(),
            },
            resources: serde_json::Value::Null,
            sizing: serde_json::Value::Null,
            services: vec![
                svc("a", ServiceState::Ready, true, true),
                svc("b", ServiceState::Backoff, false, true),
                svc("c", ServiceState::Stopped, false, false),
            ],
            agent: Agent {
                pid: 1,
                rss_bytes: 0,
                zombies_reaped: 0,
                started_at: 0,
                oom_kills_total: Some(0),
                last_reload: None,
            },
        };
        let h = Health::of(&status);
        assert!(!h.healthy);
        assert_eq!(h.reasons, vec!["b: backoff (not ready)".to_string()]);
        if let Some(b) = status.services.get_mut(1) {
            b.ready = true;
            b.healthy = Some(false);
        }
        assert_eq!(
            Health::of(&status).reasons,
            vec!["b: health check failing".to_string()]
        );
        if let Some(b) = status.services.get_mut(1) {
            b.healthy = Some(true);
        }
        assert!(Health::of(&status).healthy);
    }
}
