//! Helpers for the privilege tests: root check, reading /proc/PID/status, reaping our own children,
//! and running code that changes process-wide state in a forked child.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use sparkvisor::sys::caps::CapabilitySet;
use sparkvisor::sys::spawn::{
    spawn, AgentCredentials, PrivilegePlan, Privileges, SpawnSpec, Spawned,
};
use sparkvisor::sys::users::UserIds;

#[allow(unused_imports)] // each test module uses a different subset
pub use crate::common::{cap_field, proc_status, require_root};

/// `(OsString, OsString)` pairs from string pairs.
pub fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

/// The privilege drop to `user` (`None`: the caller's ids) keeping `capabilities`, planned
/// against this process's credentials now (as a service's is with its definition).
pub fn plan(user: Option<UserIds>, capabilities: CapabilitySet, no_new_privs: bool) -> Privileges {
    let agent = AgentCredentials::current().unwrap();
    Privileges::Drop(PrivilegePlan::new(user, capabilities, no_new_privs, &agent))
}

/// A spec running `argv` with a PATH only, as the caller with no capabilities.
pub fn spec(argv: &[&str]) -> SpawnSpec {
    let Privileges::Drop(privileges) = plan(None, CapabilitySet::EMPTY, true) else {
        unreachable!()
    };
    let mut spec = SpawnSpec::new(
        argv.iter().map(OsString::from).collect(),
        env(&[("PATH", "/usr/bin:/bin")]),
        privileges,
    );
    spec.cwd = Some("/".into());
    spec
}

/// A running child that is killed and reaped when dropped (so a failed assertion leaves nothing).
pub struct Running {
    pub spawned: Spawned,
}

impl Running {
    pub fn start(spec: &SpawnSpec) -> Self {
        Self {
            spawned: spawn(spec).unwrap_or_else(|e| panic!("spawn failed: {e}")),
        }
    }
    pub fn pid(&self) -> i32 {
        self.spawned.pid
    }
    /// `/proc/PID/status` as field → value.
    pub fn status(&self) -> HashMap<String, String> {
        proc_status(self.pid())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.pid());
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
}

/// The five capability sets of a status map, in the order Eff, Prm, Inh, Bnd, Amb.
pub fn cap_sets(status: &HashMap<String, String>) -> [u64; 5] {
    ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"].map(|f| cap_field(status, f))
}

/// Runs a spec to completion with captured output; returns (exit code, stdout, stderr).
pub fn run_to_end(spec: &SpawnSpec) -> (i32, String, String) {
    let mut spawned = spawn(spec).unwrap_or_else(|e| panic!("spawn failed: {e}"));
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut f) = spawned.stdout.take() {
        f.read_to_string(&mut out).unwrap();
    }
    if let Some(mut f) = spawned.stderr.take() {
        f.read_to_string(&mut err).unwrap();
    }
    (wait_code(spawned.pid), out, err)
}

/// Waits for our own child `pid` and returns its shell-style code.
pub fn wait_code(pid: i32) -> i32 {
    match waitpid(Pid::from_raw(pid), None).unwrap() {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        other => panic!("unexpected wait status {other:?}"),
    }
}

/// Waits until `cond` holds, polling every few ms, up to a deadline.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    crate::common::wait_until(Duration::from_secs(10), what, cond);
}

/// Runs `body` in a forked child so that process-wide changes (bounding set, signal dispositions)
/// do not touch the test harness; panics with the child's message when it fails.
pub fn in_forked_child(body: impl FnOnce() -> Result<(), String>) {
    let (read, write) = nix::unistd::pipe().unwrap();
    // SAFETY: the child runs the test body and leaves with _exit; the harness is not touched.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(read);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
                .unwrap_or_else(|_| Err("panicked".to_string()));
            let code = match result {
                Ok(()) => 0,
                Err(message) => {
                    let _ = nix::unistd::write(&write, message.as_bytes());
                    1
                }
            };
            // SAFETY: leave the forked child without running the harness's exit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            let mut message = String::new();
            std::fs::File::from(read)
                .read_to_string(&mut message)
                .unwrap();
            let code = wait_code(child.as_raw());
            assert_eq!(code, 0, "forked child failed: {message}");
        }
    }
}

/// The descriptor numbers open in process `pid`.
pub fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    fds.sort_unstable();
    fds
}

/// Keeps a raw descriptor alive without close-on-exec (a would-be leak).
pub fn leaky_fd() -> std::os::fd::OwnedFd {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert_eq!(
        flags & libc::FD_CLOEXEC,
        0,
        "fd {} is close-on-exec",
        fd.as_raw_fd()
    );
    fd
}
