//! Which OOM kills belong to which service.
//!
//! The kernel counts OOM kills per memory cgroup, and every process of the container shares one:
//! the services, their children (a worker's executors, a notebook's kernels), the agent's orphans
//! and whatever `docker exec` started. The counter says how many, never whom. So a service's end is
//! charged one OOM kill only when
//! - it ended by a SIGKILL the agent did not send (no stop, restart or shutdown escalation, no
//!   operator `signal KILL`), and
//! - the counter shows a kill not yet explained.
//!
//! Kills are explained once each, in the order the counter shows them: by such a service end (one
//! kill: a process dies once), by a SIGKILL end of any other process the agent reaps (an orphan, an
//! exec probe, the main command: a kill that is not a service's), and whenever the agent reads the
//! counter otherwise (a status or health request, another service's end) while no service's
//! process is dying: the kernel counts the kill only as it sends the SIGKILL, and the victim stays
//! dying (SIGKILL pending, exiting, zombie) until the agent reaps it, so a kill seen while no
//! service is dying was another process's, and is never charged to a service that ends later.

use super::{signo, Phase, ProcessEnd, Supervisor, Sys};

impl<S: Sys> Supervisor<S> {
    /// Explains one kill the counter shows (`true`), when there is one not yet explained.
    fn explain_oom_kill(&mut self) -> bool {
        let now = self.sys.oom_kill_count();
        match (self.oom_seen, now) {
            (Some(seen), Some(now)) if now > seen => {
                self.oom_seen = Some(seen.saturating_add(1));
                true
            }
            (None, now) => {
                // A counter that appeared only now: what it counted before is unknown.
                self.oom_seen = now;
                false
            }
            _ => false,
        }
    }

    /// Reads the counter: kills not yet explained while no service's process is dying were other
    /// processes' (see the module doc). Returns the counter.
    pub(super) fn settle_oom_kills(&mut self) -> Option<u64> {
        let now = self.sys.oom_kill_count();
        let pending = matches!((self.oom_seen, now), (Some(seen), Some(now)) if now > seen);
        if self.oom_seen.is_none() || pending && !self.a_service_is_dying() {
            self.oom_seen = now.or(self.oom_seen);
        }
        now
    }

    fn a_service_is_dying(&self) -> bool {
        self.services
            .iter()
            .filter_map(|m| m.state.pid)
            .any(|pid| self.sys.process_dying(pid))
    }

    /// Service `i` ended with `end` (before the state machine sees it): charged one OOM kill by
    /// the rule in the module doc.
    pub(super) fn note_oom_kill(&mut self, i: usize, end: ProcessEnd) {
        let Some(m) = self.services.get(i) else {
            return;
        };
        let sent_by_us = m.state.phase == Phase::Stopping || m.state.killed || m.operator_killed;
        if end != ProcessEnd::Signaled(signo::KILL) || sent_by_us {
            self.settle_oom_kills();
            return;
        }
        if !self.explain_oom_kill() {
            return;
        }
        let Some(m) = self.services.get_mut(i) else {
            return;
        };
        m.oom_kills = m.oom_kills.saturating_add(1);
        log::warn!(
            "{}: killed by the kernel's OOM killer (the container's memory limit)",
            m.def.name
        );
    }

    /// A process the agent reaped that is not a service ended with `end`: a SIGKILL end explains
    /// one kill, charged to no service.
    pub(super) fn note_other_end(&mut self, end: ProcessEnd) {
        if end == ProcessEnd::Signaled(signo::KILL) {
            self.explain_oom_kill();
        }
    }
}
