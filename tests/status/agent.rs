#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The status socket of a real agent (`sparkvisor run`) supervising real processes: every endpoint
//! over curl, the CLI, SO_PEERCRED, restart → new pid, health flipping, and a crowd of hostile
//! clients while a service keeps being supervised.

use crate::support;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(30);

/// `ticker` writes a line every 20 ms (and its count to `work/ticks`, readable without the socket); `web` is ready through an exec probe and restarts after a
/// 300 ms backoff, so a test can see it not ready in between.
const ROLE: &str = r#"
services:
  ticker:
    command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; echo $i > @WORK@/ticks; sleep 0.02; done"]
  web:
    command: ["sh", "-c", "echo started $$; exec sleep 1000"]
    ready: { exec: ["true"], interval: 20ms }
    backoff: { initial: 300ms }
"#;

fn service(agent: &RealAgent, name: &str) -> serde_json::Value {
    agent.json(&format!("/v1/services/{name}"))
}

fn pid_of(agent: &RealAgent, name: &str) -> Option<u64> {
    service(agent, name)["pid"].as_u64()
}

fn ticks(agent: &RealAgent) -> u64 {
    // The newest `tick N` line of the ticker.
    let (_, body) = curl(&agent.socket, &[], "/v1/logs?service=ticker&n=1");
    body.split("tick ")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_endpoint_of_a_real_agent_over_curl() {
    if !require(has_command("curl"), "curl not installed") {
        return;
    }
    let agent = RealAgent::start(ROLE, false);
    agent.wait(LONG, "both services ready", || {
        agent.json("/v1/status")["services"]
            .as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["ready"] == true))
    });
    let status = agent.json("/v1/status");
    assert_eq!(status["node"]["role"], "r");
    assert_eq!(status["agent"]["pid"], agent.pid());
    assert!(status["agent"]["rss_bytes"].as_u64().unwrap() > 0);
    let web = service(&agent, "web");
    assert_eq!(web["state"], "ready");
    let pid = web["pid"].as_u64().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the pid shown is a real process"
    );
    assert_eq!(agent.json("/v1/services").as_array().unwrap().len(), 2);
    assert_eq!(agent.json("/v1/health")["healthy"], true);

    let (code, metrics) = curl(&agent.socket, &[], "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("sparkvisor_service_up{service=\"web\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sparkvisor_service_ready{service=\"ticker\"} 1"));
    assert!(metrics.contains("sparkvisor_agent_resident_memory_bytes "));

    // Logs: the last lines, and a follow that sees new lines arrive.
    agent.wait(LONG, "ticks", || ticks(&agent) > 3);
    let (_, tail) = curl(&agent.socket, &[], "/v1/logs?service=ticker&n=3");
    assert_eq!(tail.lines().count(), 3, "{tail}");
    assert!(tail.lines().all(|l| l.contains("\"service\":\"ticker\"")));
    let before = ticks(&agent);
    let (_, followed) = curl(
        &agent.socket,
        &["-N", "--max-time", "1"],
        "/v1/logs?service=ticker&n=0&follow=true",
    );
    let newest = followed
        .lines()
        .filter_map(|l| {
            l.split("tick ")
                .nth(1)?
                .split('"')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(newest > before, "follow streamed new lines: {followed}");

    // Control: signal and restart give the service a new process; stop/start work.
    let (code, body) = curl(&agent.socket, &["-X", "POST"], "/v1/services/web/restart");
    assert_eq!(code, 200, "{body}");
    agent.wait(LONG, "a new pid after restart", || {
        pid_of(&agent, "web").is_some_and(|p| p != pid) && service(&agent, "web")["ready"] == true
    });
    let pid2 = pid_of(&agent, "web").unwrap();
    assert!(service(&agent, "web")["restarts"].as_u64().unwrap() >= 1);
    let (code, body) = curl(
        &agent.socket,
        &["-X", "POST"],
        "/v1/services/web/signal?signal=KILL",
    );
    assert_eq!(code, 200, "{body}");
    agent.wait(LONG, "restarted after KILL", || {
        pid_of(&agent, "web").is_some_and(|p| p != pid2)
    });
    agent.wait(LONG, "last exit = KILL", || {
        service(&agent, "web")["last_exit"]["signal"] == 9
    });
    let (code, _) = curl(&agent.socket, &["-X", "POST"], "/v1/services/web/stop");
    assert_eq!(code, 200);
    agent.wait(LONG, "stopped", || {
        service(&agent, "web")["state"] == "stopped"
    });
    assert_eq!(service(&agent, "web")["pid"], serde_json::Value::Null);
    let (code, _) = curl(&agent.socket, &["-X", "POST"], "/v1/services/web/start");
    assert_eq!(code, 200);
    agent.wait(LONG, "ready again", || {
        service(&agent, "web")["state"] == "ready"
    });
    let (code, _) = curl(&agent.socket, &["-X", "POST"], "/v1/services/nope/start");
    assert_eq!(code, 404);
}

#[test]
fn health_flips_when_a_service_stops_being_ready() {
    if !require(has_command("curl"), "curl not installed") {
        return;
    }
    // A 2 s backoff leaves time to see the service not ready through the socket and the CLI.
    let agent = RealAgent::start(&ROLE.replace("initial: 300ms", "initial: 2s"), false);
    agent.wait(LONG, "healthy", || {
        curl(&agent.socket, &[], "/v1/health").0 == 200 && service(&agent, "web")["ready"] == true
    });
    assert_eq!(cli(&agent.socket, &["health"]).status.code(), Some(0));
    let pid = pid_of(&agent, "web").unwrap();
    // Killed from outside the agent: not ready during the backoff, ready again after.
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    agent.wait(LONG, "unhealthy", || {
        let (code, body) = curl(&agent.socket, &[], "/v1/health");
        code == 503 && body.contains("web: backoff (not ready)")
    });
    let out = cli(&agent.socket, &["health"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("web: backoff"));
    agent.wait(LONG, "healthy again", || {
        curl(&agent.socket, &[], "/v1/health").0 == 200
    });
    assert_eq!(cli(&agent.socket, &["health"]).status.code(), Some(0));
    assert_ne!(pid_of(&agent, "web"), Some(pid));
}

#[test]
fn the_cli_against_a_real_agent() {
    let agent = RealAgent::start(ROLE, false);
    agent.wait(LONG, "web ready", || {
        service(&agent, "web")["ready"] == true
    });
    let out = cli(&agent.socket, &["status"]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["SERVICE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST", "EXIT"]
    );
    let web = rows.iter().find(|r| r[0] == "web").unwrap();
    assert_eq!(web[1], "ready");
    assert_eq!(web[2], pid_of(&agent, "web").unwrap().to_string());
    assert!(rows.iter().any(|r| r[0] == "ticker"));

    let out = cli(&agent.socket, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["services"].as_array().unwrap().len(), 2);

    let pid = pid_of(&agent, "web").unwrap();
    let out = cli(&agent.socket, &["restart", "web"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.wait(LONG, "new pid", || {
        pid_of(&agent, "web").is_some_and(|p| p != pid)
    });
    let out = cli(&agent.socket, &["logs", "web", "-n", "5"]);
    let logs = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(logs.contains(&format!("web| started {pid}")), "{logs}");
    let out = cli(&agent.socket, &["stop", "web"]);
    assert_eq!(out.status.code(), Some(0));
    agent.wait(LONG, "stopped", || {
        service(&agent, "web")["state"] == "stopped"
    });
    let out = cli(&agent.socket, &["signal", "web", "HUP"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "signal to a stopped service is refused"
    );
    assert_eq!(cli(&agent.socket, &["start", "web"]).status.code(), Some(0));
}

#[test]
fn another_uid_reads_but_cannot_control_a_real_agent() {
    if !require(is_root(), "not root: cannot run clients as uid 65534")
        || !require(has_command("setpriv"), "setpriv not installed")
        || !require(has_command("curl"), "curl not installed")
    {
        return;
    }
    let agent = RealAgent::start(ROLE, false);
    let meta = std::fs::metadata(&agent.socket).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o660
    );
    std::os::unix::fs::chown(&agent.socket, None, Some(65534)).unwrap();
    let pid = pid_of(&agent, "web");
    let (code, _) = curl_as(Some(65534), &agent.socket, &[], "/v1/status");
    assert_eq!(code, 200);
    for action in ["stop", "restart", "start", "signal?signal=KILL"] {
        let (code, body) = curl_as(
            Some(65534),
            &agent.socket,
            &["-X", "POST"],
            &format!("/v1/services/web/{action}"),
        );
        assert_eq!(code, 403, "{action}: {body}");
    }
    assert_eq!(
        pid_of(&agent, "web"),
        pid,
        "nothing happened to the service"
    );
    let (code, _) = curl(&agent.socket, &["-X", "POST"], "/v1/services/web/restart");
    assert_eq!(code, 200, "root may");
}

#[test]
fn agent_as_pid1_reports_itself_and_removes_its_socket_on_exit() {
    if !require(is_root(), "not root: no PID namespace") {
        return;
    }
    let mut agent = RealAgent::start(ROLE, true);
    assert_eq!(agent.json("/v1/status")["agent"]["pid"], 1);
    // unshare's only child is the agent (PID 1 inside): stop it as `docker stop` would.
    let unshare = agent.child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap();
    let pid1 = children.split_whitespace().next().unwrap();
    Command::new("kill").args(["-TERM", pid1]).status().unwrap();
    let child = &mut agent.child;
    assert!(wait_for(LONG, || matches!(child.try_wait(), Ok(Some(_)))));
    assert!(
        !agent.socket.exists(),
        "socket removed when the agent exits"
    );
}

/// Garbage, oversized requests and a crowd of a thousand connections at once: the ticker keeps
/// ticking under supervision, `web` keeps its pid, and the server answers normally afterwards.
#[test]
fn a_crowd_of_hostile_clients_leaves_supervision_untouched() {
    let agent = RealAgent::start(ROLE, false);
    agent.wait(LONG, "web ready", || {
        service(&agent, "web")["ready"] == true
    });
    let web_pid = pid_of(&agent, "web");
    let threads_before = threads_of(agent.pid());
    let ticks_before = ticks(&agent);

    let mut crowd = Vec::new();
    for i in 0..1000 {
        let Ok(mut s) = UnixStream::connect(&agent.socket) else {
            continue;
        };
        match i % 4 {
            0 => {}                                                    // silent
            1 => drop(s.write_all(b"\x00\xff garbage \r\n\r\n")),      // garbage
            2 => drop(s.write_all(b"GET /v1/status HTTP/1.1\r\nX: ")), // half a request
            _ => drop(s.write_all(&[b'A'; 9000])),                     // oversized
        }
        crowd.push(s);
    }
    // While the crowd holds its connections, the ticker is still supervised and running.
    let file_ticks = || -> u64 {
        std::fs::read_to_string(agent.work("ticks"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    let during = file_ticks();
    agent.wait(LONG, "ticks during the crowd", || file_ticks() > during + 5);
    assert_eq!(
        threads_of(agent.pid()),
        threads_before,
        "no thread per connection"
    );
    drop(crowd);
    agent.wait(LONG, "the server answers again", || {
        curl(&agent.socket, &[], "/v1/health").0 == 200
    });
    assert_eq!(pid_of(&agent, "web"), web_pid, "web untouched");
    // The socket may still be shedding the crowd's last connections: ask until it answers.
    agent.wait(LONG, "the ticker's logs move on", || {
        ticks(&agent) > ticks_before + 5
    });
    let status = agent.json("/v1/status");
    assert!(status["services"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["restarts"] == 0));
}
