//! Waits that a stop (SIGTERM, SIGINT) interrupts, at every moment of the agent's life.
//!
//! Before supervision starts there is no signal thread yet: [`arm`] opens a signalfd for TERM and
//! INT only (they are already blocked, so they queue), and every wait here polls it beside what it
//! waits for. Once supervision runs, the signal thread calls [`request_stop`] when TERM or INT
//! arrives, which wakes the same waits through a self-pipe (a SIGHUP reload waiting for a file must
//! not keep the supervisor from stopping). An interrupted wait fails with
//! `io::ErrorKind::Interrupted`; [`stop_requested`] tells the caller why, and the caller (`app`)
//! chooses the exit code.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The stop signal received (0: none yet).
static STOPPED: AtomicI32 = AtomicI32::new(0);
/// The start-up signalfd (TERM, INT), from [`arm`] to [`disarm`].
static STARTUP: Mutex<Option<SignalFd>> = Mutex::new(None);
/// Written to by [`request_stop`]; read end polled by the waits.
static WAKE: OnceLock<(UnixStream, UnixStream)> = OnceLock::new();

fn wake_pair() -> Option<&'static (UnixStream, UnixStream)> {
    if let Some(pair) = WAKE.get() {
        return Some(pair);
    }
    let pair = UnixStream::pair().ok()?;
    pair.0.set_nonblocking(true).ok()?;
    pair.1.set_nonblocking(true).ok()?;
    Some(WAKE.get_or_init(|| pair))
}

/// Makes start-up waits interruptible by TERM and INT. Call after
/// [`super::signals::block_signals`] and before reading any injected input.
pub fn arm() -> io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    *STARTUP.lock().unwrap_or_else(PoisonError::into_inner) = Some(fd);
    wake_pair();
    Ok(())
}

/// Start-up is over (the signal thread reads every signal from now on).
pub fn disarm() {
    *STARTUP.lock().unwrap_or_else(PoisonError::into_inner) = None;
}

/// Records a stop (TERM or INT, from the signal thread) and wakes every interruptible wait.
pub fn request_stop(signo: i32) {
    STOPPED.store(signo, Ordering::SeqCst);
    if let Some((_, tx)) = wake_pair() {
        let _ = (&*tx).write(&[1]);
    }
}

/// The stop signal received during an interruptible wait or read, if any.
pub fn stop_requested() -> Option<i32> {
    match STOPPED.load(Ordering::SeqCst) {
        0 => None,
        signo => Some(signo),
    }
}

fn interrupted() -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        format!(
            "interrupted by signal {}",
            super::signals::signal_name(stop_requested().unwrap_or(0))
        ),
    )
}

/// Takes a pending TERM/INT from the start-up signalfd, if armed.
fn take_startup_signal() -> bool {
    let mut guard = STARTUP.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(fd) = guard.as_mut() else {
        return false;
    };
    match fd.read_signal() {
        Ok(Some(info)) => {
            STOPPED.store(i32::try_from(info.ssi_signo).unwrap_or(0), Ordering::SeqCst);
            true
        }
        _ => false,
    }
}

/// Waits until `fd` is readable (true), `timeout` passes (false), or a stop arrives
/// (`Err(Interrupted)`).
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if stop_requested().is_some() || take_startup_signal() {
            return Err(interrupted());
        }
        let startup = STARTUP.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fds = vec![fd];
        if let Some(s) = startup.as_ref() {
            fds.push(s.as_fd());
        }
        if let Some((rx, _)) = wake_pair() {
            fds.push(rx.as_fd());
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ready = super::poll::wait_readable(&fds, left)?;
        drop(startup);
        if stop_requested().is_some() || take_startup_signal() {
            return Err(interrupted());
        }
        if ready.first().copied().unwrap_or(false) {
            return Ok(true);
        }
        if left.is_some_and(|l| l.is_zero()) || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}
