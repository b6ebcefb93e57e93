//! The one and only `waitpid(-1)` of sparkvisor: every ended child becomes a `(pid, ProcessEnd)` event.
//! No other code waits for processes (a second waiter would steal exit statuses).
//!
//! The wait status is decoded here, by hand, from the raw integer the kernel returns. A typed
//! wrapper (nix's `waitpid`) cannot represent a child killed by a real-time signal (32..=64): it
//! collects the child and then returns an error, so the exit would be lost and the service would
//! stay "running" with a dead pid forever. Here a signal is a plain number, so every reaped pid is
//! exactly one event.

use crate::error::ProcessEnd;

/// What one raw wait status says (see `wait(2)`; the layout is the same on every Linux arch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The child ended: with an exit code or by a signal.
    Ended(ProcessEnd),
    /// The child ended by a signal and dumped core (still one end: `Ended` with the signal).
    CoreDumped(i32),
    /// The child was stopped by this signal (only reported with `WUNTRACED`; never requested).
    Stopped(i32),
    /// The child was continued by SIGCONT (only with `WCONTINUED`; never requested).
    Continued,
    /// A status no Linux kernel produces.
    Unknown(i32),
}

impl WaitOutcome {
    /// The end of the process, when the status reports one.
    pub fn end(self) -> Option<ProcessEnd> {
        match self {
            WaitOutcome::Ended(end) => Some(end),
            WaitOutcome::CoreDumped(signo) => Some(ProcessEnd::Signaled(signo)),
            WaitOutcome::Stopped(_) | WaitOutcome::Continued | WaitOutcome::Unknown(_) => None,
        }
    }
}

/// Decodes a raw wait status (the `WIFEXITED`/`WIFSIGNALED`/`WIFSTOPPED`/`WIFCONTINUED` macros of
/// glibc and musl, written out so that every signal number 1..=64 stays a number).
pub fn decode_status(status: i32) -> WaitOutcome {
    let low = status & 0x7f;
    if status == 0xffff {
        return WaitOutcome::Continued;
    }
    if status & 0xff == 0x7f {
        return WaitOutcome::Stopped((status >> 8) & 0xff);
    }
    if low == 0 {
        return WaitOutcome::Ended(ProcessEnd::Exited((status >> 8) & 0xff));
    }
    if (1..=64).contains(&low) {
        if status & 0x80 != 0 {
            return WaitOutcome::CoreDumped(low);
        }
        return WaitOutcome::Ended(ProcessEnd::Signaled(low));
    }
    WaitOutcome::Unknown(status)
}

/// Reaps every child that has ended, without blocking, calling `on_exit(pid, end)` for each.
/// Returns when no ended child is left (still-running children, or none at all: ECHILD).
/// Any other wait error is logged and the loop goes on (it only stops after repeated errors, so a
/// kernel that keeps failing cannot spin the supervisor).
pub fn reap_children(mut on_exit: impl FnMut(i32, ProcessEnd)) {
    let mut errors = 0u32;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: plain syscall; `status` is a valid, writable c_int for its whole duration.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            match decode_status(status).end() {
                Some(end) => on_exit(pid, end),
                None => log::warn!("pid {pid}: unexpected wait status {status:#x}, not an end"),
            }
            continue;
        }
        if pid == 0 {
            // Children exist, none has ended.
            return;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ECHILD) => return,
            _ => {
                errors += 1;
                log::error!("waitpid failed: {err}");
                if errors >= 16 {
                    // The next SIGCHLD tries again; an error that repeats must not spin us.
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every signal number the kernel has, checked against the C library's own macros.
    #[test]
    fn every_signal_number_decodes_to_itself() {
        for signo in 1..=64 {
            let raw = signo;
            assert!(libc::WIFSIGNALED(raw), "libc disagrees for {signo}");
            assert_eq!(libc::WTERMSIG(raw), signo);
            assert_eq!(
                decode_status(raw),
                WaitOutcome::Ended(ProcessEnd::Signaled(signo)),
                "signal {signo}"
            );
            assert_eq!(
                decode_status(raw).end().map(ProcessEnd::code),
                Some((128 + signo) & 0xff)
            );
            let cored = signo | 0x80;
            assert!(libc::WCOREDUMP(cored));
            assert_eq!(decode_status(cored), WaitOutcome::CoreDumped(signo));
            assert_eq!(
                decode_status(cored).end(),
                Some(ProcessEnd::Signaled(signo))
            );
        }
    }

    #[test]
    fn exit_codes_decode() {
        for code in 0..=255 {
            let raw = code << 8;
            assert!(libc::WIFEXITED(raw));
            assert_eq!(
                decode_status(raw),
                WaitOutcome::Ended(ProcessEnd::Exited(code))
            );
        }
    }

    #[test]
    fn stopped_and_continued_are_not_ends() {
        for signo in [
            libc::SIGSTOP,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGRTMIN(),
        ] {
            let raw = (signo << 8) | 0x7f;
            assert!(libc::WIFSTOPPED(raw));
            assert_eq!(decode_status(raw), WaitOutcome::Stopped(signo));
            assert_eq!(decode_status(raw).end(), None);
        }
        assert!(libc::WIFCONTINUED(0xffff));
        assert_eq!(decode_status(0xffff), WaitOutcome::Continued);
        assert_eq!(decode_status(0xffff).end(), None);
    }

    /// Real children killed by real-time signals decode to exactly that signal.
    #[test]
    fn real_children_killed_by_rt_signals_decode() {
        for signo in [libc::SIGRTMIN(), libc::SIGRTMIN() + 2, libc::SIGRTMAX()] {
            let child = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("kill -{signo} $$"))
                .spawn();
            let Ok(child) = child else { return };
            let pid = child.id() as i32;
            let mut status = 0;
            // SAFETY: plain syscall waiting for our own child (blocking: it kills itself at once).
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(r, pid);
            assert_eq!(
                decode_status(status).end(),
                Some(ProcessEnd::Signaled(signo))
            );
        }
    }
}
