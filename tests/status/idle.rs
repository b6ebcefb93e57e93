#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! An idle status server wakes up zero times: every server thread blocks (poll without a timeout,
//! channel receive) while no client is connected. The test holds the test process alone
//! (`common::process_alone`; every in-process server of the binary shares it), so the threads
//! named `status-*` are this server's.

use crate::support;

use std::time::Duration;

use support::*;

/// (thread name, context switches) of this process's `status-*` threads.
fn server_thread_switches() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        // The main thread is named after the test binary (`status-<hash>`), not a server thread.
        if task.file_name().to_str() == Some(&std::process::id().to_string()) {
            continue;
        }
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !name.starts_with("status-") {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let switches: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.push((name.trim().to_string(), switches));
    }
    out.sort();
    out
}

#[test]
fn an_idle_server_never_wakes_up() {
    let _alone = crate::common::process_alone();
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend, |_| {});
    // One request, so every thread has run and gone back to sleep.
    assert_eq!(raw_health_status(&t.socket), 200);
    // The I/O thread, 4 workers and the priority worker (a thread names itself once it first runs).
    assert!(
        wait_for(Duration::from_secs(5), || server_thread_switches().len()
            == 6),
        "{:?}",
        server_thread_switches()
    );
    // Let the connection's close be processed, then watch a quiet window.
    assert!(wait_for(Duration::from_secs(5), || {
        let a = server_thread_switches();
        std::thread::sleep(Duration::from_millis(50));
        a == server_thread_switches()
    }));
    let before = server_thread_switches();
    std::thread::sleep(Duration::from_millis(700)); // the observed idle window, not synchronisation
    assert_eq!(
        server_thread_switches(),
        before,
        "a server thread woke while idle"
    );
}

fn raw_health_status(socket: &std::path::Path) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out[9..12].parse().unwrap()
}
