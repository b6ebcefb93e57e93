#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Zombie reaping in tini mode: 100 orphaned grandchildren are reaped (none left in Z state), as PID 1
//! and as a subreaper (`-s`, `TINI_SUBREAPER`); `-w` warns once per reaped orphan; the warning about
//! reaping that cannot work appears exactly when it cannot.

use crate::support;

use std::process::Output;

use support::*;

/// A shell that orphans 100 short sleeps (their parent exits at once), then waits until every one of
/// them is gone from /proc (a zombie keeps its entry until reaped). Exits 0 then, or 1 after ~15 s.
/// The sleeps must outlast the loop that forks them: dash reaps a finished background job itself
/// (then it is never an orphan), and under load 100 forks took longer than 0.5 s.
fn orphan_script(dir: &std::path::Path) -> String {
    let pids = dir.join("orphans");
    format!(
        "sh -c 'for i in $(seq 100); do sleep 3 & echo $!; done' > {pids}
         i=0
         while [ $i -lt 3000 ]; do
           left=0
           for p in $(cat {pids}); do [ -e /proc/$p ] && left=$((left+1)); done
           [ $left -eq 0 ] && exit 0
           i=$((i+1)); sleep 0.005
         done
         echo \"$left orphans not reaped:\" >&2; for p in $(cat {pids}); do cat /proc/$p/stat 2>/dev/null >&2; done
         exit 1",
        pids = pids.display()
    )
}

fn reaped_lines(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("Reaped zombie process with pid="))
        .count()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn orphans_are_reaped_as_pid1() {
    if !require_pid_namespace("orphans_are_reaped_as_pid1") {
        return;
    }
    let dir = tempdir();
    let script = orphan_script(dir.path());
    let out = output(pid1(["-w", "--", "sh", "-c", &script]));
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    // Each orphan was reaped by sparkvisor itself (their parent shell exited first).
    assert_eq!(
        reaped_lines(&out),
        100,
        "one warning per orphan: {}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("zombie reaping won't work"));
}

#[test]
fn orphans_are_reaped_as_subreaper() {
    let dir = tempdir();
    let script = orphan_script(dir.path());
    let out = output(direct(["-s", "-w", "--", "sh", "-c", &script]));
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(reaped_lines(&out), 100, "{}", stderr(&out));
    assert!(!stderr(&out).contains("zombie reaping won't work"));
}

#[test]
fn subreaper_from_environment_and_no_warnings_without_w() {
    let dir = tempdir();
    let script = orphan_script(dir.path());
    let mut cmd = direct(["--", "sh", "-c", &script]);
    cmd.env("TINI_SUBREAPER", "");
    let out = output(cmd);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(reaped_lines(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("zombie reaping won't work"));
}

#[test]
fn orphans_are_reparented_to_the_subreaper() {
    let dir = tempdir();
    let ppid_file = dir.path().join("ppid");
    let script = format!(
        "sh -c 'sleep 0.3 & echo $! > {f}.pid' ; p=$(cat {f}.pid); awk '{{print $4}}' /proc/$p/stat > {f}; wait",
        f = ppid_file.display()
    );
    let mut launcher = direct(["-s", "--", "sh", "-c", &script]).spawn().unwrap();
    let init = launcher.id();
    wait_for_file(&ppid_file);
    let ppid: u32 = wait_for("ppid", || {
        std::fs::read_to_string(&ppid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    assert_eq!(ppid, init, "the orphan was re-parented to sparkvisor");
    assert_eq!(code(wait_exit(&mut launcher)), 0);
}

#[test]
fn warns_when_reaping_cannot_work() {
    let out = output(direct(["--", "true"]));
    assert_eq!(code(out.status), 0);
    assert!(
        stderr(&out).contains("zombie reaping won't work"),
        "{}",
        stderr(&out)
    );
    // Verbosity 0 silences warnings.
    let mut quiet = direct(["--", "true"]);
    quiet.env("TINI_VERBOSITY", "0");
    assert!(!stderr(&output(quiet)).contains("zombie reaping won't work"));
}

/// Context switches of a process so far.
fn context_switches(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches:")
                || l.starts_with("nonvoluntary_ctxt_switches:")
        })
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn idle_init_never_wakes_up() {
    // tini wakes every second to reap; sparkvisor waits for SIGCHLD only. The window below is the
    // measurement itself (a tick would show up as at least one switch), not synchronisation.
    let dir = tempdir();
    let ready = dir.path().join("ready");
    let script = format!("touch {}; exec sleep 100", ready.display());
    let mut child = direct(["-s", "--", "sh", "-c", &script]).spawn().unwrap();
    let init = child.id();
    wait_for_file(&ready);
    // The init is blocked in read(signalfd) once its own child is running and nothing else happens.
    wait_for("the init to block", || {
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).ok()?;
        stat.contains(") S ").then_some(())
    });
    let before = context_switches(init);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let after = context_switches(init);
    kill(init, libc::SIGTERM);
    assert_eq!(code(wait_exit(&mut child)), 128 + libc::SIGTERM);
    assert_eq!(after - before, 0, "an idle init must not wake up");
}
