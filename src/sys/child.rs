//! What runs in a forked child before `execve`: the setup steps it reports and the privilege drop.
//!
//! The rule of this module: async-signal-safe only. The agent has threads, so between `fork` and
//! `exec` the child may not allocate, lock or call anything that could (another thread may have held
//! the allocator's lock at the fork). Everything used here is computed before fork
//! (a service's `PrivilegePlan` with its definition, see [`super::privileges`]; the rest by
//! [`super::spawn`]) and only read here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::caps::{self, CapSets};
use super::privileges::PrivilegePlan;
use super::signals::{set_disposition_raw, set_mask_raw, MAX_SIGNAL};

/// The shell that runs a script without `#!` ([`super::spawn::SpawnSpec::shell_fallback`]), as glibc's `execvp`.
pub(super) const SHELL: &std::ffi::CStr = c"/bin/sh";

/// One step of the child's setup, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SetupStep {
    /// dup2 of stdin/stdout/stderr.
    Stdio = 1,
    /// setsid.
    Session,
    /// setpgid.
    ProcessGroup,
    /// tcsetpgrp.
    Terminal,
    /// sigprocmask.
    SignalMask,
    /// Marking descriptors close-on-exec.
    Descriptors,
    /// PR_CAPBSET_DROP.
    BoundingSet,
    /// PR_SET_KEEPCAPS.
    KeepCaps,
    /// setgroups.
    Groups,
    /// setresgid.
    Gid,
    /// setresuid.
    Uid,
    /// capset.
    Capabilities,
    /// PR_CAP_AMBIENT.
    Ambient,
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivs,
    /// chdir.
    WorkingDir,
    /// execve.
    Exec,
}

impl SetupStep {
    pub(super) const ALL: [SetupStep; 16] = [
        SetupStep::Stdio,
        SetupStep::Session,
        SetupStep::ProcessGroup,
        SetupStep::Terminal,
        SetupStep::SignalMask,
        SetupStep::Descriptors,
        SetupStep::BoundingSet,
        SetupStep::KeepCaps,
        SetupStep::Groups,
        SetupStep::Gid,
        SetupStep::Uid,
        SetupStep::Capabilities,
        SetupStep::Ambient,
        SetupStep::NoNewPrivs,
        SetupStep::WorkingDir,
        SetupStep::Exec,
    ];

    pub(super) fn from_u8(byte: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| *s as u8 == byte)
    }

    /// The system call, as named in error messages.
    pub fn name(self) -> &'static str {
        match self {
            SetupStep::Stdio => "redirect stdio (dup2)",
            SetupStep::Session => "start a session (setsid)",
            SetupStep::ProcessGroup => "start a process group (setpgid)",
            SetupStep::Terminal => "take the terminal (tcsetpgrp)",
            SetupStep::SignalMask => "set the signal mask",
            SetupStep::Descriptors => "close inherited descriptors",
            SetupStep::BoundingSet => "drop the capability bounding set",
            SetupStep::KeepCaps => "set PR_SET_KEEPCAPS",
            SetupStep::Groups => "set supplementary groups (setgroups)",
            SetupStep::Gid => "set the group id (setresgid)",
            SetupStep::Uid => "set the user id (setresuid)",
            SetupStep::Capabilities => "set capabilities (capset)",
            SetupStep::Ambient => "set ambient capabilities",
            SetupStep::NoNewPrivs => "set PR_SET_NO_NEW_PRIVS",
            SetupStep::WorkingDir => "enter the working directory",
            SetupStep::Exec => "execute",
        }
    }
}

impl std::fmt::Display for SetupStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PrivilegePlan {
    /// Applies the plan to the calling (child) process. Async-signal-safe: no allocation, no locks.
    pub(crate) fn apply(&self) -> Result<(), (SetupStep, io::Error)> {
        if self.drop_bounding {
            for cap in 0..=self.last_cap {
                if self.keep & (1u64 << cap) == 0 {
                    caps::bounding_drop(cap).map_err(|e| (SetupStep::BoundingSet, e))?;
                }
            }
        }
        if let Some((uid, gid, groups)) = &self.ids {
            caps::prctl(libc::PR_SET_KEEPCAPS, 1, 0).map_err(|e| (SetupStep::KeepCaps, e))?;
            // SAFETY: raw id syscalls with integer arguments and a pointer to a live gid array.
            unsafe {
                check(libc::syscall(
                    libc::SYS_setgroups,
                    groups.len(),
                    groups.as_ptr(),
                ))
                .map_err(|e| (SetupStep::Groups, e))?;
                check(libc::syscall(libc::SYS_setresgid, *gid, *gid, *gid))
                    .map_err(|e| (SetupStep::Gid, e))?;
                check(libc::syscall(libc::SYS_setresuid, *uid, *uid, *uid))
                    .map_err(|e| (SetupStep::Uid, e))?;
            }
        }
        caps::set_sets(CapSets {
            effective: self.keep,
            permitted: self.keep,
            inheritable: self.keep,
        })
        .map_err(|e| (SetupStep::Capabilities, e))?;
        caps::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
            0,
        )
        .map_err(|e| (SetupStep::Ambient, e))?;
        for cap in 0..=self.last_cap {
            if self.keep & (1u64 << cap) != 0 {
                caps::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as u64,
                    u64::from(cap),
                )
                .map_err(|e| (SetupStep::Ambient, e))?;
            }
        }
        if self.ids.is_some() {
            caps::prctl(libc::PR_SET_KEEPCAPS, 0, 0).map_err(|e| (SetupStep::KeepCaps, e))?;
        }
        if self.no_new_privs {
            caps::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(|e| (SetupStep::NoNewPrivs, e))?;
        }
        Ok(())
    }
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// What the child does, with everything prepared. Borrowed data only: nothing is allocated.
pub(super) struct ChildPlan<'a> {
    pub(super) path: &'a CString,
    pub(super) argv: &'a [*const libc::c_char],
    /// With [`super::spawn::SpawnSpec::shell_fallback`]: the shell's argv (NULL-terminated).
    pub(super) shell_argv: Option<&'a [*const libc::c_char]>,
    pub(super) env: &'a [*const libc::c_char],
    pub(super) cwd: Option<&'a CString>,
    /// The descriptors to put on 0, 1 and 2 (`None` leaves the agent's).
    pub(super) stdio: &'a [Option<OwnedFd>; 3],
    /// The signal mask to set, as a kernel bit set (bit `sig - 1`).
    pub(super) signal_mask: u64,
    /// Signals left ignored; every other one gets its default disposition.
    pub(super) ignored_signals: u64,
    pub(super) umask: Option<u32>,
    pub(super) new_session: bool,
    pub(super) new_process_group: bool,
    pub(super) foreground: bool,
    pub(super) descriptors: &'a DescriptorPlan,
    pub(super) privileges: Option<&'a PrivilegePlan>,
    pub(super) status_fd: RawFd,
}

impl ChildPlan<'_> {
    /// Runs in the forked child; never returns.
    pub(super) fn run(&self) -> ! {
        let (step, err) = match self.setup() {
            Ok(()) => {
                // SAFETY: NUL-terminated strings and NULL-terminated pointer arrays built before fork.
                unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.env.as_ptr()) };
                let err = io::Error::last_os_error();
                if let (Some(libc::ENOEXEC), Some(shell_argv)) =
                    (err.raw_os_error(), self.shell_argv)
                {
                    // SAFETY: as above; the shell's argv was built before fork too. On failure the
                    // program's own error (ENOEXEC) is reported, not the shell's.
                    unsafe { libc::execve(SHELL.as_ptr(), shell_argv.as_ptr(), self.env.as_ptr()) };
                }
                (SetupStep::Exec, err)
            }
            Err(failure) => failure,
        };
        let errno = err.raw_os_error().unwrap_or(libc::EINVAL);
        let [a, b, c, d] = errno.to_ne_bytes();
        let report = [step as u8, a, b, c, d];
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer lives on the stack.
        unsafe {
            libc::write(self.status_fd, report.as_ptr().cast(), report.len());
            let not_found =
                step == SetupStep::Exec && matches!(errno, libc::ENOENT | libc::ENOTDIR);
            libc::_exit(if not_found {
                crate::error::exit_code::NOT_FOUND
            } else {
                crate::error::exit_code::CANNOT_EXECUTE
            })
        }
    }

    fn setup(&self) -> Result<(), (SetupStep, io::Error)> {
        dup_stdio(self.stdio).map_err(|e| (SetupStep::Stdio, e))?;
        // SAFETY (whole block): plain system calls with integer arguments or pointers to data
        // prepared before fork.
        unsafe {
            if self.new_session {
                if libc::setsid() < 0 {
                    return Err((SetupStep::Session, io::Error::last_os_error()));
                }
            } else if self.new_process_group {
                if libc::setpgid(0, 0) < 0 {
                    return Err((SetupStep::ProcessGroup, io::Error::last_os_error()));
                }
                // Ignored for now (reset below), so a background group is not stopped by SIGTTOU.
                set_disposition_raw(libc::SIGTTOU, true);
                if self.foreground && libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp()) < 0 {
                    let err = io::Error::last_os_error();
                    // No terminal (or none controlling us): nothing to take, as tini does.
                    if !matches!(err.raw_os_error(), Some(libc::ENOTTY | libc::ENXIO)) {
                        return Err((SetupStep::Terminal, err));
                    }
                }
            }
            // Dispositions first, so no agent handler can run between unblocking and exec.
            for sig in 1..=MAX_SIGNAL {
                let ignore = self.ignored_signals & (1u64 << (sig - 1)) != 0;
                // KILL and STOP refuse (EINVAL): nothing to reset there.
                set_disposition_raw(sig, ignore);
            }
            if let Some(umask) = self.umask {
                libc::umask(umask as libc::mode_t);
            }
        }
        // The raw call: glibc's wrapper would keep its internal signals (32, 33) as they are.
        set_mask_raw(self.signal_mask).map_err(|e| (SetupStep::SignalMask, e))?;
        self.mark_descriptors_cloexec()
            .map_err(|e| (SetupStep::Descriptors, e))?;
        if let Some(privileges) = self.privileges {
            privileges.apply()?;
        }
        if let Some(cwd) = self.cwd {
            // SAFETY: a NUL-terminated path built before fork.
            if unsafe { libc::chdir(cwd.as_ptr()) } < 0 {
                return Err((SetupStep::WorkingDir, io::Error::last_os_error()));
            }
        }
        Ok(())
    }

    /// Marks every descriptor ≥ 3 close-on-exec as the plan says (the status pipe must stay open
    /// until exec, so close-on-exec rather than close).
    fn mark_descriptors_cloexec(&self) -> io::Result<()> {
        match self.descriptors {
            DescriptorPlan::Keep => Ok(()),
            DescriptorPlan::CloseRange => close_range_cloexec(3),
            DescriptorPlan::List(fds) => {
                for &fd in fds {
                    // SAFETY: fcntl on a descriptor number; EBADF for one closed meanwhile is harmless.
                    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                }
                Ok(())
            }
        }
    }
}

/// dup2 onto 0, 1, 2 (dup2 clears close-on-exec on the copy). Async-signal-safe.
fn dup_stdio(child: &[Option<OwnedFd>; 3]) -> io::Result<()> {
    for (target, fd) in (0..).zip(child) {
        if let Some(fd) = fd {
            // SAFETY: both descriptors are valid in the child.
            if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// How the child closes inherited descriptors, decided before fork.
pub(super) enum DescriptorPlan {
    /// Leave them as they are ([`super::spawn::Descriptors::KeepInherited`]).
    Keep,
    /// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` (Linux 5.11+).
    CloseRange,
    /// Older kernels: the agent's descriptors ≥ 3, read from /proc before fork.
    List(Vec<RawFd>),
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`. Async-signal-safe.
pub(super) fn close_range_cloexec(first: u32) -> io::Result<()> {
    // SAFETY: close_range with integer arguments only marks descriptors close-on-exec.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
