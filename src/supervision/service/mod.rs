//! Service lifecycle as pure data: states, events, actions, the state machine and backoff.
//! No clocks (time is a parameter), no syscalls.
//!
//! ```text
//!             DependenciesReady          Started               ProbePassed(Ready)
//!   Waiting ------------------> Starting -------> Running(not ready) ------------> Running(ready)
//!      ^                          |  ^              |  Exited / SpawnFailed            |
//!      | Start/RestartRequested   |  | BackoffElapsed                                  |
//!   Stopped, Failed <-- GiveUp -- Backoff <----- restart policy says restart <---------+
//!                                                   StopRequested: Stopping --GraceElapsed--> KillGroup
//! ```

pub mod backoff;
pub mod fsm;

use std::time::{Duration, Instant};

use crate::config::role::{BackoffSpec, RestartPolicy};
use crate::process_end::ProcessEnd;

pub use backoff::{Backoff, Verdict};
pub use fsm::step;

/// Where a service is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet: waits until every service in `after` is ready.
    Waiting,
    /// A spawn was asked for; the supervisor answers with `Started` or `SpawnFailed`.
    Starting,
    /// The process runs (see [`ServiceState::ready`]).
    Running,
    /// Ended; restarts when the backoff timer elapses.
    Backoff,
    /// The stop signal was sent to its process group; SIGKILL when the grace elapses.
    Stopping,
    /// Stopped on request, or ended and not to be restarted with a success code.
    Stopped,
    /// Failed for good: a crash loop, or ended with a failure and not to be restarted.
    Failed,
}

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// Readiness: passes once, then the service is ready (dependents may start).
    Ready,
    /// Liveness while running: `threshold` consecutive failures restart the service.
    Health,
    /// While draining before a stop: a pass ends the drain early.
    Drain,
}

/// What happens once a stopping service has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Stay stopped (operator stop, shutdown).
    Stay,
    /// Start again at once (operator restart, changed config).
    Restart,
    /// Restart through the backoff and crash-loop accounting (failed health check).
    Recover,
}

/// The one timer a service can have at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// The backoff delay before a restart.
    Backoff,
    /// The stop grace before SIGKILL.
    Grace,
    /// The drain step of a stop, before the stop signal.
    Drain,
}

/// A pending deadline; the supervisor turns it into `BackoffElapsed`/`GraceElapsed` when due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// What it is for.
    pub kind: TimerKind,
    /// When it is due.
    pub at: Instant,
}

/// The parts of a service definition the state machine needs (from the role's `ServiceSpec`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// When to restart.
    pub restart: RestartPolicy,
    /// Backoff and crash-loop limits.
    pub backoff: BackoffSpec,
    /// Signal number sent to the process group to stop it.
    pub stop_signal: i32,
    /// Time between the stop signal and SIGKILL.
    pub grace: Duration,
    /// A readiness probe is configured (else the service is ready once exec'd).
    pub ready_probe: bool,
    /// A liveness probe is configured, with its failure threshold.
    pub health_threshold: Option<u32>,
    /// A drain step before the stop signal.
    pub drain: Option<DrainPolicy>,
}

/// The state machine's view of a stop's drain step (`stop.drain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPolicy {
    /// Signal number that asks the service to drain.
    pub signal: i32,
    /// Longest drain.
    pub grace: Duration,
    /// A drain probe ends it early.
    pub probe: bool,
}

/// Past-tense facts fed to [`step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Every service in `after` is ready (and nothing is shutting down).
    DependenciesReady,
    /// The process was exec'd with this pid (its process group id too).
    Started {
        /// Its pid.
        pid: i32,
    },
    /// It could not be exec'd; `end` is the shell-style code (127 not found, 126 not executable).
    SpawnFailed {
        /// As if it had exited like this.
        end: ProcessEnd,
    },
    /// The process ended.
    Exited {
        /// How.
        end: ProcessEnd,
    },
    /// A probe attempt succeeded.
    ProbePassed(ProbeKind),
    /// A probe attempt failed or timed out.
    ProbeFailed(ProbeKind),
    /// The backoff timer is due.
    BackoffElapsed,
    /// The stop grace is over.
    GraceElapsed,
    /// Stop it (operator or shutdown); SIGKILL no later than `deadline` when given.
    StopRequested {
        /// Latest time for SIGKILL (the shutdown's total grace).
        deadline: Option<Instant>,
    },
    /// Start a stopped or failed service (waits for its dependencies again).
    StartRequested,
    /// Restart it now (operator, or its rendered config changed).
    RestartRequested,
}

/// Imperatives the supervisor carries out after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Spawn the process; answer with `Started` or `SpawnFailed`.
    Spawn,
    /// Send this signal to the service's process group.
    SignalGroup(i32),
    /// SIGKILL the process group.
    KillGroup,
    /// Begin probing (first attempt at once, then every interval).
    StartProbe(ProbeKind),
    /// Stop every probe of this service and ignore results still in flight.
    StopProbes,
}

/// Everything the supervisor knows about one service's lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    /// Lifecycle phase.
    pub phase: Phase,
    /// The running process (also its process group id), if any.
    pub pid: Option<i32>,
    /// When the current (or last) process was started.
    pub started_at: Option<Instant>,
    /// Ready for dependents (readiness probe passed, or no probe and exec'd).
    pub ready: bool,
    /// The liveness probe has not failed past its threshold.
    pub healthy: bool,
    /// How many times it was started again after the first start.
    pub restarts: u32,
    /// How the last process ended.
    pub last_exit: Option<ProcessEnd>,
    /// Consecutive failed liveness attempts.
    pub health_failures: u32,
    /// The current process group got SIGKILL after its grace.
    pub killed: bool,
    /// In `Stopping`: the drain signal was sent, the stop signal not yet.
    pub draining: bool,
    /// The shutdown's deadline for SIGKILL while draining (the stop's grace ends no later).
    pub drain_deadline: Option<Instant>,
    /// What follows a stop (meaningful in `Stopping`).
    pub after_stop: AfterStop,
    /// The pending timer.
    pub timer: Option<Timer>,
    /// Restart backoff.
    pub backoff: Backoff,
}

/// A service's state as operators see it ([`ServiceState::public`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicState {
    /// Waiting for its dependencies (or its `wait_for`).
    Waiting,
    /// Being started, or running but not ready yet.
    Starting,
    /// Running and ready.
    Running,
    /// Waiting to be restarted.
    Backoff,
    /// Being stopped.
    Stopping,
    /// Stopped (by request, or it ended and is not restarted).
    Stopped,
    /// Failed for good.
    Failed,
}

impl PublicState {
    /// Its name in logs: waiting, starting, running, backoff, stopping, stopped, failed.
    pub fn label(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Backoff => "backoff",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// Compares with the name ([`PublicState::label`]), as tests and logs read it.
impl PartialEq<&str> for PublicState {
    fn eq(&self, other: &&str) -> bool {
        self.label() == *other
    }
}

impl ServiceState {
    /// A service that has not started yet.
    pub fn new(policy: &Policy, seed: u64) -> Self {
        Self {
            phase: Phase::Waiting,
            pid: None,
            started_at: None,
            ready: false,
            healthy: true,
            restarts: 0,
            last_exit: None,
            health_failures: 0,
            killed: false,
            draining: false,
            drain_deadline: None,
            after_stop: AfterStop::Stay,
            timer: None,
            backoff: Backoff::new(&policy.backoff, seed),
        }
    }

    /// The state as operators see it. A process that runs but is not ready yet is `Starting`.
    pub fn public(&self) -> PublicState {
        match self.phase {
            Phase::Waiting => PublicState::Waiting,
            Phase::Starting => PublicState::Starting,
            Phase::Running if self.ready => PublicState::Running,
            Phase::Running => PublicState::Starting,
            Phase::Backoff => PublicState::Backoff,
            Phase::Stopping => PublicState::Stopping,
            Phase::Stopped => PublicState::Stopped,
            Phase::Failed => PublicState::Failed,
        }
    }

    /// Stopped, failed or waiting: no process and none coming without a request or dependency.
    pub fn is_down(&self) -> bool {
        matches!(self.phase, Phase::Stopped | Phase::Failed | Phase::Waiting)
    }
}
