#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every run option (`SPARKVISOR_LOG_FORMAT`, `SPARKVISOR_SHUTDOWN_GRACE`,
//! `SPARKVISOR_METRICS_ADDR`, `SPARKVISOR_LOG`) is checked with the injected config before anything
//! happens (issue 10): all problems in one report, exit 78, no file rendered, no socket, no service.

use crate::{common, supervisor_support};

use std::time::Duration;

use supervisor_support::*;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn every_bad_run_option_is_reported_at_once_and_nothing_is_written() {
    let s = Scene::new();
    s.template("app.conf", "x=1\n");
    s.role(
        "opts",
        r#"
render:
  - template: app.conf
    to: "@WORK@/app.conf"
services:
  a:
    command: [sh, -c, 'touch @WORK@/started; exec sleep 1000']
"#,
    );
    let mut cmd = s.agent(false, &["run", "--role", "opts"]);
    cmd.env("SPARKVISOR_LOG_FORMAT", "xml")
        .env("SPARKVISOR_SHUTDOWN_GRACE", "soon")
        .env("SPARKVISOR_METRICS_ADDR", "localhost")
        .env("SPARKVISOR_LOG", "verbose")
        // An injected-config problem too: reported in the same list.
        .env("SPARKVISOR_CONFIGMETA_WAIT", "forever");
    let mut agent = s.start(&mut cmd);
    let code = Agent::code(agent.wait(LONG));
    let err = agent.stderr();
    assert_eq!(code, 78, "{err}");
    for var in [
        "SPARKVISOR_LOG_FORMAT",
        "SPARKVISOR_SHUTDOWN_GRACE",
        "SPARKVISOR_METRICS_ADDR",
        "SPARKVISOR_LOG:",
        "SPARKVISOR_CONFIGMETA_WAIT",
    ] {
        assert!(err.contains(var), "{var} not reported:\n{err}");
    }
    assert!(!s.exists("app.conf"), "a file was rendered");
    assert!(!s.exists("started"), "a service was started");
    assert!(
        !s.path().join("agent.sock").exists(),
        "the socket was created"
    );
}

/// The same role with good options starts (the check above is not a refusal of everything).
#[test]
fn good_run_options_start() {
    let s = Scene::new();
    s.role(
        "opts",
        "services:\n  a:\n    command: [sh, -c, 'touch @WORK@/started; exec sleep 1000']\n",
    );
    let mut cmd = s.agent(false, &["run", "--role", "opts"]);
    cmd.env("SPARKVISOR_LOG_FORMAT", "json")
        .env("SPARKVISOR_SHUTDOWN_GRACE", "5s")
        .env(
            "SPARKVISOR_METRICS_ADDR",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .env("SPARKVISOR_LOG", "info,sparkvisor::status=debug");
    let mut agent = s.start(&mut cmd);
    agent.wait_for(LONG, "the service", || s.exists("started"));
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}
