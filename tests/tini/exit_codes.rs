#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! tini mode's exit codes, as PID 1 of a fresh PID namespace and as a child subreaper: the child's code
//! 0..255, 128+signal, 127/126 for a command that cannot run, `-e` remapping.

use crate::support;

use std::process::{Command, Stdio};

use support::*;

#[test]
fn every_exit_code_passes_through_as_pid1() {
    if !require_pid_namespace("every_exit_code_passes_through_as_pid1") {
        return;
    }
    for n in 0..=255u32 {
        // `-e` of another code must not touch this one.
        let other = ((n + 1) % 256).to_string();
        let status = output(pid1(["-e", &other, "--", "sh", "-c", &format!("exit {n}")])).status;
        assert_eq!(code(status), n as i32, "exit {n} as PID 1");
    }
}

#[test]
fn every_exit_code_passes_through_as_subreaper() {
    for n in 0..=255u32 {
        let status = output(direct(["-s", "--", "sh", "-c", &format!("exit {n}")])).status;
        assert_eq!(code(status), n as i32, "exit {n} as subreaper");
    }
}

#[test]
fn remap_listed_codes_to_zero() {
    let cases: [(&str, i32); 4] = [
        ("exit 143", 0),
        ("exit 3", 0),
        ("exit 4", 4),
        ("kill -TERM $$", 0),
    ];
    for (script, expected) in cases {
        let status = output(direct(["-s", "-e", "143", "-e3", "--", "sh", "-c", script])).status;
        assert_eq!(code(status), expected, "{script}");
    }
}

/// Signals sent to sparkvisor are forwarded; the child dies of them; sparkvisor exits 128+N.
fn killed_child_gives_128_plus_signal(as_pid1: bool) {
    let signals = [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPWR,
        libc::SIGKILL,
    ];
    for signo in signals {
        let dir = tempdir();
        let ready = dir.path().join("ready");
        let script = format!("touch {}; exec sleep 100", ready.display());
        let args = ["-s", "--", "sh", "-c", &script];
        let mut cmd = if as_pid1 {
            pid1(&args[1..])
        } else {
            direct(args)
        };
        // The sleep must not dump a core file into the test's cwd on SIGQUIT.
        cmd.current_dir(dir.path()).stdin(Stdio::null());
        let mut launcher = cmd.spawn().unwrap();
        let init = if as_pid1 {
            first_child(launcher.id())
        } else {
            launcher.id()
        };
        wait_for_file(&ready);
        if signo == libc::SIGKILL {
            // SIGKILL cannot be forwarded (it would kill the init): kill the child itself.
            kill(first_child(init), signo);
        } else {
            kill(init, signo);
        }
        let status = wait_exit(&mut launcher);
        assert_eq!(
            code(status),
            128 + signo,
            "signal {signo}, as_pid1={as_pid1}"
        );
    }
}

#[test]
fn killed_child_gives_128_plus_signal_as_pid1() {
    if require_pid_namespace("killed_child_gives_128_plus_signal_as_pid1") {
        killed_child_gives_128_plus_signal(true);
    }
}

#[test]
fn killed_child_gives_128_plus_signal_as_subreaper() {
    killed_child_gives_128_plus_signal(false);
}

#[test]
fn command_not_found_is_127_and_not_executable_is_126() {
    let dir = tempdir();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    let cases = [
        ("/nonexistent/command", 127),
        ("no-such-command-on-path", 127),
        ("/etc", 126),
        (plain.to_str().unwrap(), 126),
        // A second `--` is the command name (tini's `-- -- true` must fail).
        ("--", 127),
    ];
    for (command, expected) in cases {
        let out = output(direct(["-s", "--", command]));
        assert_eq!(code(out.status), expected, "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line of error: {stderr}");
        assert!(
            lines[0].contains(command),
            "error names {command}: {stderr}"
        );
    }
    if require_pid_namespace("command_not_found_is_127_as_pid1") {
        assert_eq!(
            code(output(pid1(["--", "/nonexistent/command"])).status),
            127
        );
        assert_eq!(code(output(pid1(["--", "/etc"])).status), 126);
    }
}

#[test]
fn stdin_passes_through() {
    let mut child = direct(["-s", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"exit 42\n").unwrap();
    assert_eq!(code(wait_exit(&mut child)), 42);
}

#[test]
fn exits_promptly_when_the_child_exits_leaving_a_grandchild() {
    if !require_pid_namespace("exits_promptly_when_the_child_exits_leaving_a_grandchild") {
        return;
    }
    // The background sleep must not keep PID 1 waiting; the kernel kills it with the namespace.
    let status = output(pid1(["--", "sh", "-c", "sleep 100 & exit 3"])).status;
    assert_eq!(code(status), 3);
}

#[test]
fn works_without_kill_child_too() {
    if !require_pid_namespace("works_without_kill_child_too") {
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        bin(),
        "--",
        "sh",
        "-c",
        "exit 9",
    ]);
    assert_eq!(code(output(cmd).status), 9);
}

#[test]
fn a_script_without_shebang_runs_in_sh_as_with_execvp() {
    let dir = tempdir();
    let script = dir.path().join("no-shebang");
    std::fs::write(&script, "echo from-sh \"$1\"; exit 7\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = output(direct(["-s", "--", script.to_str().unwrap(), "arg"]));
    assert_eq!(
        code(out.status),
        7,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-sh arg\n");
}
