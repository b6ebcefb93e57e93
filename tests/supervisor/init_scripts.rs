#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Init scripts (docs/services.md) with the real binary, no Docker: they run one at a time in
//! name order before the role's services, their output is in the log, and a failing one stops the
//! start with its exit code before any role service starts.

use crate::common;

use std::process::Stdio;

use common::{sparkvisor, TempDir};

const ROLE: &str = "description: init script test\nservices:\n  app:\n    command: [\"/bin/sh\", \"-c\", \"echo app-started\"]\n    restart: never\n";

/// Runs role `r` with init scripts `scripts` (name, body) and `-- /bin/true` as the main command:
/// (exit code, combined output).
fn run_with(scripts: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = TempDir::new("init-scripts");
    for sub in ["roles", "templates", "init"] {
        std::fs::create_dir_all(dir.0.join(sub)).unwrap();
    }
    std::fs::write(dir.0.join("roles/r.yaml"), ROLE).unwrap();
    for (name, body) in scripts {
        let path = dir.file(&format!("init/{name}"), body);
        let mode = if name.ends_with(".txt") { 0o644 } else { 0o755 };
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
    }
    let out = sparkvisor(false)
        .args(["run", "--role", "r", "--", "/bin/true"])
        .env("SPARKVISOR_ROLES", dir.0.join("roles"))
        .env("SPARKVISOR_TEMPLATES", dir.0.join("templates"))
        .env("SPARKVISOR_INIT_DIR", dir.0.join("init"))
        .env("SPARKVISOR_SOCKET", dir.0.join("s.sock"))
        // Not root: main refuses services that could write their own (root-owned) config.
        .env("SPARK_DAEMON_USER", "nobody")
        .env(
            "SPARKVISOR_SETTINGS",
            format!(
                "{{spark.event_log_dir: {}}}",
                dir.0.join("events").display()
            ),
        )
        .env_remove("SPARKVISOR_ROLE")
        .env_remove("SPARK_MODE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn scripts_run_in_order_before_the_services() {
    let (code, log) = run_with(&[
        ("20-second.sh", "#!/bin/sh\necho second-ran\n"),
        ("10-first.sh", "#!/bin/sh\nsleep 1\necho first-done\n"),
        ("15-notes.txt", "not executable\n"),
    ]);
    assert_eq!(code, Some(0), "{log}");
    let pos = |s: &str| {
        log.find(s)
            .unwrap_or_else(|| panic!("{s:?} not in:\n{log}"))
    };
    // Both forwarded to stdout: the second script ran after the first one's output.
    assert!(pos("init-01-10-first.sh | first-done") < pos("init-02-20-second.sh | second-ran"));
    // The agent's own lines (stderr): the last script ended before the service started. (The
    // scripts' output is on stdout, which `log` puts first: it cannot be ordered against these.)
    let line = |what: &str, pred: &dyn Fn(&str) -> bool| {
        log.lines()
            .position(pred)
            .unwrap_or_else(|| panic!("no line {what} in:\n{log}"))
    };
    let second_ended = line("init-02 ended", &|l| {
        l.contains("init-02-20-second.sh: pid") && l.contains(" ended ")
    });
    assert!(
        second_ended < line("app started", &|l| l.contains("app: started")),
        "{log}"
    );
    assert!(
        log.contains("15-notes.txt: skipped") && !log.contains("notes.txt: started"),
        "a non-executable file ran: {log}"
    );
}

#[test]
fn a_failing_script_stops_the_start() {
    let (code, log) = run_with(&[
        ("10-fail.sh", "#!/bin/sh\necho broken >&2\nexit 3\n"),
        ("20-never.sh", "#!/bin/sh\necho never-ran\n"),
    ]);
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("init-01-10-fail.sh") && log.contains("broken"),
        "{log}"
    );
    assert!(
        !log.contains("never-ran") && !log.contains("app-started"),
        "{log}"
    );
}
