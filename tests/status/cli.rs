#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The operator CLI (`sparkvisor status|health|start|stop|restart|signal|logs`) against a real
//! server on a Unix socket with an in-memory backend.

use crate::{common, support};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use sparkvisor::status::wire::{ServiceState, Status};
use support::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn status_prints_a_plain_table_when_not_on_a_tty() {
    let backend = FakeBackend::new(&["spark-master", "spark-worker"]);
    backend.update("spark-worker", |s| {
        s.state = ServiceState::Backoff;
        s.pid = None;
        s.restarts = 4;
        s.last_exit = Some(sparkvisor::status::wire::LastExit {
            code: Some(1),
            signal: None,
        });
    });
    let t = start(backend, |_| {});
    let out = cli(&t.socket, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let cols = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        cols(lines[0]),
        ["SERVICE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST", "EXIT"]
    );
    assert_eq!(
        cols(lines[1]),
        ["spark-master", "ready", "100", "1m05s", "0", "-"]
    );
    assert_eq!(
        cols(lines[2]),
        ["spark-worker", "backoff", "-", "-", "4", "code", "1"]
    );
    assert!(!text.contains('\x1b'), "no colour codes when piped");
    // Columns line up: every row's STATE starts where the header's does.
    let at = lines[0].find("STATE").unwrap();
    assert!(lines
        .iter()
        .skip(1)
        .all(|l| l[at..].starts_with(|c: char| c.is_alphabetic())));
}

#[test]
fn status_json_and_one_service() {
    let t = start(FakeBackend::new(&["a", "b"]), |_| {});
    let out = cli(&t.socket, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let status: Status = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status.services.len(), 2);

    let out = cli(&t.socket, &["status", "b"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("service:   b"), "{text}");
    assert!(text.contains("pid:       101"), "{text}");

    let out = cli(&t.socket, &["status", "--json", "b"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["name"], "b");

    let out = cli(&t.socket, &["status", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no service named \"nope\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn health_exit_code_follows_readiness() {
    let backend = FakeBackend::new(&["a", "b"]);
    let t = start(backend.clone(), |_| {});
    let out = cli(&t.socket, &["health"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).trim(), "healthy");
    backend.update("a", |s| {
        s.ready = false;
        s.state = ServiceState::Starting;
    });
    let out = cli(&t.socket, &["health"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("a: starting (not ready)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn control_commands_report_the_new_state() {
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend.clone(), |_| {});
    let out = cli(&t.socket, &["restart", "svc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "svc: ready (pid 1001)");
    let out = cli(&t.socket, &["stop", "svc"]);
    assert_eq!(stdout(&out).trim(), "svc: stopped");
    let out = cli(&t.socket, &["signal", "svc", "HUP"]);
    assert_eq!(out.status.code(), Some(1), "signal to a stopped service");
    assert!(stderr(&out).contains("not running"));
    let out = cli(&t.socket, &["start", "svc"]);
    assert_eq!(out.status.code(), Some(0));
    let out = cli(&t.socket, &["signal", "svc", "usr2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        backend.services.lock().unwrap()[0]
            .last_exit
            .unwrap()
            .signal,
        Some(12)
    );
    let out = cli(&t.socket, &["signal", "svc", "BOGUS"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown signal"));
    let out = cli(&t.socket, &["restart", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn logs_tail_and_follow() {
    let backend = FakeBackend::new(&["a", "b"]);
    for i in 0..5 {
        backend.emit("a", &format!("a{i}"));
    }
    backend.emit("b", "b0");
    let t = start(backend.clone(), |_| {});
    let out = cli(&t.socket, &["logs", "a", "-n", "2"]);
    assert_eq!(stdout(&out), "a| a3\na| a4\n");
    let out = cli(&t.socket, &["logs"]);
    assert_eq!(stdout(&out).lines().count(), 6);

    let mut child = Command::new(common::bin())
        .env("SPARKVISOR_SOCKET", &t.socket)
        .args(["logs", "-f", "-n", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "b| b0");
    assert!(wait_for(Duration::from_secs(5), || !backend
        .followers
        .lock()
        .unwrap()
        .is_empty()));
    backend.emit("a", "live");
    assert_eq!(lines.next().unwrap().unwrap(), "a| live");
    backend.end_follows();
    assert!(lines.next().is_none(), "stream ends when the agent ends it");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn missing_socket_says_what_to_do_and_exits_69() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    for args in [
        &["status"][..],
        &["health"],
        &["restart", "x"],
        &["logs", "-f"],
    ] {
        let out = cli(&socket, args);
        assert_eq!(out.status.code(), Some(69), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&format!("no agent at {}", socket.display())),
            "{err}"
        );
        assert!(err.contains("set SPARKVISOR_SOCKET"), "{err}");
    }
}

#[test]
fn control_by_another_uid_exits_77_and_reads_still_work() {
    if !require(is_root(), "not root: cannot run the CLI as uid 65534")
        || !require(has_command("setpriv"), "setpriv not installed")
    {
        return;
    }
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend.clone(), |_| {});
    std::os::unix::fs::chown(&t.socket, None, Some(65534)).unwrap();
    // A copy of the binary that uid 65534 can execute wherever the build directory is.
    let bin = t.dir.path().join("sparkvisor");
    std::fs::copy(common::bin(), &bin).unwrap();
    // The copy's write descriptor can live on for a moment in a child another test thread is
    // forking (until that child execs), and exec'ing the copy then fails with ETXTBSY: retry that.
    let run_as_nobody = |args: &[&str]| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin)
                .args(args)
                .env("SPARKVISOR_SOCKET", &t.socket)
                .output()
                .unwrap();
            if !stderr(&out).contains("Text file busy") || std::time::Instant::now() > deadline {
                return out;
            }
            std::thread::yield_now();
        }
    };
    let out = run_as_nobody(&["stop", "svc"]);
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("uid 65534 may read but not control"), "{err}");
    assert_eq!(
        backend.services.lock().unwrap()[0].state,
        ServiceState::Ready
    );
    let out = run_as_nobody(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Not in the socket's group: cannot open it at all.
    std::os::unix::fs::chown(&t.socket, None, Some(0)).unwrap();
    let out = run_as_nobody(&["status"]);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        stderr(&out).contains("permission denied on"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_is_coloured_on_a_terminal_unless_no_color() {
    if !require(
        has_command("script"),
        "script(1) not installed: no pseudo-terminal",
    ) {
        return;
    }
    let t = start(FakeBackend::new(&["svc"]), |_| {});
    let on_tty = |no_color: bool| {
        let mut cmd = Command::new("script");
        cmd.args(["-q", "-e", "-c"])
            .arg(format!("{} status", common::bin()))
            .arg("/dev/null")
            .env("SPARKVISOR_SOCKET", &t.socket)
            .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("\x1b[32mready\x1b[0m"), "{coloured:?}");
    let plain = on_tty(true);
    assert!(
        plain.contains("ready") && !plain.contains('\x1b'),
        "{plain:?}"
    );
}
