#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `sparkvisor kubedirector` (the config package's startscript) without an agent or Docker: the
//! answers KubeDirector gets for an invalid config, an incomplete or premature notification, and
//! services that never become ready. The full protocol against running containers is
//! tests/docker/kubedirector_protocol.rs.

use crate::common;

use std::process::Command;

use common::repo;

fn hook(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(common::bin());
    cmd.arg("kubedirector")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SPARKVISOR_ROLES", repo().join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo().join("templates"))
        .env("SPARKVISOR_SOCKET", "/nonexistent/sparkvisor.sock");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn example(role: &str) -> String {
    repo()
        .join(format!("kubedirector/examples/configmeta-{role}.json"))
        .display()
        .to_string()
}

#[test]
fn configure_rejects_an_invalid_config_with_the_reason() {
    let dir = common::TempDir::new("kdhook");
    let text = std::fs::read_to_string(example("worker")).unwrap().replace(
        "\"role_id\": \"spark-worker\"",
        "\"role_id\": \"spark-wrker\"",
    );
    assert!(text.contains("spark-wrker"));
    let meta = dir.file("configmeta.json", &text);
    let (code, err) = hook(&["--configure"], &[("SPARKVISOR_CONFIGMETA", &meta)]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("spark-wrker"), "{err}");
}

#[test]
fn configure_fails_when_the_services_never_become_ready() {
    // A valid config (services as root: this host has no spark user) but no agent answering.
    let meta = example("worker");
    let (code, err) = hook(
        &["--configure"],
        &[
            ("SPARKVISOR_CONFIGMETA", &meta),
            ("SPARK_DAEMON_USER", "root"),
            ("SPARKVISOR_KD_TIMEOUT", "1s"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not ready after"), "{err}");
}

#[test]
fn notifications_are_checked_against_configmeta() {
    let meta = example("master");
    let env = [("SPARKVISOR_CONFIGMETA", meta.as_str())];
    let (code, err) = hook(
        &["--addnodes", "--nodegroup", "1", "--role", "spark-worker"],
        &env,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("needs --nodegroup, --role and --fqdns"),
        "{err}"
    );
    let (code, err) = hook(
        &[
            "--addnodes",
            "--nodegroup",
            "1",
            "--role",
            "spark-worker",
            "--fqdns",
            "kdss-new-9.kdhs-7x2qp.spark.svc.cluster.local",
        ],
        &env,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not list kdss-new-9"), "{err}");
    let (code, _) = hook(&[], &env);
    assert_ne!(code, 0, "no event is a usage error");
}

#[test]
fn upgrade_events_are_answered_like_configure_or_reconnect() {
    let meta = example("worker");
    let env = [
        ("SPARKVISOR_CONFIGMETA", meta.as_str()),
        ("SPARK_DAEMON_USER", "root"),
        ("SPARKVISOR_KD_TIMEOUT", "1s"),
    ];
    // A recreated member: validated and waited for, as --configure (no agent answers here).
    for event in ["--pod_upgraded", "--pod_reverted"] {
        let (code, err) = hook(&[event], &env);
        assert_eq!(code, 1, "{event}: {err}");
        assert!(
            err.contains(&format!("kubedirector {event}: role worker"))
                && err.contains("not ready after"),
            "{event}: {err}"
        );
    }
    // Other members finished: the running agent is asked to reload, which needs it.
    for event in [
        "--role_upgraded",
        "--role_reverted",
        "--cluster_upgraded",
        "--cluster_reverted",
    ] {
        let (code, err) = hook(&[event], &env);
        assert_ne!(code, 0, "{event}: {err}");
        assert!(
            err.contains("/nonexistent/sparkvisor.sock"),
            "{event}: {err}"
        );
    }
    // An invalid config is refused before anything, whatever the event.
    let dir = common::TempDir::new("kdhook");
    let text = std::fs::read_to_string(example("worker")).unwrap().replace(
        "\"role_id\": \"spark-worker\"",
        "\"role_id\": \"spark-wrker\"",
    );
    let bad = dir.file("configmeta.json", &text);
    for event in ["--pod_upgraded", "--cluster_upgraded"] {
        let (code, err) = hook(&[event], &[("SPARKVISOR_CONFIGMETA", &bad)]);
        assert_eq!(code, 78, "{event}: {err}");
        assert!(err.contains("spark-wrker"), "{event}: {err}");
    }
    // An event this version does not know: a usage error naming it.
    let (code, err) = hook(&["--pod_frobnicated"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("--pod_frobnicated"), "{err}");
}
