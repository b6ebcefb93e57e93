#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Role mode without root: every built-in daemon role reaches ready (the image's HEALTHCHECK turns
//! healthy) as the image's default user, as an OpenShift-style arbitrary uid in group 0, and on a
//! read-only root filesystem with a tmpfs /tmp (rendered config and the status socket move there).
//! The agent says once that it runs the services as itself. (The history-server role is left out:
//! it exits as root too, its default event-log directory file:/tmp/spark-events is never created.) Needs root and Docker (CI=true:
//! mandatory). The containers start together and are waited for together.

mod common;
mod docker_support;

use std::time::Duration;

use docker_support::{exec, image, prerequisites, wait_for, Container};

#[test]
fn roles_reach_ready_without_root() {
    if !prerequisites("roles_reach_ready_without_root") {
        return;
    }
    let image = image();
    let arbitrary = ["--user", "1000700000:0"];
    let read_only = ["--read-only", "--tmpfs", "/tmp"];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("master", arbitrary.to_vec()),
        ("master", read_only.to_vec()),
        (
            "worker",
            vec!["-e", "SPARK_MASTER_URL=spark://127.0.0.1:7077"],
        ),
        ("notebook", arbitrary.to_vec()),
    ];
    let containers: Vec<(String, Container)> = cases
        .iter()
        .map(|(role, args)| {
            let mode = format!("SPARK_MODE={role}");
            let mut all = args.clone();
            all.extend(["-e", &mode]);
            let c = Container::run("dropinrole", &all, &image, &[]);
            (format!("{role} {args:?}"), c)
        })
        .collect();
    for (what, c) in &containers {
        wait_for(
            &format!("{what} healthy"),
            Duration::from_secs(400),
            || match c
                .inspect("{{.State.Status}} {{.State.Health.Status}}")
                .as_str()
            {
                "running healthy" => Ok(()),
                other => Err(format!("{other}\n{}", c.logs())),
            },
        );
        let logs = c.logs();
        assert_eq!(
            logs.matches("(not root): every service runs as this user")
                .count(),
            1,
            "{what}: {logs}"
        );
        let (code, out, err) = exec(&c.name, &["sparkvisor", "status"]);
        assert_eq!(code, 0, "{what}: {out}{err}");
    }
}
