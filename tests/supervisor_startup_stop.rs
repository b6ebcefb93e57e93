#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! SIGTERM and SIGINT are honoured during start-up (issue 10): a `SPARKVISOR_CONFIGMETA_WAIT` wait
//! and a blocking read of an input that is a FIFO end at once, and the agent exits 0 (the role-mode
//! stop code) with nothing started, instead of waiting out the wait (78) or blocking forever.

mod common;
mod supervisor_support;

use std::time::Duration;

use supervisor_support::*;

/// Well below the wait the agent is given: an agent that ignores the stop fails this test.
const LONG: Duration = Duration::from_secs(30);

fn scene() -> Scene {
    let s = Scene::new();
    s.role(
        "svc",
        "services:\n  svc:\n    command: [sh, -c, 'touch @WORK@/started; exec sleep 1000']\n",
    );
    s
}

fn stop_during_configmeta_wait(pid1: bool, signo: i32) {
    let s = scene();
    let mut cmd = s.agent(pid1, &["run", "--role", "svc"]);
    cmd.env("SPARKVISOR_CONFIGMETA", s.work("configmeta.json"))
        .env("SPARKVISOR_CONFIGMETA_WAIT", "300s");
    let mut agent = s.start(&mut cmd);
    agent.wait_for(LONG, "the configmeta wait", || {
        agent_stderr(&s).contains("waiting up to")
    });
    agent.signal(pid1, signo);
    let code = Agent::code(agent.wait(LONG));
    assert_eq!(code, 0, "{}", agent.stderr());
    assert!(
        agent.stderr().contains("during start-up"),
        "{}",
        agent.stderr()
    );
    assert!(!s.exists("started"), "a service started after the stop");
}

fn agent_stderr(s: &Scene) -> String {
    std::fs::read_to_string(s.path().join("err.log")).unwrap_or_default()
}

#[test]
fn sigterm_ends_the_configmeta_wait_as_pid1() {
    if skip_unless(is_root(), "needs root for PID namespaces (unshare --pid)") {
        return;
    }
    stop_during_configmeta_wait(true, libc::SIGTERM);
}

#[test]
fn sigint_ends_the_configmeta_wait_as_subreaper() {
    stop_during_configmeta_wait(false, libc::SIGINT);
}

/// A cluster file that is a FIFO nobody writes to: the agent either refuses it at once (a config
/// error naming the file, 78) or waits for it and stops on SIGTERM (0); it never hangs.
#[test]
fn sigterm_ends_a_blocking_read_of_a_fifo_cluster_file() {
    let s = scene();
    let fifo = s.work("cluster.yaml");
    nix_mkfifo(&fifo);
    let mut cmd = s.agent(false, &["run", "--role", "svc"]);
    cmd.env("SPARKVISOR_CONFIG", &fifo);
    let mut agent = s.start(&mut cmd);
    // Either it says it waits for the FIFO, or it has already refused it and exited.
    let deadline = std::time::Instant::now() + LONG;
    let mut exited = false;
    while !agent_stderr(&s).contains("not a regular file") {
        if agent.child.try_wait().unwrap().is_some() {
            exited = true;
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(5));
    }
    if !exited {
        agent.signal(false, libc::SIGTERM);
    }
    let code = Agent::code(agent.wait(LONG));
    let stderr = agent.stderr();
    assert!(
        code == 0 || (code == 78 && stderr.contains("cluster.yaml")),
        "exit {code}: {stderr}"
    );
    assert!(!s.exists("started"), "a service started");
}

fn nix_mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}
