#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! tini mode with a child that dies of a real-time signal (issue 10): the exit must be seen at once
//! and give 128+N, as PID 1 of a fresh PID namespace and as a child subreaper. The child does not
//! handle the signal (a handler would turn it into a normal exit and hide a lost wait status).

use crate::support;

use support::*;

/// SIGRTMIN, SIGRTMIN+2 and SIGRTMAX of the C library the test is built with (the binary under
/// test uses the same one).
fn rt_signals() -> [i32; 3] {
    [libc::SIGRTMIN(), libc::SIGRTMIN() + 2, libc::SIGRTMAX()]
}

fn child_killed_by_rt_signal_exits_128_plus_n(as_pid1: bool) {
    for signo in rt_signals() {
        let script = format!("kill -{signo} $$");
        let args = ["-s", "--", "sh", "-c", script.as_str()];
        let cmd = if as_pid1 {
            pid1(&args[1..])
        } else {
            direct(args)
        };
        // `output` fails the test after its deadline: a lost exit hangs here.
        let out = output(cmd);
        assert_eq!(
            code(out.status),
            128 + signo,
            "signal {signo} (pid1: {as_pid1}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rt_signal_death_is_128_plus_n_as_pid1() {
    if !require_pid_namespace("rt_signal_death_is_128_plus_n_as_pid1") {
        return;
    }
    child_killed_by_rt_signal_exits_128_plus_n(true);
}

#[test]
fn rt_signal_death_is_128_plus_n_as_subreaper() {
    child_killed_by_rt_signal_exits_128_plus_n(false);
}

/// An orphan (re-parented to sparkvisor as subreaper) killed by a real-time signal is reaped
/// (logged with `-w`), and the main child, which waits for the orphan to be gone, is still seen.
#[test]
fn orphan_killed_by_rt_signal_is_reaped() {
    let dir = tempdir();
    let signo = libc::SIGRTMIN() + 2;
    // `( ... &)`: the subshell exits at once, so the inner sh is an orphan of sparkvisor. `kill -0`
    // succeeds on a zombie: the loop ends only once sparkvisor has reaped it.
    let script = format!(
        "(sh -c 'echo $$ > P; kill -{signo} $$' &); \
         while [ ! -s P ]; do sleep 0.01; done; p=$(cat P); \
         while kill -0 $p 2>/dev/null; do sleep 0.01; done; echo $p; exit 7"
    );
    let mut cmd = direct(["-s", "-w", "--", "sh", "-c", script.as_str()]);
    cmd.current_dir(dir.path());
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(out.status), 7, "{stderr}");
    let orphan = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        stderr.contains(&format!("Reaped zombie process with pid={orphan}")),
        "orphan {orphan} not reported as reaped: {stderr}"
    );
}
