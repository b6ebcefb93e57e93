//! Process-level system calls: signalling, subreaper and parent-death settings, the working directory.
//! (Children are started by [`super::spawn`].)

use std::io;

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

/// True when `e` says the target process (or group) does not exist any more (ESRCH).
pub fn is_no_such_process(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ESRCH)
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

/// The calling process's effective uid and gid (who a non-root agent runs its services as).
pub fn current_ids() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}
