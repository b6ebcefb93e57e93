#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Role mode with services that die of real-time signals (issue 10): the exit is seen, the state
//! machine moves on, a critical service's death gives 128+N, and the status socket and CLI show the
//! signal by number (and name). The services do not handle the signals.

use crate::{common, supervisor_support};

use std::time::Duration;

use supervisor_support::*;

const LONG: Duration = Duration::from_secs(30);

/// A critical `restart: never` service that kills itself with SIGRTMIN+2: the agent (PID 1 of a
/// fresh namespace) exits 128+N instead of waiting forever for a pid that is gone.
#[test]
fn critical_service_dying_by_rt_signal_exits_128_plus_n_as_pid1() {
    if skip_unless(is_root(), "needs root for PID namespaces (unshare --pid)") {
        return;
    }
    let signo = libc::SIGRTMIN() + 2;
    let s = Scene::new();
    s.role(
        "rt",
        &format!(
            "services:\n  victim:\n    command: [sh, -c, 'kill -{signo} $$']\n    restart: never\n    critical: true\n"
        ),
    );
    let mut agent = s.start(&mut s.agent(true, &["run", "--role", "rt"]));
    assert_eq!(
        Agent::code(agent.wait(LONG)),
        128 + signo,
        "{}",
        agent.stderr()
    );
    assert!(
        agent
            .stderr()
            .contains(&format!("killed by signal {signo} (RTMIN+2)")),
        "{}",
        agent.stderr()
    );
}

/// A non-critical service dies by SIGRTMAX on its own, another is killed with `sparkvisor signal
/// SVC RTMIN+2` through the product's API: both are seen as ended (the status shows the signal
/// number), a restart works afterwards, and a TERM still ends the agent cleanly.
#[test]
fn rt_signal_deaths_show_in_status_and_restart_works() {
    let rtmax = libc::SIGRTMAX();
    let rt2 = libc::SIGRTMIN() + 2;
    let s = Scene::new();
    s.role(
        "rt",
        &format!(
            "services:\n  \
               once:\n    command: [sh, -c, 'kill -{rtmax} $$']\n    restart: never\n    critical: false\n  \
               svc:\n    command: [sh, -c, 'exec sleep 1000']\n    restart: never\n    critical: false\n"
        ),
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "rt"]));
    let sock = s.path().join("agent.sock");
    let status = |name: &str| -> serde_json::Value {
        serde_json::from_str(&get(&sock, &format!("/v1/services/{name}"))).unwrap()
    };
    agent.wait_for(LONG, "socket", || sock.exists());
    agent.wait_for(LONG, "once to end by RTMAX", || {
        status("once")["last_exit"]["signal"] == rtmax
    });
    assert_ne!(status("once")["state"], "running", "{}", status("once"));
    agent.wait_for(LONG, "svc running", || status("svc")["state"] == "running");

    let cli = std::process::Command::new(common::bin())
        .args(["signal", "svc", "RTMIN+2"])
        .env("SPARKVISOR_SOCKET", &sock)
        .output()
        .unwrap();
    assert!(cli.status.success(), "{cli:?}");
    agent.wait_for(LONG, "svc to end by RTMIN+2", || {
        status("svc")["last_exit"]["signal"] == rt2
    });
    let st = status("svc");
    assert_ne!(st["state"], "running", "{st}");
    assert!(st["pid"].is_null(), "a dead pid is still shown: {st}");

    let shown = std::process::Command::new(common::bin())
        .args(["status"])
        .env("SPARKVISOR_SOCKET", &sock)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&shown.stdout);
    assert!(
        table.contains(&format!("signal {rt2} (RTMIN+2)")),
        "{table}"
    );

    // A restart after the RT death starts a new process (it used to stick in `stopping`).
    request(&sock, "POST", "/v1/services/svc/restart");
    agent.wait_for(LONG, "svc running again", || {
        status("svc")["state"] == "running"
    });
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}
