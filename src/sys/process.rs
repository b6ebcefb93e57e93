//! Process-level system calls: signalling, subreaper and parent-death settings, and spawning the single
//! child of tini mode (own process group, foreground of the tty, inherited signal mask).

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use super::signals::InheritedSignals;

/// Sends `signo` (any number, real-time included) to one process.
pub fn send_signal(pid: i32, signo: i32) -> io::Result<()> {
    kill_raw(pid, signo)
}

/// Sends `signo` to every process of the process group `pgid`.
pub fn signal_group(pgid: i32, signo: i32) -> io::Result<()> {
    kill_raw(-pgid, signo)
}

fn kill_raw(target: i32, signo: i32) -> io::Result<()> {
    if target == 0 || target == -1 || target == i32::MIN {
        // 0 and -1 would signal our own group or every process: never what a caller means.
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: kill takes plain integers and has no memory effects.
    if unsafe { libc::kill(target, signo) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Registers the calling process as a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants are
/// re-parented to it instead of to PID 1.
pub fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)?;
    Ok(())
}

/// True when the calling process is a child subreaper.
pub fn is_child_subreaper() -> bool {
    nix::sys::prctl::get_child_subreaper().unwrap_or(false)
}

/// Asks the kernel to send `signo` to this process when its parent dies (`PR_SET_PDEATHSIG`).
pub fn set_parent_death_signal(signo: i32) -> io::Result<()> {
    let signal =
        libc::c_ulong::try_from(signo).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    if unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            signal,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } == 0
    {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling process's pid.
pub fn current_pid() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// Changes the working directory to `/` so the init does not keep a mount busy (the child keeps its own).
pub fn release_cwd() -> io::Result<()> {
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Starts `command[0]` (found on PATH as execvp does) with `command[1..]`, the environment and stdio of
/// this process, in its own process group, in the foreground of the terminal when stdin is one, and with
/// the signal mask sparkvisor inherited. Returns its pid. The child is never waited for here: the
/// reaper reports its end. Exec errors come back as the `io::Error` of the failed `execvp`.
pub fn spawn_foreground_child(
    command: &[OsString],
    inherited: &InheritedSignals,
) -> io::Result<i32> {
    let Some((program, args)) = command.split_first() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let inherited = inherited.clone();
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: the closure runs between fork and exec; it only makes async-signal-safe system calls
    // (sigprocmask, setpgid, isatty, tcsetpgrp) and does not allocate or lock.
    unsafe {
        cmd.pre_exec(move || isolate_child(&inherited));
    }
    let child = cmd.spawn()?;
    // Dropping `Child` neither waits nor kills; the reaper owns the exit status.
    i32::try_from(child.id()).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// In the forked child: own process group, foreground of the tty, inherited mask. tini's `isolate_child`
/// plus `restore_signals`.
fn isolate_child(inherited: &InheritedSignals) -> io::Result<()> {
    // While taking the terminal, a background process group would get SIGTTOU (and stop); blocking the
    // job-control signals makes tcsetpgrp succeed without any signal being generated.
    let mut job_control = SigSet::empty();
    job_control.add(Signal::SIGTTOU);
    job_control.add(Signal::SIGTTIN);
    job_control.add(Signal::SIGTSTP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&job_control), None)?;
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    // SAFETY: isatty/tcsetpgrp/getpgrp take plain integers.
    unsafe {
        if libc::isatty(libc::STDIN_FILENO) == 1
            && libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp()) != 0
        {
            let errno = Errno::last();
            // No controlling terminal (e.g. a tty passed without a session): nothing to take, as in tini.
            if errno != Errno::ENOTTY && errno != Errno::ENXIO {
                return Err(errno.into());
            }
        }
    }
    // Never leave TSTP/TTIN/TTOU blocked unless they were inherited blocked (catatonit's bug).
    inherited.restore_in_child()
}
