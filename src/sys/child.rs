//! What runs in a forked child before `execve`: the setup steps it reports and the privilege drop.
//!
//! The rule of this module: async-signal-safe only. The agent has threads, so between `fork` and
//! `exec` the child may not allocate, lock or call anything that could (another thread may have held
//! the allocator's lock at the fork). Everything used here is computed before fork
//! (`PrivilegePlan::new` in [`super::privileges`], the plans of [`super::spawn`]) and only read here.

use std::io;

use super::caps::{self, CapSets};
use super::privileges::PrivilegePlan;

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
