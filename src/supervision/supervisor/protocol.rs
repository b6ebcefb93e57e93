//! The message protocol of the supervisor: what other threads (signal reader, probes, remote
//! waits, reloads, the status socket) send to the one owner loop, and what operators get back.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Duration, SystemTime};

use super::{ReloadError, ReloadOutcome, ReloadPlan, WaitOutcome, WaitTicket};
use crate::error::ProcessEnd;
use crate::supervision::service::{ProbeKind, PublicState};

/// A probe attempt the real system runs in a short-lived thread (tcp, http) or as a process (exec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTicket {
    /// Index of the service.
    pub service: usize,
    /// Which probe.
    pub kind: ProbeKind,
    /// Results with another generation are stale and ignored.
    pub generation: u64,
}

/// What other threads tell the supervisor.
#[derive(Debug)]
pub enum Msg {
    /// A signal arrived at the agent.
    Signal(i32),
    /// A stop or reload signal from a process inside the container, with the sender's lineage
    /// ([`super::sender::lineage`]): ignored when it comes from one of the services.
    SignalFrom(i32, Vec<i32>),
    /// A network probe attempt finished.
    ProbeResult {
        /// Which attempt.
        ticket: ProbeTicket,
        /// Passed?
        ok: bool,
    },
    /// A `wait_for` wait ended.
    RemoteWaited {
        /// Which wait.
        ticket: WaitTicket,
        /// What answered, after how long.
        outcome: WaitOutcome,
    },
    /// An operator request; the answer goes to `reply`.
    Request(Request, Sender<Reply>),
    /// A watched input file (configmeta.json, the cluster file) was rewritten: reload as on SIGHUP.
    ConfigChanged(PathBuf),
    /// A thread of the agent panicked, failed or ended (reported by
    /// [`crate::sys::thread::spawn_critical`]): logged, every service stopped, exit code 70.
    ThreadDied(String),
    /// A reload thread ended (see [`super::reload`]).
    Reloaded {
        /// Which reload.
        id: u64,
        /// The new services and changed files, or why loading failed.
        result: Result<ReloadPlan, ReloadError>,
    },
}

/// Operator requests (from the status socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every service's state.
    Snapshot,
    /// Act on one service.
    Control {
        /// The service.
        service: String,
        /// What to do.
        action: Control,
    },
}

/// Control actions on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Start a stopped/failed service.
    Start,
    /// Stop it; it stays stopped.
    Stop,
    /// Restart it now.
    Restart,
    /// Send a signal to its process group.
    Signal(i32),
}

/// Answers to [`Request`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Every service.
    Snapshot(Snapshot),
    /// The service after the control action.
    Service(ServiceInfo),
    /// No such service.
    UnknownService(String),
    /// The request cannot be served now (e.g. shutting down, no process to signal).
    Refused(String),
}

/// The agent and every service, as operators see them.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Services in definition order.
    pub services: Vec<ServiceInfo>,
    /// Processes reaped that were neither services, probes nor the main command.
    pub zombies_reaped: u64,
    /// The OOM-kill counter of the agent's memory cgroup now (every process in it, services or
    /// not, since the cgroup was created); None when there is no counter.
    pub oom_kills_total: Option<u64>,
    /// The last reload's result (None: no reload yet).
    pub last_reload: Option<ReloadOutcome>,
}

/// One service, as operators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    /// Name.
    pub name: String,
    /// Its state as operators see it.
    pub state: PublicState,
    /// Current pid.
    pub pid: Option<i32>,
    /// Wall-clock start of the current (or last) process.
    pub started_at: Option<SystemTime>,
    /// Time since that start while it runs.
    pub uptime: Option<Duration>,
    /// Restarts since the agent started.
    pub restarts: u32,
    /// How the last process ended.
    pub last_exit: Option<ProcessEnd>,
    /// Ready for dependents.
    pub ready: bool,
    /// Liveness probe passing (true without one).
    pub healthy: bool,
    /// Its failure for good stops the container.
    pub critical: bool,
    /// A readiness probe is configured.
    pub has_ready_probe: bool,
    /// A liveness probe is configured.
    pub has_health_probe: bool,
    /// Its processes the kernel's OOM killer killed since the agent started; None when the
    /// cgroup has no OOM-kill counter.
    pub oom_kills: Option<u64>,
}
