//! The one and only `waitpid(-1)` of sparkvisor: every ended child becomes a `(pid, ProcessEnd)` event.
//! No other code waits for processes (a second waiter would steal exit statuses).

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::ProcessEnd;

/// Reaps every child that has ended, without blocking, calling `on_exit(pid, end)` for each.
/// Returns when no ended child is left (still-running children, or none at all).
pub fn reap_children(mut on_exit: impl FnMut(i32, ProcessEnd)) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => on_exit(pid.as_raw(), ProcessEnd::Exited(code)),
            Ok(WaitStatus::Signaled(pid, signal, _core)) => {
                on_exit(pid.as_raw(), ProcessEnd::Signaled(signal as i32))
            }
            // Nothing has ended (StillAlive); stop/continue reports are not requested.
            Ok(_) => return,
            Err(Errno::EINTR) => {}
            // ECHILD: no children at all.
            Err(_) => return,
        }
    }
}
