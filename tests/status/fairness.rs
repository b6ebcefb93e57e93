//! The status socket serves everyone fairly: `health` answers within a second while 8 clients of
//! another uid pipeline requests without reading, and while another uid tries to hold every
//! connection slot; a complete request followed by a half-close gets its answer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{common, supervisor_support};

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::KillOnDrop;
use supervisor_support::*;

const LONG: Duration = Duration::from_secs(20);

fn start(s: &Scene) -> (Agent, std::path::PathBuf) {
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    s.role(
        "fair",
        "services:\n  idle:\n    command: [\"sh\", \"-c\", \"echo up > @WORK@/up; exec sleep 1000\"]\n    ready: { exec: [\"true\"] }\n",
    );
    let sock = s.path().join("agent.sock");
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "fair"]));
    agent.wait_for(LONG, "socket", || sock.exists() && s.exists("up"));
    (agent, sock)
}

/// A hostile client of uid 65534: `mode` "pipeline" (floods requests, never reads, reconnects) or
/// "hold" (opens as many connections as it can and keeps them), once its load is in place: a
/// connection the server's writes block on, or every connection it could get.
fn hostile(sock: &std::path::Path, mode: &str) -> KillOnDrop {
    let script = r#"
import socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
req = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
held = []
loaded = False
def load_reached():
    # "ready" once the load is in place: a connection the server no longer takes requests from,
    # or every slot this client can get.
    global loaded
    if not loaded:
        loaded = True
        print("ready", flush=True)
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        # A connect the server's full backlog holds up ends (OSError: the load is in place).
        s.settimeout(2)
        s.connect(path)
        if mode == "pipeline":
            s.setblocking(False)
            try:
                while True:
                    s.send(req)
            except BlockingIOError:
                # Never read the answers, keep the connection: the server's writes block.
                load_reached()
                time.sleep(5)
            s.close()
        else:
            held.append(s)
            if len(held) > 700:
                load_reached()
                time.sleep(3600)
    except OSError:
        load_reached()
        time.sleep(0.01)
"#;
    python_as_nobody(script, &[sock.as_os_str(), mode.as_ref()])
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn health_answers_fast_despite_hostile_clients_of_another_uid() {
    if skip_unless(
        can_run_as_nobody(),
        "needs root, setpriv and /usr/bin/python3 (clients of another uid)",
    ) {
        return;
    }
    let s = Scene::new();
    let (mut agent, sock) = start(&s);
    // Let another uid connect (the socket is 0660 root's by default).
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    for (mode, count) in [("pipeline", 8), ("hold", 1)] {
        // Each client is returned once its load is in place (see the script).
        let mut clients: Vec<KillOnDrop> = (0..count).map(|_| hostile(&sock, mode)).collect();
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let out = health(&sock);
            let took = started.elapsed();
            assert!(
                out.status.success(),
                "{mode}: health failed\n{}",
                agent.stderr()
            );
            times.push(took);
        }
        clients.clear();
        let m = median(times.clone());
        eprintln!("{mode}: health took {times:?}");
        assert!(m < Duration::from_secs(1), "{mode}: health took {times:?}");
    }
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

#[test]
fn a_request_then_half_close_is_answered() {
    let s = Scene::new();
    let (mut agent, sock) = start(&s);
    for i in 0..40 {
        let mut c = UnixStream::connect(&sock).unwrap();
        c.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        c.set_read_timeout(Some(LONG)).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 503"),
            "try {i}: {answer}"
        );
    }
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}
