//! OOM attribution: which service the kernel's OOM killer hit, from the memory cgroup's
//! OOM-kill counter and how the process died.

use super::{signo, Supervisor, Sys};
use crate::error::ProcessEnd;
use crate::service::Phase;

impl<S: Sys> Supervisor<S> {
    /// Counts service `i`'s end as OOM kills when it died of a SIGKILL sparkvisor did not send
    /// (no stop, restart or shutdown escalation, no operator `signal KILL`) and the cgroup's
    /// OOM-kill counter rose since it was last read: the kernel raises the counter before it
    /// sends the SIGKILL, so the rise is visible by the time the process is reaped. The counter is
    /// read at every service end, so a rise another death explains is not charged to a later one.
    pub(super) fn note_oom_kill(&mut self, i: usize, end: ProcessEnd) {
        let now = self.sys.oom_kill_count();
        let before = self.oom_seen;
        self.oom_seen = now.or(before);
        let delta = match (before, now) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => 0,
        };
        let Some(m) = self.services.get_mut(i) else {
            return;
        };
        let sent_by_us = m.state.phase == Phase::Stopping || m.state.killed || m.operator_killed;
        if delta == 0 || end != ProcessEnd::Signaled(signo::KILL) || sent_by_us {
            return;
        }
        m.oom_kills = m.oom_kills.saturating_add(delta);
        log::warn!(
            "{}: killed by the kernel's OOM killer (the container's memory limit)",
            m.def.name
        );
    }
}
