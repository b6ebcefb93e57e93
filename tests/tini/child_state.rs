#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! What the child of tini mode starts with: the signal mask and ignored signals sparkvisor inherited
//! (compared in /proc/self/status), no file descriptor sparkvisor opened (inherited ones pass through),
//! the same cwd (sparkvisor itself moves to /), its own process group, the foreground of the tty.

use crate::support;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use support::*;

fn bit(signo: i32) -> u64 {
    1u64 << (signo - 1)
}

/// The child's (SigBlk, SigIgn) when sparkvisor is started with `blocked` blocked and `ignored` ignored.
fn child_signal_state(blocked: &'static [i32], ignored: &'static [i32]) -> (u64, u64) {
    // cat, not grep: GNU grep installs its own SIGSEGV handler (c-stack).
    let mut cmd = direct(["-s", "--", "cat", "/proc/self/status"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in blocked {
                libc::sigaddset(&mut set, s);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for &s in ignored {
                libc::signal(s, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let out = output(cmd);
    assert_eq!(
        code(out.status),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (field(&text, "SigBlk:"), field(&text, "SigIgn:"))
}

/// A hex mask field of a /proc status text.
fn field(status: &str, name: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(name)).unwrap();
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// Signals the test process itself ignores (its own environment may ignore some, e.g. 32), except
/// SIGPIPE, which std resets to the default in every child it spawns.
fn harness_ignores() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    field(&status, "SigIgn:") & !bit(libc::SIGPIPE)
}

#[test]
fn child_gets_the_inherited_mask_and_ignores() {
    // tini's sigconf test: SIGTTIN, SIGILL, SIGTERM blocked; SIGTTOU, SIGSEGV, SIGINT ignored (+ a few).
    const BLOCKED: &[i32] = &[
        libc::SIGTTIN,
        libc::SIGILL,
        libc::SIGTERM,
        libc::SIGUSR2,
        libc::SIGPWR,
    ];
    const IGNORED: &[i32] = &[
        libc::SIGTTOU,
        libc::SIGSEGV,
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGHUP,
    ];
    let (blk, ign) = child_signal_state(BLOCKED, IGNORED);
    let expected_blk = BLOCKED.iter().map(|&s| bit(s)).fold(0, |a, b| a | b);
    let expected_ign = IGNORED
        .iter()
        .map(|&s| bit(s))
        .fold(harness_ignores(), |a, b| a | b);
    assert_eq!(blk, expected_blk, "SigBlk {blk:#x} != {expected_blk:#x}");
    assert_eq!(ign, expected_ign, "SigIgn {ign:#x} != {expected_ign:#x}");
}

#[test]
fn child_of_a_clean_parent_has_nothing_blocked_or_ignored() {
    // In particular TSTP/TTIN/TTOU, blocked while taking the terminal, are not left blocked.
    assert_eq!(child_signal_state(&[], &[]), (0, harness_ignores()));
}

/// A python probe that writes `key=value` lines to argv[1]: open fds with their targets, cwd, and
/// whether it leads its own process group and owns the terminal's foreground.
const PROBE: &str = r#"
import os, sys, time
lines = []
d = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
for fd in sorted(int(x) for x in os.listdir(d)):
    if fd != d:
        try:
            lines.append(f"fd{fd}={os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
os.close(d)
lines.append(f"cwd={os.getcwd()}")
# sparkvisor moves to / right after starting us: wait (with a deadline) until it has.
parent_cwd, deadline = None, time.monotonic() + 10
while parent_cwd != "/" and time.monotonic() < deadline:
    parent_cwd = os.readlink(f"/proc/{os.getppid()}/cwd")
    time.sleep(0.002)
lines.append(f"parent_cwd={parent_cwd}")
lines.append(f"own_group={os.getpgrp() == os.getpid()}")
try:
    lines.append(f"foreground={os.tcgetpgrp(0) == os.getpgrp()}")
except OSError:
    lines.append("foreground=notty")
with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines) + "\n")
"#;

fn probe_output(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn no_leaked_fds_inherited_fds_pass_and_cwd_is_kept() {
    let dir = tempdir();
    let report = dir.path().join("report");
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let raw = devnull.as_raw_fd();
    let mut cmd = direct(["-s", "--", python(), "-c", PROBE, report.to_str().unwrap()]);
    cmd.current_dir(dir.path()).stdin(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; fd 7 is inherited without CLOEXEC, like a socket-activation fd.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep CLOEXEC: clear it explicitly.
            if libc::dup2(raw, 7) < 0 || libc::fcntl(7, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Exactly 0, 1, 2 and 7 are inherited, whatever the test harness has open.
            libc::syscall(libc::SYS_close_range, 3u32, 6u32, 0u32);
            libc::syscall(libc::SYS_close_range, 8u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    assert_eq!(code(wait_exit(&mut child)), 0);
    let lines = probe_output(&report);
    let fds: Vec<&String> = lines.iter().filter(|l| l.starts_with("fd")).collect();
    let numbers: Vec<&str> = fds.iter().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(numbers, ["fd0", "fd1", "fd2", "fd7"], "{fds:?}");
    assert!(fds.iter().any(|l| *l == "fd7=/dev/null"), "{fds:?}");
    let cwd = dir.path().canonicalize().unwrap();
    assert!(
        lines.contains(&format!("cwd={}", cwd.display())),
        "{lines:?}"
    );
    assert!(lines.contains(&"own_group=True".to_string()), "{lines:?}");
    // sparkvisor does not pin the directory it was started in.
    assert!(lines.contains(&"parent_cwd=/".to_string()), "{lines:?}");
}

#[test]
fn child_takes_the_terminal_foreground() {
    let dir = tempdir();
    let report = dir.path().join("report");
    let pty = nix::pty::openpty(None, None).unwrap();
    // openpty's fds are not CLOEXEC: keep them out of processes other tests spawn meanwhile.
    for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
        // SAFETY: fcntl on fds we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let slave: OwnedFd = pty.slave;
    let slave_raw = slave.as_raw_fd();
    let mut cmd = direct(["-s", "--", python(), "-c", PROBE, report.to_str().unwrap()]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe. sparkvisor leads a new session whose controlling
    // terminal is the pty, as under `docker run -t`.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let _ = slave_raw;
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    assert_eq!(code(wait_exit(&mut child)), 0);
    let lines = probe_output(&report);
    assert!(lines.contains(&"own_group=True".to_string()), "{lines:?}");
    assert!(lines.contains(&"foreground=True".to_string()), "{lines:?}");
    drop(pty.master);
}

#[test]
fn no_tty_is_fine() {
    let dir = tempdir();
    let report = dir.path().join("report");
    let mut cmd = Command::new(bin());
    cmd.args(["-s", "--", python(), "-c", PROBE, report.to_str().unwrap()])
        .stdin(Stdio::null());
    assert_eq!(code(output(cmd).status), 0);
    assert!(probe_output(&report).contains(&"foreground=notty".to_string()));
}
