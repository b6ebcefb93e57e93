//! The operator socket: HTTP/1.1 + JSON on a Unix socket (server), its wire types, and the CLI client.
//!
//! The server never touches service state: every answer comes from a [`Backend`], which the
//! supervisor implements by sending a message to its single owner loop and waiting for the reply.
//! Layout: [`wire`] (JSON types), [`http`] (request parsing, response writing; pure),
//! [`api`] (routing and authorisation; pure over a `Backend`), [`server`] (sockets, threads,
//! limits), [`metrics`] (Prometheus text), [`client`] (the CLI side).

pub mod api;
pub mod backend;
pub mod client;
pub mod fairness;
pub mod http;
pub mod metrics;
pub mod server;
pub mod trust;
pub mod wire;

use std::sync::mpsc::Receiver;

pub use server::{parse_metrics_addr, serve, Server, ServerError, ServerOptions};

/// What the status server asks of the agent. Implemented by the supervisor's handle: each call is a
/// message to the one owner of service state and a wait for its answer, so the server never reads
/// or changes state itself. Implementations must not block for long (a `restart` should return
/// once the stop has been initiated, not after the grace period), because a server worker waits.
pub trait Backend: Send + Sync + 'static {
    /// The whole node: identity, resources, sizing, every service, the agent itself.
    fn status(&self) -> Result<wire::Status, wire::ApiError>;

    /// Applies an operator action to one service and returns its status afterwards.
    /// Unknown service → `ApiError::unknown_service`; an action that does not fit → `conflict`.
    fn control(
        &self,
        service: &str,
        action: wire::Action,
    ) -> Result<wire::ServiceStatus, wire::ApiError>;

    /// The last `lines` lines of output kept for one service (or all, interleaved by time), oldest first.
    fn logs(
        &self,
        service: Option<&str>,
        lines: usize,
    ) -> Result<Vec<wire::LogLine>, wire::ApiError>;

    /// New lines of one service (or all) from now on. The stream ends when the sender is dropped;
    /// the server drops the receiver when the client goes away, so the sender must tolerate that.
    fn follow(&self, service: Option<&str>) -> Result<Receiver<wire::LogLine>, wire::ApiError>;

    /// A thread of the status server died (panic, or stopped serving while the agent runs): `why`
    /// names it. The supervisor's backend shuts the agent down (exit 70); the default ignores it.
    fn thread_died(&self, why: String) {
        let _ = why;
    }
}

/// Default socket path when `SPARKVISOR_SOCKET` is not set.
pub const DEFAULT_SOCKET: &str = "/run/sparkvisor/sparkvisor.sock";

/// Environment variable naming the socket path (server and client).
pub const SOCKET_ENV: &str = "SPARKVISOR_SOCKET";

/// Environment variable with `HOST:PORT` for the optional read-only TCP metrics listener.
pub const METRICS_ADDR_ENV: &str = "SPARKVISOR_METRICS_ADDR";

/// The socket path: `SPARKVISOR_SOCKET`, else [`DEFAULT_SOCKET`].
pub fn socket_path() -> std::path::PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => p.into(),
        _ => DEFAULT_SOCKET.into(),
    }
}

/// The socket under a scratch directory, where a non-root agent on a read-only root filesystem
/// listens when `/run/sparkvisor` cannot be written ([`crate::platform::dropin`]).
pub fn fallback_socket(scratch: &std::path::Path) -> std::path::PathBuf {
    scratch.join("sparkvisor").join("sparkvisor.sock")
}

/// The socket a client talks to: [`socket_path`]; when that is the default and does not exist,
/// the fallback under `$TMPDIR` or `/tmp` that exists (the HEALTHCHECK does not see the agent's
/// environment, so it looks where the agent would have moved).
pub fn client_socket_path() -> std::path::PathBuf {
    let path = socket_path();
    if std::env::var_os(SOCKET_ENV).is_some_and(|p| !p.is_empty()) || path.exists() {
        return path;
    }
    let tmpdir = std::env::var_os("TMPDIR").filter(|t| !t.is_empty());
    tmpdir
        .into_iter()
        .map(std::path::PathBuf::from)
        .chain(std::iter::once("/tmp".into()))
        .map(|d| fallback_socket(&d))
        .find(|p| p.exists())
        .unwrap_or(path)
}
