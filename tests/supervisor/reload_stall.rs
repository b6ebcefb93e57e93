#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A reload never stalls supervision (issue 18): the new config is loaded off the supervisor
//! thread with a deadline (`SPARKVISOR_RELOAD_TIMEOUT`). Here configmeta.json is rewritten
//! truncated while `SPARKVISOR_CONFIGMETA_WAIT` is long, so loading the new config waits for a file
//! that never parses. Meanwhile a crash-looping service keeps being restarted, the status socket
//! keeps answering, the reload ends as "reload failed, keeping the running config" at its deadline and
//! shows as failed in `status`, and SIGTERM still stops the agent promptly.

use crate::{common, supervisor_support};

use std::time::Duration;

use supervisor_support::*;

/// Far above anything this test needs: only a stalled agent reaches it.
const LONG: Duration = Duration::from_secs(60);

fn runs(s: &Scene) -> usize {
    s.read("crash.runs").map_or(0, |t| t.lines().count())
}

fn status(sock: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&get(sock, "/v1/status")).unwrap()
}

#[test]
fn a_stalled_reload_does_not_stall_restarts_status_or_stop() {
    let s = Scene::new();
    s.role(
        "stall",
        r#"services:
  crash:
    command: ["sh", "-c", "echo $$ >> @WORK@/crash.runs; exit 3"]
    restart: always
    critical: false
    backoff: { initial: 20ms, factor: 1.0, limit: 20ms, max_failures: 0 }
  steady:
    command: ["sh", "-c", "exec sleep 1000"]
"#,
    );
    let meta = s.work("configmeta.json");
    let example = common::repo().join("kubedirector/examples/configmeta-worker.json");
    let valid = std::fs::read_to_string(example).unwrap();
    std::fs::write(&meta, &valid).unwrap();
    let mut cmd = s.agent(false, &["run", "--role", "stall"]);
    cmd.env("SPARKVISOR_CONFIGMETA", &meta)
        .env("SPARKVISOR_CONFIGMETA_WAIT", "600s")
        .env("SPARKVISOR_RELOAD_TIMEOUT", "6s")
        .env("SPARK_DAEMON_USER", "root");
    let mut agent = s.start(&mut cmd);
    let sock = s.path().join("agent.sock");
    agent.wait_for(LONG, "the socket and a crash loop", || {
        sock.exists() && runs(&s) >= 2
    });
    // Rewritten truncated (a half-written update): the reload waits for it to parse, up to 600 s.
    std::fs::write(&meta, &valid[..valid.len() / 2]).unwrap();
    agent.wait_for(LONG, "the reload to start", || {
        s.stderr().contains("reloading the config")
    });
    // While it is stuck: restarts go on and status answers.
    let before = runs(&s);
    agent.wait_for(LONG, "restarts during the stalled reload", || {
        runs(&s) >= before + 3
    });
    assert!(
        !agent.stderr().contains("reload failed"),
        "the reload ended before the restarts were seen; raise the timeout: {}",
        agent.stderr()
    );
    let st = status(&sock);
    assert!(st["agent"]["last_reload"].is_null(), "{st}");
    // At its deadline it is given up, and status says so.
    agent.wait_for(LONG, "the reload's deadline", || {
        s.stderr()
            .contains("reload failed, keeping the running config")
    });
    let st = status(&sock);
    assert_eq!(st["agent"]["last_reload"]["ok"], false, "{st}");
    let message = st["agent"]["last_reload"]["message"].as_str().unwrap();
    assert!(message.contains("did not finish"), "{message}");
    let table = common::sparkvisor(false)
        .args(["status"])
        .env("SPARKVISOR_SOCKET", &sock)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("last reload: FAILED"), "{table}");
    // Restarts still go on after it, and SIGTERM stops everything at once.
    let before = runs(&s);
    agent.wait_for(LONG, "restarts after the deadline", || {
        runs(&s) >= before + 2
    });
    agent.signal(false, libc::SIGTERM);
    let code = Agent::code(agent.wait(Duration::from_secs(20)));
    assert_eq!(code, 0, "{}", agent.stderr());
}

/// A reload that succeeds shows as ok on the status socket.
#[test]
fn a_successful_reload_shows_in_status() {
    let s = Scene::new();
    s.role(
        "ok",
        "services:\n  svc:\n    command: [sh, -c, 'exec sleep 1000']\n",
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "ok"]));
    let sock = s.path().join("agent.sock");
    agent.wait_for(LONG, "the socket", || {
        sock.exists() && get(&sock, "/v1/status").contains("\"state\":\"running\"")
    });
    agent.signal(false, libc::SIGHUP);
    agent.wait_for(LONG, "the reload", || {
        status(&sock)["agent"]["last_reload"]["ok"] == true
    });
    let st = status(&sock);
    let reload = &st["agent"]["last_reload"];
    assert!(reload["at"].as_u64().unwrap() > 0, "{st}");
    assert!(
        reload["message"].as_str().unwrap().contains("SIGHUP"),
        "{st}"
    );
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

/// SIGTERM while a reload is stuck (its deadline far away) stops the agent at once.
#[test]
fn sigterm_during_a_stalled_reload_stops_the_agent() {
    let s = Scene::new();
    s.role(
        "stuck",
        "services:\n  svc:\n    command: [sh, -c, 'echo $$ >> @WORK@/svc.runs; exec sleep 1000']\n",
    );
    let meta = s.work("configmeta.json");
    let example = common::repo().join("kubedirector/examples/configmeta-worker.json");
    let valid = std::fs::read_to_string(example).unwrap();
    std::fs::write(&meta, &valid).unwrap();
    let mut cmd = s.agent(false, &["run", "--role", "stuck"]);
    cmd.env("SPARKVISOR_CONFIGMETA", &meta)
        .env("SPARKVISOR_CONFIGMETA_WAIT", "600s")
        .env("SPARKVISOR_RELOAD_TIMEOUT", "600s")
        .env("SPARK_DAEMON_USER", "root");
    let mut agent = s.start(&mut cmd);
    agent.wait_for(LONG, "the service", || s.exists("svc.runs"));
    std::fs::write(&meta, &valid[..valid.len() / 2]).unwrap();
    agent.wait_for(LONG, "the reload to start", || {
        s.stderr().contains("reloading the config")
    });
    let sock = s.path().join("agent.sock");
    assert!(status(&sock)["services"][0]["state"] == "running");
    agent.signal(false, libc::SIGTERM);
    let code = Agent::code(agent.wait(Duration::from_secs(20)));
    assert_eq!(code, 0, "{}", agent.stderr());
    assert_eq!(s.read("svc.runs").unwrap().lines().count(), 1);
}
