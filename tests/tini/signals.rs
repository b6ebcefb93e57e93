#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Signal forwarding in tini mode: SIGPWR, SIGWINCH and real-time signals reach the child, SIGCHLD does
//! not; `-g` signals the whole process group; `-p` sets the parent-death signal.

use crate::support;

use std::process::{Command, Stdio};

use support::*;

fn forwards_signals(as_pid1: bool) {
    let dir = tempdir();
    let out = dir.path().join("received");
    let rt = libc::SIGRTMIN() + 2;
    let handled = [
        libc::SIGPWR,
        libc::SIGWINCH,
        rt,
        libc::SIGCHLD,
        libc::SIGUSR1,
    ];
    let child = recorder(&out, &handled);
    let mut args = vec!["-s".to_string(), "--".to_string()];
    args.extend(child);
    let mut cmd = if as_pid1 {
        pid1(&args[1..])
    } else {
        direct(&args)
    };
    let mut launcher = cmd.stdin(Stdio::null()).spawn().unwrap();
    let init = if as_pid1 {
        first_child(launcher.id())
    } else {
        launcher.id()
    };
    wait_for_file(&ready_path(&out));
    // SIGCHLD first: the kernel dequeues lower numbers first, so had it been forwarded, the child would
    // have recorded it before SIGPWR.
    for signo in [libc::SIGCHLD, libc::SIGPWR, libc::SIGWINCH, rt] {
        kill(init, signo);
        if signo != libc::SIGCHLD {
            wait_for_line_while(&mut launcher, &out, &signo.to_string());
        }
    }
    let received = std::fs::read_to_string(&out).unwrap();
    assert!(
        !received.lines().any(|l| l == libc::SIGCHLD.to_string()),
        "SIGCHLD must not be forwarded: {received}"
    );
    kill(init, libc::SIGTERM);
    assert_eq!(code(wait_exit(&mut launcher)), 128 + libc::SIGTERM);
}

#[test]
fn pwr_winch_and_realtime_reach_the_child_as_pid1() {
    if require_pid_namespace("pwr_winch_and_realtime_reach_the_child_as_pid1") {
        forwards_signals(true);
    }
}

#[test]
fn pwr_winch_and_realtime_reach_the_child_as_subreaper() {
    forwards_signals(false);
}

/// tini's `test/pgroup`: the middle process ignores SIGUSR1; only group signalling ends its child.
fn group_signal_ends_the_tree(args: &[&str], env: Option<(&str, &str)>) {
    let dir = tempdir();
    let ready = dir.path().join("ready");
    let sleep_pid = dir.path().join("sleep.pid");
    // The sleep starts before the trap, so it keeps the default SIGUSR1 action.
    let script = format!(
        "sleep 100 & echo $! > {pidfile}; trap '' USR1; touch {ready}; wait",
        pidfile = sleep_pid.display(),
        ready = ready.display()
    );
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--", "sh", "-c", &script]);
    let mut cmd = pid1(&all);
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let mut launcher = cmd.stdin(Stdio::null()).spawn().unwrap();
    let init = first_child(launcher.id());
    wait_for_file(&ready);
    kill(init, libc::SIGUSR1);
    // The middle shell ignores USR1; it only ends because its sleep was killed (its `wait` returns).
    assert_eq!(code(wait_exit(&mut launcher)), 0);
}

#[test]
fn group_flag_ends_a_tree_whose_middle_ignores_the_signal() {
    if require_pid_namespace("group_flag_ends_a_tree_whose_middle_ignores_the_signal") {
        group_signal_ends_the_tree(&["-g"], None);
        group_signal_ends_the_tree(&[], Some(("TINI_KILL_PROCESS_GROUP", "1")));
    }
}

#[test]
fn parent_death_signal_is_forwarded_to_the_child() {
    let dir = tempdir();
    let out = dir.path().join("received");
    let init_pid = dir.path().join("init.pid");
    let child = recorder(&out, &[libc::SIGUSR1]);
    let quoted: Vec<String> = child
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    // The intermediate shell is sparkvisor's parent; killing it must make the kernel send SIGUSR1.
    let script = format!(
        "{bin} -s -p SIGUSR1 -- {child} & echo $! > {pidfile}; wait",
        bin = bin(),
        child = quoted.join(" "),
        pidfile = init_pid.display()
    );
    let mut parent = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_file(&ready_path(&out));
    let init: u32 = wait_for("init pid", || {
        std::fs::read_to_string(&init_pid).ok()?.trim().parse().ok()
    });
    parent.kill().unwrap();
    parent.wait().unwrap();
    wait_for_line(&out, &libc::SIGUSR1.to_string());
    // Clean up: TERM ends the recorder, then sparkvisor exits (it was re-parented, nobody here waits).
    kill(init, libc::SIGTERM);
    wait_for("sparkvisor to exit", || {
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).ok();
        stat.is_none_or(|s| s.contains(") Z ")).then_some(())
    });
}

#[test]
fn group_flag_interrupts_a_shell_waiting_for_its_foreground_command() {
    if !require_pid_namespace("group_flag_interrupts_a_shell_waiting_for_its_foreground_command") {
        return;
    }
    // The reference table's `sh -c 'sleep 100; echo'` + SIGINT: with -g both the shell and its sleep
    // get the signal, so the tree ends at once with 130.
    let dir = tempdir();
    let ready = dir.path().join("ready");
    let script = format!("touch {}; sleep 100; echo", ready.display());
    let mut launcher = pid1(["-g", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let init = first_child(launcher.id());
    wait_for_file(&ready);
    // The sleep must exist before the signal, or only the shell would get it.
    wait_for("the sleep to start", || {
        let children =
            std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
        let shell: u32 = children.split_whitespace().next()?.parse().ok()?;
        let grand = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        let sleep: u32 = grand.split_whitespace().next()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{sleep}/comm")).ok()?;
        (comm.trim() == "sleep").then_some(())
    });
    kill(init, libc::SIGINT);
    assert_eq!(code(wait_exit(&mut launcher)), 128 + libc::SIGINT);
}
