#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The official image's smoke test (apache/spark-docker `testing/testing.sh`) replayed against this
//! image: a master, a worker and a pi job from a third container, each started as a plain command
//! (no sparkvisor flags, no `--`), on one bridge network. As the image's default user (spark), as
//! root, as an OpenShift-style arbitrary uid in group 0, and on a read-only root filesystem with a
//! tmpfs /tmp. Each computes pi; the pass-through containers' HEALTHCHECK turns healthy; `docker
//! stop` ends them with SIGTERM (the JVM's 143), never SIGKILL (137).
//! Needs root and Docker (CI=true: mandatory). The variants run one after another (2 cores).

use crate::docker_support;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use docker_support::{
    alive_workers, container_ip, docker, http_json, image, prerequisites, repo, run, unique,
    wait_for, Container, Network,
};

/// One cluster at a time: three JVMs per variant already fill the machine's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn smoke(variant: &str, user_args: &[&str]) {
    if !prerequisites(&format!("official_smoke_test_{variant}")) {
        return;
    }
    let image = image();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let network = Network::new("dropinnet");
    let master_name = unique("dropinmaster");
    let mut master_args = vec!["--network", network.0.as_str(), "--hostname", &master_name];
    master_args.extend_from_slice(user_args);
    let master = Container::run_named(
        &master_name,
        &master_args,
        &image,
        &[
            "/opt/spark/bin/spark-class",
            "org.apache.spark.deploy.master.Master",
        ],
    );
    let master_url = format!("spark://{master_name}:7077");
    let mut worker_args = vec!["--network", network.0.as_str()];
    worker_args.extend_from_slice(user_args);
    let worker = Container::run(
        "dropinworker",
        &worker_args,
        &image,
        &[
            "/opt/spark/bin/spark-class",
            "org.apache.spark.deploy.worker.Worker",
            &master_url,
        ],
    );
    let master_ip = container_ip(&master.name);
    wait_for(
        "the worker registered with the master",
        Duration::from_secs(300),
        || {
            let json = http_json(&master_ip, 8080, "/json/")?;
            if alive_workers(&json).len() == 1 {
                Ok(())
            } else {
                Err(format!("master /json/: {json}"))
            }
        },
    );

    // The job, from a third container, as testing.sh runs SparkPi (pyspark has no examples jar).
    let pi = repo().join("docker/examples/pi.py");
    let mount = format!("{}:/opt/dropin/pi.py:ro", pi.display());
    let submit_name = unique("dropinsubmit");
    let mut args: Vec<&str> = vec![
        "run",
        "--rm",
        "--name",
        &submit_name,
        "--network",
        &network.0,
    ];
    args.extend_from_slice(user_args);
    args.extend([
        "-v",
        &mount,
        &image,
        "/opt/spark/bin/spark-submit",
        "--master",
        &master_url,
        "/opt/dropin/pi.py",
        "4",
    ]);
    let out = run(Command::new("docker").args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{variant}: spark-submit failed ({}): {stdout}\n{stderr}",
        out.status
    );
    let estimate: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Pi is roughly "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{variant}: no pi in the job's output: {stdout}\n{stderr}"));
    assert!(
        (estimate - std::f64::consts::PI).abs() < 0.05,
        "pi = {estimate}"
    );
    assert!(stdout.contains(&master_url), "{variant}: {stdout}");

    // The image's HEALTHCHECK fits pass-through mode: the master's command runs, so it is healthy.
    wait_for(
        "the pass-through master's HEALTHCHECK",
        Duration::from_secs(120),
        || match master.inspect("{{.State.Health.Status}}").as_str() {
            "healthy" => Ok(()),
            other => Err(other.to_string()),
        },
    );

    // docker stop: SIGTERM reaches the JVMs, which end with 143 well within the grace (no SIGKILL).
    for c in [&worker, &master] {
        docker(&["stop", "-t", "30", &c.name]);
        let code = c.inspect("{{.State.ExitCode}}");
        assert_eq!(code, "143", "{variant}: {} after docker stop", c.name);
    }
}

#[test]
fn official_smoke_test_as_user_spark() {
    smoke("user_spark", &["--user", "spark"]);
}

#[test]
fn official_smoke_test_as_root() {
    smoke("root", &["--user", "root"]);
}

#[test]
fn official_smoke_test_as_an_arbitrary_uid_in_group_0() {
    smoke("arbitrary_uid", &["--user", "1000700000:0"]);
}

#[test]
fn official_smoke_test_on_a_read_only_root() {
    smoke("read_only", &["--read-only", "--tmpfs", "/tmp"]);
}
