#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Hostile and careless clients: garbage, oversized and half requests, slow clients, idle
//! connections, clients that do not read their answers, a crowd of connections. The server answers
//! with the documented errors, stays within its limits, and keeps answering everyone else.

use crate::support;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

/// Sends `bytes`, then reads the answer to its end (the server closes after errors).
fn exchange(socket: &Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The server still answers a normal request.
fn still_answers(socket: &Path) {
    let a = exchange(
        socket,
        b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&a), 200, "{a}");
}

#[test]
fn garbage_and_oversized_requests_get_errors_and_a_close() {
    let t = start(FakeBackend::new(&["svc"]), |_| {});
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            400,
        ),
        (b"hello there\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), 400),
        (
            b"GET /v1/status HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
            400,
        ),
        (
            [
                b"GET /".to_vec(),
                vec![b'a'; 20_000],
                b" HTTP/1.1\r\n\r\n".to_vec(),
            ]
            .concat(),
            431,
        ),
        (
            [
                b"GET / HTTP/1.1\r\n".to_vec(),
                (0..100)
                    .flat_map(|i| format!("x{i}: y\r\n").into_bytes())
                    .collect(),
                b"\r\n".to_vec(),
            ]
            .concat(),
            431,
        ),
        (
            b"POST /v1/services/svc/signal HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n".to_vec(),
            413,
        ),
        (
            b"POST /v1/services/svc/signal HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            501,
        ),
        // A well-formed request with a bad parameter: 400, and the connection may live on.
        (
            b"GET /v1/services/%ff HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (bytes, want) in cases {
        let a = exchange(&t.socket, &bytes);
        assert_eq!(
            status_of(&a),
            want,
            "{:?} -> {a}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
        );
        assert!(a.contains("Connection: close"), "{a}");
    }
    // Random bytes, many times.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let len = (seed % 300) as usize + 1;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .chain(*b"\r\n\r\n")
            .collect();
        let a = exchange(&t.socket, &bytes);
        assert!(a.is_empty() || a.starts_with("HTTP/1.1 4"), "{a}");
    }
    still_answers(&t.socket);
}

#[test]
fn pipelined_keep_alive_requests_are_answered_in_order() {
    let t = start(FakeBackend::new(&["svc"]), |_| {});
    let a = exchange(
        &t.socket,
        b"GET /v1/services/svc HTTP/1.1\r\n\r\nGET /v1/health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let statuses: Vec<&str> = a.matches("HTTP/1.1 ").map(|_| "").collect();
    assert_eq!(statuses.len(), 3, "{a}");
    let first = a.find("\"name\":\"svc\"").unwrap();
    let second = a.find("\"healthy\":true").unwrap();
    let third = a.find("404 Not Found").unwrap();
    assert!(first < second && second < third, "{a}");
}

#[test]
fn slow_half_and_idle_clients_are_cut_off_without_stalling_others() {
    let t = start(FakeBackend::new(&["svc"]), |o| {
        o.request_timeout = Duration::from_millis(300);
        o.idle_timeout = Duration::from_millis(300);
        o.workers = 2;
    });
    // A half request that never finishes: 408 after the request timeout.
    let mut slow = UnixStream::connect(&t.socket).unwrap();
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x")
        .unwrap();
    // An idle connection that never sends a byte: closed after the idle timeout.
    let mut idle = UnixStream::connect(&t.socket).unwrap();
    still_answers(&t.socket);

    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut a = String::new();
    slow.read_to_string(&mut a).unwrap();
    assert_eq!(status_of(&a), 408, "{a}");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut b).unwrap(),
        0,
        "idle connection closed silently"
    );

    // A client dripping a byte every few ms (always readable) cannot stretch a request past the
    // deadline: it gets 408 and the connection is closed under it.
    let mut drip = UnixStream::connect(&t.socket).unwrap();
    let mut closed = false;
    for b in b"GET /v1/status HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain([b'a'; 3000].iter())
    {
        if drip.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(closed, "the server closed the dripping connection");
    drip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut a = Vec::new();
    let _ = drip.read_to_end(&mut a);
    let a = String::from_utf8_lossy(&a);
    assert!(a.is_empty() || status_of(&a) == 408, "{a}");
    still_answers(&t.socket);
}

#[test]
fn silent_and_half_sent_requests_never_hold_a_worker() {
    // One worker, long deadlines: if waiting clients held workers, the next request would wait
    // for a deadline (10 s); it is answered at once because only complete requests reach workers.
    let t = start(FakeBackend::new(&["svc"]), |o| {
        o.workers = 1;
        o.request_timeout = Duration::from_secs(10);
        o.idle_timeout = Duration::from_secs(10);
    });
    let mut waiting = Vec::new();
    for i in 0..100 {
        let mut s = UnixStream::connect(&t.socket).unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x").unwrap();
        }
        waiting.push(s);
    }
    let began = Instant::now();
    still_answers(&t.socket);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "answered behind waiting clients after {:?}",
        began.elapsed()
    );
}

#[test]
fn a_crowd_of_connections_gets_503_beyond_the_limit_and_the_server_recovers() {
    let t = start(FakeBackend::new(&["svc"]), |o| {
        o.max_connections = 64;
        o.idle_timeout = Duration::from_secs(30);
    });
    // Hold a thousand connections open at once (none sends anything), fewer if the fd limit is low.
    let crowd_size = open_files_limit().map_or(1000, |n| (n / 2).saturating_sub(64).min(1000));
    let mut crowd = Vec::new();
    for _ in 0..crowd_size {
        match UnixStream::connect(&t.socket) {
            Ok(s) => crowd.push(s),
            Err(e) => panic!("connect failed after {}: {e}", crowd.len()),
        }
    }
    // The acceptor takes connections in order: once one more connection has its answer, every
    // earlier one has been admitted or refused.
    let probe = exchange(&t.socket, b"GET /v1/health HTTP/1.1\r\n\r\n");
    assert_eq!(status_of(&probe), 503, "{probe}");
    // Those beyond the limit are answered 503 and closed by the acceptor.
    let mut refused = 0;
    let mut held = 0;
    for s in &mut crowd {
        s.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(n) if n > 0 => {
                let a = String::from_utf8_lossy(&buf[..n]);
                assert!(a.starts_with("HTTP/1.1 503"), "{a}");
                refused += 1;
            }
            _ => held += 1,
        }
    }
    // This test is the agent's own uid: it may also use the slots reserved for root and the agent.
    let limit = 64 + sparkvisor::status::fairness::RESERVED;
    assert_eq!(
        held, limit,
        "exactly max_connections plus the reserve are held; refused {refused}"
    );
    assert_eq!(refused, crowd_size - limit);
    drop(crowd);
    // Once the crowd leaves, everyone is served again.
    assert!(wait_for(Duration::from_secs(10), || {
        let a = exchange(
            &t.socket,
            b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        status_of(&a) == 200
    }));
    // And many quick clients in parallel all get answers.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let socket = t.socket.clone();
            std::thread::spawn(move || {
                (0..100)
                    .filter(|_| {
                        status_of(&exchange(
                            &socket,
                            b"GET /v1/status HTTP/1.1\r\nConnection: close\r\n\r\n",
                        )) == 200
                    })
                    .count()
            })
        })
        .collect();
    let ok: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ok, 800);
}

/// The soft `RLIMIT_NOFILE` from /proc/self/limits.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn follow_streams_are_bounded() {
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend.clone(), |o| o.max_followers = 2);
    let mut follows = Vec::new();
    for _ in 0..2 {
        let mut s = UnixStream::connect(&t.socket).unwrap();
        s.write_all(b"GET /v1/logs?follow=true HTTP/1.1\r\n\r\n")
            .unwrap();
        follows.push(s);
    }
    assert!(wait_for(Duration::from_secs(5), || backend
        .followers
        .lock()
        .unwrap()
        .len()
        == 2));
    // The follower threads have started (they hold the slots once the backlog is written).
    for s in &mut follows {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        assert!(s.read(&mut buf).unwrap() > 0);
    }
    let a = exchange(&t.socket, b"GET /v1/logs?follow=true HTTP/1.1\r\n\r\n");
    assert_eq!(status_of(&a), 503, "{a}");
    still_answers(&t.socket);
    // A follower whose client left is noticed and its slot freed.
    drop(follows);
    assert!(wait_for(Duration::from_secs(10), || {
        let mut s = UnixStream::connect(&t.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /v1/logs?follow=true HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200"
    }));
}

/// A backend whose log holds `lines` lines of about 200 bytes: `GET /v1/logs?n=LINES` is then
/// larger than a socket buffer, so a client that does not read leaves most of it unsent.
fn chatty(lines: usize) -> Arc<FakeBackend> {
    let backend = FakeBackend::new(&["svc"]);
    let padding = "x".repeat(200);
    for i in 0..lines {
        backend.emit("svc", &format!("{i} {padding}"));
    }
    backend
}

/// The answers in `bytes`, in order: (status, body, whether the body is whole).
fn answers(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>, bool)> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap();
        let body = &bytes[end + 4..];
        let taken = body.len().min(length);
        out.push((status_of(&head), body[..taken].to_vec(), taken == length));
        bytes = &body[taken..];
    }
    out
}

/// True once the server has closed its end of `s` (whatever `s` has not read yet).
fn closed_by_server(s: &UnixStream) -> bool {
    let mut fd = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd for an fd `s` keeps open, no waiting.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n == 1 && fd.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0
}

const LOGS_3000: &[u8] = b"GET /v1/logs?n=3000 HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn answers_larger_than_the_socket_buffer_reach_a_slow_reader_whole_while_others_are_answered() {
    let t = start(chatty(3000), |_| {});
    let mut slow = UnixStream::connect(&t.socket).unwrap();
    let mut requests = LOGS_3000.repeat(3);
    requests.extend_from_slice(b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n");
    slow.write_all(&requests).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = vec![0u8; 4096];
    let first = slow.read(&mut received).unwrap();
    received.truncate(first);
    // While the slow client has most of its first answer still to take, other clients (of the
    // same uid, so on the same worker) are answered. Before, that worker waited on the slow client
    // and then closed it, so its answers were cut short.
    for _ in 0..5 {
        still_answers(&t.socket);
    }
    let mut chunk = [0u8; 4096];
    loop {
        let n = slow.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    let got = answers(&received);
    assert_eq!(got.len(), 4, "{} bytes", received.len());
    for (status, body, whole) in &got[..3] {
        assert_eq!((*status, *whole), (200, true));
        assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 3000);
        assert_eq!(body, &got[0].1);
    }
    assert_eq!(got[3].0, 200);
    assert!(String::from_utf8_lossy(&got[3].1).contains("\"healthy\":true"));
}

#[test]
fn a_client_that_never_takes_its_answer_is_closed_and_unsent_answers_are_bounded() {
    let t = start(chatty(3000), |o| {
        o.request_timeout = Duration::from_secs(3);
        o.max_unsent_bytes = 64 * 1024;
    });
    // The first client's answer is larger than the budget: it is held anyway, as the only one.
    let mut holder = UnixStream::connect(&t.socket).unwrap();
    holder.write_all(LOGS_3000).unwrap();
    holder
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 12];
    holder.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // A second answer does not fit beside it: that connection is closed at once (before the
    // holder's earlier deadline), with its answer cut short.
    let mut second = UnixStream::connect(&t.socket).unwrap();
    second.write_all(LOGS_3000).unwrap();
    assert!(wait_for(Duration::from_secs(30), || closed_by_server(
        &second
    )));
    assert!(
        !closed_by_server(&holder),
        "closed by its deadline, not the budget"
    );
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    second.read_to_end(&mut received).unwrap();
    let got = answers(&received);
    assert_eq!(got.len(), 1, "{} bytes", received.len());
    assert_eq!(
        (got[0].0, got[0].2),
        (200, false),
        "{} bytes",
        received.len()
    );
    // Small answers still go out whole, at once.
    still_answers(&t.socket);
    // The first client never takes the rest: closed at the request timeout.
    assert!(
        wait_for(Duration::from_secs(30), || closed_by_server(&holder)),
        "the server still holds a connection that took nothing for 30 s"
    );
    still_answers(&t.socket);
}
