#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A thread of the agent that dies (panic, error, or an unexpected return) is never silent: the
//! agent logs which thread and why, stops every service in order and exits 70 (issue 10).
//! Faults come from the debug-build hook `SPARKVISOR_FAULT=KIND:MODE` (src/sys/thread.rs).

use crate::{common, supervisor_support};

use std::time::Duration;

use supervisor_support::*;

const LONG: Duration = Duration::from_secs(30);

/// One agent run with `fault`; the service notes its orderly stop; a tcp readiness probe gives a
/// probe thread; the status socket and the config watcher run as always.
fn dies_with_70(fault: &str, thread: &str, why: &str) {
    let s = Scene::new();
    let port = common::free_port();
    s.role(
        "faulty",
        &format!(
            r#"
services:
  svc:
    command: ["sh", "-c", "echo hello; exec sleep 1000"]
    ready: {{ tcp: "127.0.0.1:{port}", interval: 50ms }}
"#
        ),
    );
    let mut cmd = s.agent(false, &["run", "--role", "faulty"]);
    cmd.env("SPARKVISOR_FAULT", fault);
    let mut agent = s.start(&mut cmd);
    let code = Agent::code(agent.wait(LONG));
    let stderr = agent.stderr();
    assert_eq!(code, 70, "{fault}: {stderr}");
    let line = format!("thread {thread} {why}");
    assert!(stderr.contains(&line), "{fault}: no {line:?} in\n{stderr}");
    assert!(
        stderr.contains("stopping every service"),
        "{fault}: {stderr}"
    );
    // A service that was started is seen to end before the agent exits (never left behind).
    if stderr.contains("svc: started") {
        assert!(
            stderr.contains("svc: Stopping -> Stopped"),
            "{fault}: svc not stopped: {stderr}"
        );
    }
}

#[test]
fn signal_reader_death_is_an_orderly_exit_70() {
    dies_with_70("signals:panic", "signals", "panicked");
    dies_with_70("signals:error", "signals", "failed");
    dies_with_70("signals:return", "signals", "ended unexpectedly");
}

#[test]
fn watcher_death_is_an_orderly_exit_70() {
    dies_with_70("watcher:panic", "watch", "panicked");
    dies_with_70("watcher:error", "watch", "failed");
}

#[test]
fn status_socket_thread_death_is_an_orderly_exit_70() {
    dies_with_70("status-io:panic", "status-io", "panicked");
    dies_with_70("status-io:return", "status-io", "ended unexpectedly");
    dies_with_70("status-worker:error", "status-worker-0", "failed");
}

#[test]
fn output_forwarder_and_probe_death_is_an_orderly_exit_70() {
    dies_with_70("output:panic", "out-svc", "panicked");
    dies_with_70("probe:panic", "probe", "panicked");
}
