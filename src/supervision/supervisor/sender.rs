//! Who sent a signal to the agent: a stop (SIGTERM/SIGINT) or reload (SIGHUP) request from one of
//! the agent's own services is ignored, unless that service's role lists the signal in its
//! `agent_signals`. A `user: root`, `capabilities: []` service may signal PID 1
//! (same uid), and a reload re-reads role files: it must not be able to make the agent act for it.
//!
//! signalfd reports the sender's pid; the signal thread turns it into the sender's lineage (its
//! ancestors, process group and session, from `/proc`) so the supervisor, which alone knows the
//! services' pids, can tell whether the sender belongs to a service. A sender outside the
//! container's pid namespace (`docker stop`, `docker kill -s HUP`) is pid 0: always obeyed.

use super::{Msg, Supervisor, Sys};

impl<S: Sys> Supervisor<S> {
    /// A stop or reload signal from inside the container: ignored when `lineage` holds a
    /// service's process, handled as any signal otherwise.
    pub(super) fn signal_from(&mut self, sig: i32, lineage: &[i32]) {
        let from = self
            .services
            .iter()
            .find(|m| m.state.pid.is_some_and(|pid| lineage.contains(&pid)));
        match from {
            Some(m) if m.def.agent_signals.contains(&sig) => {
                log::info!(
                    "signal {sig} from service {}: obeyed (its role allows it in `agent_signals`)",
                    m.def.name
                );
                self.obey(sig);
            }
            Some(m) => log::warn!(
                "signal {sig} from service {}'s process {}: ignored (a service cannot stop or reload the agent)",
                m.def.name,
                lineage.first().copied().unwrap_or(0)
            ),
            None => self.obey(sig),
        }
    }

    fn obey(&mut self, sig: i32) {
        if sig == super::signo::TERM || sig == super::signo::INT {
            // Wake any interruptible wait, as the signal thread does for other signals.
            crate::sys::interrupt::request_stop(sig);
        }
        self.handle(Msg::Signal(sig));
    }
}

/// Signals that ask the agent itself to act (stop or reload), checked against their sender.
pub fn is_request(signo: i32) -> bool {
    use super::signo::{HUP, INT, TERM};
    matches!(signo, HUP | TERM | INT)
}

/// `pid`, its ancestors (up to the agent), its process group and session, read from `/proc`.
/// Empty when the sender is gone or is the kernel / outside the namespace (pid 0).
pub fn lineage(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut current = pid;
    let me = std::process::id() as i32;
    // Bounded: a pid chain is never this deep, and a racing reparent cannot loop us.
    for _ in 0..256 {
        if current <= 1 || current == me {
            break;
        }
        let Some((ppid, pgrp, session)) = stat(current) else {
            break;
        };
        out.push(current);
        for id in [pgrp, session] {
            if id > 1 && id != me && !out.contains(&id) {
                out.push(id);
            }
        }
        current = ppid;
    }
    out
}

/// (ppid, pgrp, session) from `/proc/PID/stat` (fields 4-6, after the parenthesised name, which
/// may itself hold spaces and parentheses).
fn stat(pid: i32) -> Option<(i32, i32, i32)> {
    let text = crate::config::limits::read_text(
        format!("/proc/{pid}/stat"),
        crate::config::limits::InputKind::System,
    )
    .ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(1);
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((ppid, pgrp, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_of_a_child_names_it_and_stops_at_us() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let l = lineage(pid);
        assert_eq!(l.first(), Some(&pid), "{l:?}");
        assert!(!l.contains(&(std::process::id() as i32)), "{l:?}");
        let _ = child.kill();
        let _ = child.wait();
        assert!(lineage(0).is_empty());
    }
}
