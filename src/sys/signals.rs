//! Signals as events: every signal is blocked and read synchronously from a signalfd.
//!
//! No signal handler is installed, ever. Blocked signals whose disposition is SIG_DFL are still queued for
//! PID 1 (the kernel drops them only when they are unblocked), dispositions inherited as SIG_IGN stay
//! untouched and pass to children through exec, and a child only needs the inherited mask restored
//! ([`InheritedSignals::restore_in_child`]). One gap: Rust's runtime sets SIGPIPE to SIG_IGN before `main`,
//! so an inherited SIGPIPE disposition cannot be seen, and std resets it to SIG_DFL in every child.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Synchronous faults: delivered to the faulting thread, so they are never blocked (blocking them would turn
/// a crash into an endless loop).
const SYNCHRONOUS_FAULTS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// The signal mask sparkvisor was started with, to be restored in every child.
#[derive(Debug, Clone)]
pub struct InheritedSignals {
    mask: SigSet,
}

/// The set sparkvisor blocks (and reads from its signalfd): everything but the synchronous faults.
fn blocked_set() -> SigSet {
    let mut set = SigSet::all();
    for fault in SYNCHRONOUS_FAULTS {
        set.remove(fault);
    }
    set
}

/// Blocks every signal except the synchronous faults (SEGV, BUS, ILL, FPE, ABRT, TRAP, SYS) in the calling
/// thread and returns what was inherited. Call in the main thread before any thread starts, so that every
/// thread inherits the mask and signals are only ever taken from a [`SignalReader`].
pub fn block_signals() -> io::Result<InheritedSignals> {
    let mask = blocked_set().thread_swap_mask(SigmaskHow::SIG_SETMASK)?;
    // An inherited SIGCHLD set to SIG_IGN makes the kernel reap children itself (waitpid then fails
    // with ECHILD and exit codes are lost), so an init must have the default disposition.
    reset_ignored_sigchld()?;
    Ok(InheritedSignals { mask })
}

fn reset_ignored_sigchld() -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code of ours in signal context.
    let previous = unsafe { sigaction(Signal::SIGCHLD, &default) }?;
    if !matches!(previous.handler(), SigHandler::SigIgn) {
        // Put back whatever it was (SIG_DFL or a handler a test harness installed): only SIG_IGN is harmful.
        // SAFETY: restores the previous action unchanged.
        unsafe { sigaction(Signal::SIGCHLD, &previous) }?;
    }
    Ok(())
}

impl InheritedSignals {
    /// Async-signal-safe (no allocation, no lock): restores the inherited mask in a forked child, for use
    /// in `pre_exec`. std clears the child's mask before `pre_exec` closures run, so this must be called.
    pub fn restore_in_child(&self) -> io::Result<()> {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.mask), None)?;
        Ok(())
    }
}

/// A signalfd over every blocked signal (CLOEXEC). [`SignalReader::next`] blocks until a signal arrives.
#[derive(Debug)]
pub struct SignalReader {
    fd: SignalFd,
}

impl SignalReader {
    /// A blocking reader. Call [`block_signals`] first, or the signals are delivered instead of queued.
    pub fn new() -> io::Result<Self> {
        Self::with_flags(SfdFlags::SFD_CLOEXEC)
    }

    /// A non-blocking reader for use with poll/epoll on [`AsRawFd::as_raw_fd`]: see [`SignalReader::try_next`].
    pub fn new_nonblocking() -> io::Result<Self> {
        Self::with_flags(SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
    }

    fn with_flags(flags: SfdFlags) -> io::Result<Self> {
        Ok(Self {
            fd: SignalFd::with_flags(&blocked_set(), flags)?,
        })
    }

    /// Waits for the next signal and returns its number.
    #[allow(clippy::should_implement_trait)] // not an Iterator: it is fallible and blocks
    pub fn next(&mut self) -> io::Result<i32> {
        loop {
            match self.try_next() {
                Ok(Some(signo)) => return Ok(signo),
                // Only a non-blocking reader yields None; wait for readability instead of spinning.
                Ok(None) => wait_readable(self.fd.as_fd())?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Returns the next pending signal, or `None` when none is pending (non-blocking readers only).
    pub fn try_next(&mut self) -> io::Result<Option<i32>> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Ok(Some(i32::try_from(info.ssi_signo).unwrap_or(0))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn wait_readable(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl AsRawFd for SignalReader {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

impl AsFd for SignalReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Standard signal names without the `SIG` prefix, by number (Linux x86_64/aarch64 numbering via libc).
const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Aliases accepted by [`signal_by_name`] but never printed.
const ALIASES: [(&str, i32); 4] = [
    ("IOT", libc::SIGABRT),
    ("POLL", libc::SIGIO),
    ("CLD", libc::SIGCHLD),
    ("UNUSED", libc::SIGSYS),
];

fn rt_min() -> i32 {
    libc::SIGRTMIN()
}

fn rt_max() -> i32 {
    libc::SIGRTMAX()
}

/// Parses a signal given by name or number: `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+2`, `SIGRTMAX-1`.
/// Returns `None` for anything that is not a valid signal number.
pub fn signal_by_name(name: &str) -> Option<i32> {
    let trimmed = name.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return (1..=rt_max()).contains(&number).then_some(number);
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, signo)) = NAMES.iter().chain(ALIASES.iter()).find(|(n, _)| *n == bare) {
        return Some(signo);
    }
    let (base, offset) = if let Some(rest) = bare.strip_prefix("RTMIN") {
        (rt_min(), parse_offset(rest, '+')?)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        (rt_max(), -parse_offset(rest, '-')?)
    } else {
        return None;
    };
    let signo = base + offset;
    (rt_min()..=rt_max()).contains(&signo).then_some(signo)
}

/// `""` → 0, `"+3"` (with `sign` `+`) → 3.
fn parse_offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
}

/// The conventional name of a signal: `SIGTERM`, `SIGRTMIN+2`; unknown numbers print as `SIG<n>`.
pub fn signal_name(signo: i32) -> String {
    if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == signo) {
        return format!("SIG{name}");
    }
    if (rt_min()..=rt_max()).contains(&signo) {
        let offset = signo - rt_min();
        return if offset == 0 {
            "SIGRTMIN".to_string()
        } else {
            format!("SIGRTMIN+{offset}")
        };
    }
    format!("SIG{signo}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        assert_eq!(signal_by_name("TERM"), Some(libc::SIGTERM));
        assert_eq!(signal_by_name("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_by_name("sigterm"), Some(libc::SIGTERM));
        assert_eq!(signal_by_name("15"), Some(15));
        assert_eq!(signal_by_name("PWR"), Some(libc::SIGPWR));
        assert_eq!(signal_by_name("IOT"), Some(libc::SIGABRT));
        assert_eq!(signal_by_name("RTMIN"), Some(libc::SIGRTMIN()));
        assert_eq!(signal_by_name("RTMIN+2"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(signal_by_name("SIGRTMAX-1"), Some(libc::SIGRTMAX() - 1));
        for signo in 1..=libc::SIGRTMAX() {
            let name = signal_name(signo);
            // 32 and 33 are reserved by glibc below SIGRTMIN and have no name.
            if !name.starts_with("SIG3") {
                assert_eq!(signal_by_name(&name), Some(signo), "{name}");
            }
        }
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "0", "-1", "65", "FOO", "SIG", "RTMIN+99", "RTMIN-1", "RTMAX+1", "RTMIN+x",
        ] {
            assert_eq!(signal_by_name(bad), None, "{bad}");
        }
    }
}
