//! The shutdown: why the agent stops, the order it stops things in (the main command first, then
//! services in reverse dependency order, each within the total grace), and the exit code.

use std::time::Instant;

use super::{signo, Supervisor, Sys};
use crate::error::{exit_code, ProcessEnd};
use crate::supervision::service::{Event, Phase, ServiceState};

/// Why the agent is stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reason {
    /// SIGTERM/SIGINT.
    Signal(i32),
    /// The main command ended.
    MainEnded(ProcessEnd),
    /// A critical service failed for good.
    CriticalFailed(String, Option<ProcessEnd>),
    /// A helper thread died or the message channel closed.
    Internal(String),
}

/// A shutdown under way.
pub(super) struct ShutdownState {
    /// Why (decides the exit code).
    pub(super) reason: Reason,
    /// When everything left gets SIGKILL.
    pub(super) deadline: Instant,
    /// A service got SIGKILL after its grace during this shutdown (the exit code says so).
    pub(super) killed: bool,
}

impl<S: Sys> Supervisor<S> {
    /// Starts the shutdown: the main command gets SIGTERM first (unless a received TERM/INT is
    /// forwarded to it), and everything left at the grace's end gets SIGKILL.
    pub(super) fn begin_shutdown(&mut self, reason: Reason) {
        let deadline = self.sys.now() + self.grace;
        let signalled = matches!(reason, Reason::Signal(_));
        // Only SIGKILLs of this shutdown count for its exit code.
        self.shutdown = Some(ShutdownState {
            reason,
            deadline,
            killed: false,
        });
        if let Some(m) = self.main.as_mut() {
            m.kill_at = Some(deadline);
            if let Some(pid) = m.pid.filter(|_| !signalled) {
                // The main command goes first (a received TERM/INT is forwarded by the caller).
                self.sys.signal_process(pid, signo::TERM);
            }
        }
    }

    /// A thread of the agent died: the shutdown then reaps on a [`REAP_TICK`] instead of waiting
    /// for SIGCHLD (the only polling of the agent, and only on this failure path).
    pub(super) fn thread_died(&self) -> bool {
        self.shutdown
            .as_ref()
            .is_some_and(|sd| matches!(sd.reason, Reason::Internal(_)))
    }

    /// One round of the shutdown: the main command first, then every service none of whose
    /// dependents still has a process (reverse dependency order). Idle services stop at once.
    pub(super) fn shutdown_step(&mut self) -> bool {
        let Some(deadline) = self.shutdown.as_ref().map(|s| s.deadline) else {
            return false;
        };
        let main_running = self.main.as_ref().is_some_and(|m| m.pid.is_some());
        let mut progressed = false;
        for i in 0..self.services.len() {
            let Some(m) = self.services.get(i) else {
                continue;
            };
            if m.stop_sent {
                continue;
            }
            let busy = has_process(&m.state);
            let dependents_busy = self
                .services
                .iter()
                .any(|other| other.deps.contains(&i) && has_process(&other.state));
            if busy && (main_running || dependents_busy) {
                continue;
            }
            let down = matches!(m.state.phase, Phase::Stopped | Phase::Failed);
            if let Some(m) = self.services.get_mut(i) {
                m.stop_sent = true;
            }
            if !down {
                self.feed(
                    i,
                    Event::StopRequested {
                        deadline: Some(deadline),
                    },
                );
            }
            progressed = true;
        }
        progressed
    }

    /// The exit code once everything has stopped, else None.
    pub(super) fn finished(&self) -> Option<i32> {
        let sd = self.shutdown.as_ref()?;
        if self.main.as_ref().is_some_and(|m| m.pid.is_some()) {
            return None;
        }
        if !self
            .services
            .iter()
            .all(|m| m.state.is_down() && m.state.pid.is_none())
        {
            return None;
        }
        let main_end = self.main.as_ref().and_then(|m| m.end);
        Some(match &sd.reason {
            Reason::Internal(_) => exit_code::INTERNAL,
            Reason::CriticalFailed(_, end) => match end.map(ProcessEnd::code) {
                Some(0) | None => exit_code::FAILURE,
                Some(code) => code,
            },
            Reason::MainEnded(end) => end.code(),
            Reason::Signal(_) => match main_end {
                Some(end) => end.code(),
                None if sd.killed => exit_code::SIGNAL_BASE + signo::KILL,
                None => exit_code::OK,
            },
        })
    }
}

/// A process exists or is being started for it.
fn has_process(s: &ServiceState) -> bool {
    matches!(s.phase, Phase::Starting | Phase::Running | Phase::Stopping)
}
