#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! SIGTERM and SIGINT are honoured during start-up (issue 10): a `SPARKVISOR_CONFIGMETA_WAIT` wait
//! ends at once, and the agent exits 0 (the role-mode stop code) with nothing started, instead of
//! waiting out the wait (78); an input that is a FIFO never blocks start-up (refused, 78).

use crate::supervisor_support;

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
        s.stderr().contains("waiting up to")
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

/// A cluster file that is a FIFO nobody writes to does not block start-up: the agent refuses it at
/// once (a config error naming the file, 78) and starts nothing. (Inputs are read by
/// `config::limits`, which takes only regular files; see also config_hostile_files.)
#[test]
fn a_fifo_cluster_file_is_refused_at_once() {
    let s = scene();
    let fifo = s.work("cluster.yaml");
    nix_mkfifo(&fifo);
    let mut cmd = s.agent(false, &["run", "--role", "svc"]);
    cmd.env("SPARKVISOR_CONFIG", &fifo);
    let mut agent = s.start(&mut cmd);
    let code = Agent::code(agent.wait(LONG));
    let stderr = agent.stderr();
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("cluster.yaml") && stderr.contains("a FIFO, not a regular file"),
        "{stderr}"
    );
    assert!(!s.exists("started"), "a service started");
}

fn nix_mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}
