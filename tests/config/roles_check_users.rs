#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `check` refuses what `run` would refuse: a service user unknown on this system is reported with
//! the role file, and exit 78, before anything is started.

use crate::common;

use std::process::Command;

#[test]
fn check_reports_a_service_user_unknown_to_this_system() {
    let tool = ToolRole::new();
    let check = |user_known: bool| {
        tool.check(if user_known {
            "services:\n  tool:\n    command: [\"/bin/true\"]\n    user: \"0\"\n"
        } else {
            "services:\n  tool:\n    command: [\"/bin/true\"]\n    user: no-such-user-sparkvisor\n"
        })
    };
    let out = check(false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("tool.yaml"), "{err}");
    assert!(err.contains("no-such-user-sparkvisor"), "{err}");

    let out = check(true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A role named by the environment that has no definition is an error for `check` too (only "no
/// role at all" is tolerated, for image builds).
#[test]
fn check_reports_a_role_without_a_definition() {
    let dir = tempfile::tempdir().unwrap();
    let run = |mode: Option<&str>| {
        let mut c = Command::new(common::bin());
        c.arg("check")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SPARKVISOR_ROLES", common::repo().join("roles"))
            .env("SPARKVISOR_TEMPLATES", common::repo().join("templates"))
            .env("SPARKVISOR_HOSTNAME", "node1")
            .env("SPARKVISOR_CGROUP_ROOT", dir.path());
        if let Some(mode) = mode {
            c.env("SPARK_MODE", mode);
        }
        c.output().unwrap()
    };
    let out = run(Some("no-such-role"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("no-such-role"), "{err}");
    let out = run(None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A probe target that no attempt could use (a port that is not a number, an address without a
/// port) is a config error of `check` (and `run`), naming the role file and the service, not a
/// probe that fails forever.
#[test]
fn check_reports_a_probe_target_that_cannot_be_probed() {
    let tool = ToolRole::new();
    let out = tool.check(
        "services:\n  web:\n    command: [\"/bin/true\"]\n    ready: { http: \"http://localhost:80a/\" }\n  \
         db:\n    command: [\"/bin/true\"]\n    health: { tcp: \"localhost\" }\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("tool.yaml"), "{err}");
    assert!(
        err.contains("service web: `ready` probe: bad URL \"http://localhost:80a/\""),
        "{err}"
    );
    assert!(
        err.contains("service db: `health` probe: bad address \"localhost\""),
        "{err}"
    );

    let out = tool.check(
        "services:\n  web:\n    command: [\"/bin/true\"]\n    ready: { http: \"http://localhost:8080/\" }\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A roles directory holding only `tool.yaml`, and an empty templates directory.
struct ToolRole {
    _dir: tempfile::TempDir,
    roles: std::path::PathBuf,
    templates: std::path::PathBuf,
}

impl ToolRole {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let roles = dir.path().join("roles");
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&roles).unwrap();
        std::fs::create_dir_all(&templates).unwrap();
        Self {
            _dir: dir,
            roles,
            templates,
        }
    }

    /// Writes `yaml` as `tool.yaml` and runs `sparkvisor check --role tool` with only the roles
    /// and templates directories given.
    fn check(&self, yaml: &str) -> std::process::Output {
        std::fs::write(self.roles.join("tool.yaml"), yaml).unwrap();
        Command::new(common::bin())
            .args(["check", "--role", "tool"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SPARKVISOR_ROLES", &self.roles)
            .env("SPARKVISOR_TEMPLATES", &self.templates)
            .env("SPARKVISOR_HOSTNAME", "node1")
            .output()
            .unwrap()
    }
}
