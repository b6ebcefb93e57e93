//! Signals as events: every signal is blocked and read synchronously from a signalfd.
//!
//! No signal handler is installed, ever. Blocked signals whose disposition is SIG_DFL are still queued for
//! PID 1 (the kernel drops them only when they are unblocked), and dispositions inherited as SIG_IGN stay
//! untouched. [`block_signals`] records the mask and ignored set sparkvisor started with as a
//! [`ChildSignals`], which [`super::spawn`] gives back to tini mode's child.
//!
//! One gap: Rust's runtime sets SIGPIPE to SIG_IGN before `main`, so an inherited SIGPIPE disposition
//! cannot be seen; [`ChildSignals::capture`] never reports SIGPIPE as ignored, and every child starts
//! with SIGPIPE at its default (as std's `Command` does), so pipelines end as they do under a shell.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Signal numbers the rest of the crate names (the platform's values, from libc).
pub const SIGHUP: i32 = libc::SIGHUP;
/// SIGINT.
pub const SIGINT: i32 = libc::SIGINT;
/// SIGKILL.
pub const SIGKILL: i32 = libc::SIGKILL;
/// SIGTERM.
pub const SIGTERM: i32 = libc::SIGTERM;
/// SIGCHLD.
pub const SIGCHLD: i32 = libc::SIGCHLD;
/// SIGUSR1.
pub const SIGUSR1: i32 = libc::SIGUSR1;
/// SIGTTIN (terminal job control).
pub const SIGTTIN: i32 = libc::SIGTTIN;
/// SIGTTOU (terminal job control).
pub const SIGTTOU: i32 = libc::SIGTTOU;

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

/// Highest signal number (the real-time range included), as the kernel numbers them.
pub(crate) const MAX_SIGNAL: i32 = 64;

/// The kernel's signal set size (64 signals), for the raw signal system calls.
const KERNEL_SIGSET_BYTES: usize = 8;

/// The signal state a child starts with when it should not be the default: the mask and the
/// ignored signals. [`block_signals`] returns the state sparkvisor itself was started with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildSignals {
    /// Signals blocked in the child.
    pub blocked: Vec<i32>,
    /// Signals left ignored (`SIG_IGN`) in the child; every other signal gets `SIG_DFL`.
    pub ignored: Vec<i32>,
}

impl ChildSignals {
    /// The calling thread's current mask and ignored signals (real-time and glibc-reserved ones
    /// included), for a child that should start as this process started. SIGPIPE is never reported
    /// ignored: Rust's runtime ignores it before `main`, so its inherited disposition is unknown.
    pub fn capture() -> io::Result<Self> {
        let mask = current_mask()?;
        let blocked = (1..=MAX_SIGNAL).filter(|&s| mask & bit(s) != 0).collect();
        let ignored = (1..=MAX_SIGNAL)
            .filter(|&s| s != libc::SIGPIPE && is_ignored(s))
            .collect();
        Ok(Self { blocked, ignored })
    }

    /// The mask as a kernel signal set (bit `sig - 1`).
    pub(crate) fn mask_bits(&self) -> u64 {
        bits(&self.blocked)
    }

    /// The ignored signals as a bit set (bit `sig - 1`).
    pub(crate) fn ignored_bits(&self) -> u64 {
        bits(&self.ignored)
    }
}

/// Bit `sig - 1` of a kernel signal set; 0 for numbers outside 1..=64.
fn bit(sig: i32) -> u64 {
    if (1..=MAX_SIGNAL).contains(&sig) {
        1u64 << (sig - 1)
    } else {
        0
    }
}

fn bits(signals: &[i32]) -> u64 {
    signals.iter().fold(0, |set, &s| set | bit(s))
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
/// thread and returns the signal state sparkvisor was started with (for tini mode's child). Call in the
/// main thread before any thread starts, so that every thread inherits the mask and signals are only ever
/// taken from a [`SignalReader`].
pub fn block_signals() -> io::Result<ChildSignals> {
    // An inherited SIGCHLD set to SIG_IGN makes the kernel reap children itself (waitpid then fails
    // with ECHILD and exit codes are lost), so an init must have the default disposition, and so does
    // its child (as before: the reset happens before the child is forked).
    reset_ignored_sigchld()?;
    let inherited = ChildSignals::capture()?;
    blocked_set().thread_set_mask()?;
    Ok(inherited)
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

/// The calling thread's mask as the kernel has it (glibc's wrapper would hide its reserved 32, 33).
fn current_mask() -> io::Result<u64> {
    let mut mask = 0u64;
    // SAFETY: how is ignored with a NULL new set; the old set is written into a local 8-byte set.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut mask as *mut u64,
            KERNEL_SIGSET_BYTES,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(mask)
}

/// Sets the calling thread's mask to `mask` (bit `sig - 1`) with the raw system call, which, unlike
/// glibc's wrapper, also applies glibc's reserved signals. Async-signal-safe.
pub(crate) fn set_mask_raw(mask: u64) -> io::Result<()> {
    // SAFETY: a pointer to a local 8-byte kernel sigset; no old set requested.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_BYTES,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The kernel's `struct sigaction` (x86_64, aarch64 and the other generic layouts).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Whether `sig` is ignored, read with the raw `rt_sigaction` (glibc's wrapper refuses 32 and 33).
fn is_ignored(sig: i32) -> bool {
    let mut old = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: query only (NULL new action); the old one is written into a local kernel sigaction.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<KernelSigaction>(),
            &mut old as *mut KernelSigaction,
            KERNEL_SIGSET_BYTES,
        )
    };
    rc == 0 && old.handler == libc::SIG_IGN
}

/// Sets signal `sig` to `SIG_IGN` or `SIG_DFL` with the raw `rt_sigaction`, which, unlike glibc's
/// wrapper, also resets the real-time signals glibc reserves (32, 33) when an ancestor ignored them.
/// Async-signal-safe; errors (KILL, STOP) are ignored.
pub(crate) fn set_disposition_raw(sig: i32, ignore: bool) {
    let action = KernelSigaction {
        handler: if ignore { libc::SIG_IGN } else { libc::SIG_DFL },
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid kernel sigaction for SIG_IGN/SIG_DFL (no handler code, so no restorer).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            KERNEL_SIGSET_BYTES,
        );
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
        Ok(Self {
            fd: SignalFd::with_flags(&blocked_set(), SfdFlags::SFD_CLOEXEC)?,
        })
    }

    /// Waits for the next signal and returns its number.
    #[allow(clippy::should_implement_trait)] // not an Iterator: it is fallible and blocks
    pub fn next(&mut self) -> io::Result<i32> {
        loop {
            match self.read_one() {
                Ok(Some(signo)) => return Ok(signo),
                // The descriptor blocks, so None (EAGAIN) is not expected; should it come, wait
                // for readability instead of spinning.
                Ok(None) => {
                    super::poll::wait_readable(&[self.fd.as_fd()], None)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the next signal and returns its number and the sender's pid in the agent's pid
    /// namespace (0 when sent by the kernel or from outside the namespace, as `docker kill` does).
    pub fn next_with_sender(&mut self) -> io::Result<(i32, i32)> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => {
                    return Ok((
                        i32::try_from(info.ssi_signo).unwrap_or(0),
                        i32::try_from(info.ssi_pid).unwrap_or(0),
                    ))
                }
                Ok(None) => {
                    super::poll::wait_readable(&[self.fd.as_fd()], None)?;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads one signal; `None` only if the read would block.
    fn read_one(&mut self) -> io::Result<Option<i32>> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Ok(Some(i32::try_from(info.ssi_signo).unwrap_or(0))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        }
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

// The name table is pure and lives in `crate::signal_names` (config, service and status::wire
// use it without depending on `sys`); re-exported here for the callers inside `sys`.
pub use crate::signal_names::{
    rt_min, short_signal_name, signal_by_name, signal_name, standard_signal_name,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_never_reports_the_runtimes_sigpipe_ignore() {
        // Rust's runtime ignored SIGPIPE before the test harness's main.
        assert!(is_ignored(libc::SIGPIPE));
        let captured = ChildSignals::capture().unwrap();
        assert!(!captured.ignored.contains(&libc::SIGPIPE), "{captured:?}");
        assert_eq!(captured.ignored_bits() & bit(libc::SIGPIPE), 0);
    }

    #[test]
    fn signal_lists_become_kernel_bit_sets() {
        let signals = ChildSignals {
            blocked: vec![libc::SIGHUP, 64, 0, 65],
            ignored: vec![libc::SIGUSR2],
        };
        assert_eq!(signals.mask_bits(), 1 | (1u64 << 63));
        assert_eq!(signals.ignored_bits(), 1u64 << (libc::SIGUSR2 - 1));
    }
}
