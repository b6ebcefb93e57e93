#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Pass-through mode on the host: `sparkvisor CMD ARGS...` runs CMD with ARGS untouched (the official
//! image's `exec "$@"`), forwards signals, returns CMD's code; a subcommand name stays a subcommand;
//! `sparkvisor health` is healthy when PID 1 is sparkvisor running a command (no agent socket).

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn arguments_reach_the_command_untouched_and_its_code_comes_back() {
    // getopt would permute `--master` and `-s` to the front (tini mode): here they are the command's.
    let out = Command::new(common::bin())
        .args([
            "sh",
            "-c",
            "printf '%s|' \"$@\"; exit 7",
            "prog",
            "--master",
            "spark://x:7077",
            "-s",
            "--",
            "-h",
        ])
        .env("TINI_SUBREAPER", "1")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "--master|spark://x:7077|-s|--|-h|"
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_command_is_127_as_in_tini() {
    let out = Command::new(common::bin())
        .arg("no-such-command-dropin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn signals_are_forwarded_to_the_command() {
    let mut child = Command::new(common::bin())
        .args([
            "sh",
            "-c",
            "trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = common::poll(Duration::from_secs(30), Duration::from_millis(20), || {
        child.try_wait().unwrap()
    })
    .expect("the command did not end after SIGTERM");
    assert_eq!(status.code(), Some(9));
}

#[test]
fn a_subcommand_name_is_the_subcommand() {
    // `status` is sparkvisor's client command (no agent here: 69), never a program named status.
    let out = Command::new(common::bin())
        .arg("status")
        .env("SPARKVISOR_SOCKET", "/nonexistent/dropin.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{out:?}");
}

#[test]
fn health_is_ok_while_pid1_runs_a_command_and_not_otherwise() {
    let socket = "/nonexistent/dropin-health.sock";
    // Not in a container whose PID 1 is sparkvisor: no agent is an error, as before.
    let out = Command::new(common::bin())
        .arg("health")
        .env("SPARKVISOR_SOCKET", socket)
        .output()
        .unwrap();
    if std::fs::read("/proc/1/cmdline").is_ok_and(|c| !c.starts_with(b"sparkvisor")) {
        assert_eq!(out.status.code(), Some(69), "{out:?}");
    }
    if !common::require(
        common::is_root() && common::has_command("unshare"),
        "health as PID 1 needs root and unshare",
    ) {
        return;
    }
    // PID 1 of a fresh PID namespace is sparkvisor in pass-through mode running a shell that asks.
    let health = format!("{} health", common::bin());
    let out = common::sparkvisor(true)
        .args(["sh", "-c", &health])
        .env("SPARKVISOR_SOCKET", socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("healthy"));
    // The same in tini mode (`sparkvisor -- CMD`).
    let out = common::sparkvisor(true)
        .args(["--", "sh", "-c", &health])
        .env("SPARKVISOR_SOCKET", socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
