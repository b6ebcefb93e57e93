//! The socket path cannot be squatted: the agent refuses a socket directory others can write, and
//! the CLI believes no answer from a peer that is not root, itself or the directory's owner.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::supervisor_support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use supervisor_support::*;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn the_agent_refuses_a_world_writable_socket_directory() {
    let s = Scene::new();
    let shared = s.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    s.role("idle", "services:\n  idle:\n    command: [\"sh\", \"-c\", \"echo up > @WORK@/up; exec sleep 1000\"]\n");
    let mut cmd = s.agent(false, &["run", "--role", "idle"]);
    cmd.env("SPARKVISOR_SOCKET", shared.join("agent.sock"));
    let mut agent = s.start(&mut cmd);
    agent.wait_for(LONG, "idle started", || s.exists("up"));
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!(
            "refusing the socket directory {}",
            shared.display()
        )) && stderr.contains("writable by everyone"),
        "{stderr}"
    );
    assert!(!shared.join("agent.sock").exists());
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

#[test]
fn the_cli_refuses_answers_from_a_squatter() {
    if skip_unless(
        can_run_as_nobody(),
        "needs root, setpriv and /usr/bin/python3 (a squatter with another uid)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = dir.path().join("sparkvisor.sock");
    let forged = "import socket, sys, os\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\nos.chmod(sys.argv[1], 0o777)\ns.listen(8)\nprint('ready', flush=True)\nwhile True:\n    c, _ = s.accept()\n    c.recv(65536)\n    body = b'{\"healthy\": true, \"reasons\": []}'\n    c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: ' + str(len(body)).encode() + b'\\r\\nConnection: close\\r\\n\\r\\n' + body)\n    c.close()\n";
    let squatter = python_as_nobody(forged, &[&socket]);
    let out = health(&socket);
    drop(squatter);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(69),
        "a forged 'healthy' is not believed: {stderr}"
    );
    assert!(
        stderr.contains("refusing the answer") && stderr.contains("uid 65534"),
        "{stderr}"
    );
}
