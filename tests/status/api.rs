#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The status server over a real Unix socket, driven with curl, against an in-memory backend:
//! every endpoint, socket file handling, SO_PEERCRED authorisation, the TCP metrics listener.

use crate::{common, support};

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use sparkvisor::status::wire::{ServiceState, ServiceStatus, Status};
use sparkvisor::status::{serve, ServerError, ServerOptions};
use support::*;

#[test]
fn every_read_endpoint_answers_over_curl() {
    if !require(has_command("curl"), "curl not installed") {
        return;
    }
    let backend = FakeBackend::new(&["spark-master", "spark-worker"]);
    let t = start(backend.clone(), |_| {});

    let (code, body) = curl(&t.socket, &[], "/v1/status");
    assert_eq!(code, 200, "{body}");
    let status: Status = serde_json::from_str(&body).unwrap();
    assert_eq!(status.node.role, "worker");
    assert_eq!(status.services.len(), 2);
    assert_eq!(status.services[0].pid, Some(100));
    assert_eq!(status.resources["host_cpus"], 2);

    let (code, body) = curl(&t.socket, &[], "/v1/services");
    assert_eq!(code, 200);
    let list: Vec<ServiceStatus> = serde_json::from_str(&body).unwrap();
    assert_eq!(list[1].name, "spark-worker");

    let (code, body) = curl(&t.socket, &[], "/v1/services/spark-worker");
    assert_eq!(code, 200);
    let one: ServiceStatus = serde_json::from_str(&body).unwrap();
    assert_eq!(one.state, ServiceState::Ready);

    let (code, body) = curl(&t.socket, &[], "/v1/services/nope");
    assert_eq!(code, 404);
    assert!(body.contains("\"kind\":\"not_found\""), "{body}");

    let (code, body) = curl(&t.socket, &[], "/v1/health");
    assert_eq!(
        (code, body.trim()),
        (200, r#"{"healthy":true,"reasons":[]}"#)
    );

    for path in ["/metrics", "/v1/metrics"] {
        let (code, body) = curl(&t.socket, &[], path);
        assert_eq!(code, 200);
        assert!(body.contains("sparkvisor_service_up{service=\"spark-master\"} 1"));
        assert!(body.contains("sparkvisor_zombies_reaped_total 7"));
    }

    backend.emit("spark-master", "hello");
    backend.emit("spark-worker", "registered");
    backend.emit("spark-master", "bye");
    let (code, body) = curl(&t.socket, &[], "/v1/logs?service=spark-master&n=1");
    assert_eq!(code, 200);
    assert_eq!(body.lines().count(), 1);
    assert!(body.contains("\"message\":\"bye\""), "{body}");
    let (_, body) = curl(&t.socket, &[], "/v1/logs");
    assert_eq!(body.lines().count(), 3);

    let (code, _) = curl(&t.socket, &["-X", "DELETE"], "/v1/status");
    assert_eq!(code, 405);
    let (code, _) = curl(&t.socket, &[], "/nothing/here");
    assert_eq!(code, 404);
}

#[test]
fn control_endpoints_change_the_service() {
    if !require(has_command("curl"), "curl not installed") {
        return;
    }
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend.clone(), |_| {});

    let (code, body) = curl(&t.socket, &["-X", "POST"], "/v1/services/svc/restart");
    assert_eq!(code, 200, "{body}");
    let s: ServiceStatus = serde_json::from_str(&body).unwrap();
    assert_ne!(s.pid, Some(100), "restart gives a new pid");
    assert_eq!(s.restarts, 1);

    let (code, body) = curl(&t.socket, &["-X", "POST"], "/v1/services/svc/stop");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"state\":\"stopped\""));

    let (code, body) = curl(
        &t.socket,
        &["-X", "POST", "--data", r#"{"signal":"HUP"}"#],
        "/v1/services/svc/signal",
    );
    assert_eq!(code, 409, "signal to a stopped service: {body}");

    let (code, _) = curl(&t.socket, &["-X", "POST"], "/v1/services/svc/start");
    assert_eq!(code, 200);
    let (code, body) = curl(
        &t.socket,
        &["-X", "POST"],
        "/v1/services/svc/signal?signal=SIGUSR1",
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"signal\":10"), "{body}");
    let (code, _) = curl(
        &t.socket,
        &["-X", "POST"],
        "/v1/services/svc/signal?signal=BOGUS",
    );
    assert_eq!(code, 400);
    let (code, _) = curl(&t.socket, &["-X", "POST"], "/v1/services/ghost/stop");
    assert_eq!(code, 404);
}

#[test]
fn health_flips_when_a_service_stops_being_ready() {
    if !require(has_command("curl"), "curl not installed") {
        return;
    }
    let backend = FakeBackend::new(&["a", "b"]);
    let t = start(backend.clone(), |_| {});
    assert_eq!(curl(&t.socket, &[], "/v1/health").0, 200);
    backend.update("b", |s| {
        s.ready = false;
        s.state = ServiceState::Backoff;
    });
    let (code, body) = curl(&t.socket, &[], "/v1/health");
    assert_eq!(code, 503);
    assert!(body.contains("b: backoff (not ready)"), "{body}");
    backend.update("b", |s| s.ready = true);
    assert_eq!(curl(&t.socket, &[], "/v1/health").0, 200);
}

#[test]
fn follow_streams_new_lines_until_the_backend_ends_it() {
    let backend = FakeBackend::new(&["svc"]);
    backend.emit("svc", "old");
    let t = start(backend.clone(), |_| {});
    let mut s = UnixStream::connect(&t.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /v1/logs?follow=true&n=5 HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    let mut seen = String::new();
    let mut line = String::new();
    // Head, then the backlog chunk.
    while !seen.contains("\"old\"") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(seen.contains("Transfer-Encoding: chunked"));
    assert!(wait_for(Duration::from_secs(5), || !backend
        .followers
        .lock()
        .unwrap()
        .is_empty()));
    backend.emit("svc", "fresh");
    while !seen.contains("\"fresh\"") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended: {seen}");
        seen.push_str(&line);
    }
    backend.end_follows();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut r, &mut rest).unwrap();
    assert!(rest.ends_with("0\r\n\r\n"), "last chunk: {rest:?}");
}

#[test]
fn socket_file_is_0660_in_a_0755_dir_and_removed_on_shutdown() {
    let backend = FakeBackend::new(&["svc"]);
    let mut t = start(backend, |_| {});
    let meta = std::fs::symlink_metadata(&t.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let dir = std::fs::metadata(t.socket.parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o755);
    t.server.take().unwrap().shutdown();
    assert!(!t.socket.exists(), "socket removed on shutdown");
}

#[test]
fn stale_socket_is_replaced_but_a_live_one_or_a_file_is_not() {
    // Its servers' threads are counted by `idle`, which holds the process alone.
    let _shared = common::process_shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");

    // A socket file nobody listens on any more (its listener was dropped).
    drop(UnixListener::bind(&path).unwrap());
    // Another test thread's fork can hold the listener's descriptor until its child execs: wait
    // until the socket is really stale.
    common::wait_until(Duration::from_secs(5), "stale: nobody answers", || {
        UnixStream::connect(&path).is_err()
    });
    let server = serve(FakeBackend::new(&["a"]), ServerOptions::new(&path)).unwrap();
    assert!(
        UnixStream::connect(&path).is_ok(),
        "replaced by a live socket"
    );

    // A second agent on the same path must not steal it.
    match serve(FakeBackend::new(&["a"]), ServerOptions::new(&path)) {
        Err(ServerError::InUse { .. }) => {}
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(
        UnixStream::connect(&path).is_ok(),
        "first server still answers"
    );
    server.shutdown();

    let file = dir.path().join("plain");
    std::fs::write(&file, "keep me").unwrap();
    match serve(FakeBackend::new(&["a"]), ServerOptions::new(&file)) {
        Err(ServerError::NotASocket { .. }) => {}
        other => panic!("expected NotASocket, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn control_is_refused_to_another_uid_but_reads_are_allowed() {
    if !require(is_root(), "not root: cannot run curl as uid 65534")
        || !require(has_command("curl"), "curl not installed")
        || !require(has_command("setpriv"), "setpriv not installed")
    {
        return;
    }
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend.clone(), |_| {});
    // Let group 65534 open the socket (0660): the operator's way to grant read access.
    std::os::unix::fs::chown(&t.socket, None, Some(65534)).unwrap();

    let (code, body) = curl_as(Some(65534), &t.socket, &[], "/v1/status");
    assert_eq!(code, 200, "reads are open: {body}");
    let (code, body) = curl_as(
        Some(65534),
        &t.socket,
        &["-X", "POST"],
        "/v1/services/svc/stop",
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("uid 65534"), "{body}");
    assert_eq!(
        backend.services.lock().unwrap()[0].state,
        ServiceState::Ready,
        "refused control changed nothing"
    );
    // Root may.
    let (code, _) = curl(&t.socket, &["-X", "POST"], "/v1/services/svc/stop");
    assert_eq!(code, 200);

    // Another uid not in the socket's group cannot even connect.
    let (code, _) = curl_as(Some(65533), &t.socket, &[], "/v1/status");
    assert_eq!(code, 0, "0660 keeps other uids out");
}

#[test]
fn tcp_metrics_listener_serves_metrics_only() {
    if !require(has_command("curl"), "curl not installed") {
        return;
    }
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend, |o| {
        o.metrics_addr = Some("127.0.0.1:0".parse().unwrap())
    });
    let addr = t.server.as_ref().unwrap().metrics_addr().unwrap();
    let get = |path: &str, extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(extra)
            .arg(format!("http://{addr}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(get("/metrics", &[]), "200");
    assert_eq!(get("/v1/status", &[]), "404");
    assert_eq!(get("/v1/services/svc/stop", &["-X", "POST"]), "404");
}

#[test]
fn metrics_listener_is_off_by_default_and_bad_addresses_are_errors() {
    let t = start(FakeBackend::new(&["a"]), |_| {});
    assert_eq!(t.server.as_ref().unwrap().metrics_addr(), None);
    assert_eq!(
        sparkvisor::status::server::parse_metrics_addr("  ").unwrap(),
        None
    );
    assert_eq!(
        sparkvisor::status::server::parse_metrics_addr("0.0.0.0:9090").unwrap(),
        Some("0.0.0.0:9090".parse().unwrap())
    );
    let err = sparkvisor::status::server::parse_metrics_addr("localhost").unwrap_err();
    assert!(
        err.to_string()
            .contains("SPARKVISOR_METRICS_ADDR=\"localhost\""),
        "{err}"
    );
}
