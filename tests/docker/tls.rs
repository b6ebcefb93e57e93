#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A cluster with Spark's SSL, RPC authentication and RPC encryption (docs/ha.md, "TLS"):
//! docker/compose.yaml with tests/fixtures/compose-ssl.yaml, Java stores made here by the JRE's
//! `keytool`. The web UIs' plain ports only redirect to HTTPS and require client certificates, yet
//! the master, the workers and the history server become healthy (their probes follow the redirect
//! and speak HTTPS with the configured stores), the workers' agents waited for the master over
//! HTTPS, both workers register and a job computes its exact result. Needs root, Docker and a JRE
//! (CI=true: mandatory).

use crate::{common, docker_support};

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use docker_support::*;

const SERVICES: [&str; 4] = [
    "spark-master",
    "spark-worker-1",
    "spark-worker-2",
    "spark-history",
];

/// The sum of squares of 1..=100000, computed on the cluster.
const JOB: &str = r#"
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("sparkvisor-tls-test")
         .config("spark.executor.memory", "480m").getOrCreate())
print("SUM", spark.sparkContext.parallelize(range(1, 100001), 4).map(lambda x: x * x).sum())
spark.stop()
"#;
const SUM: u64 = 100_000 * 100_001 * 200_001 / 6;

fn logs(container: &str) -> String {
    let out = run(Command::new("docker").args(["logs", container]));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_ssl_cluster_with_rpc_encryption_forms_and_runs_a_job() {
    if !prerequisites("an_ssl_cluster_with_rpc_encryption_forms_and_runs_a_job")
        || !common::require(
            common::has_command("keytool"),
            "an_ssl_cluster_with_rpc_encryption_forms_and_runs_a_job: needs keytool (a JRE)",
        )
    {
        return;
    }
    let image = image();
    let certs = common::TempDir::new("tls-certs");
    let (keystore, truststore) = common::keytool_stores(&certs.0, "storepass1");
    // The services run as spark (uid 185): the stores must be readable to it.
    for path in [&certs.0, &keystore, &truststore] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let certs_dir = certs.0.display().to_string();
    let project = Project::up_files(
        "tls",
        &image,
        &["docker/compose.yaml", "tests/fixtures/compose-ssl.yaml"],
        &[("SPARKVISOR_TEST_CERTS", certs_dir.as_str())],
    );

    // SSL is really on: the master's plain UI port answers every request with a redirect.
    let master = project.container("spark-master");
    let master_ip = container_ip(&master);
    let (status, _) = wait_for(
        "the master's plain UI port",
        Duration::from_secs(300),
        || http_get(&master_ip, 8080, "/json/"),
    );
    assert_eq!(status, 302, "the master's plain UI port does not redirect");

    // Every Spark node turns healthy: its probe followed the redirect and spoke HTTPS.
    for service in SERVICES {
        let id = project.container(service);
        wait_for(
            &format!("{service} healthy under SSL"),
            Duration::from_secs(400),
            || {
                let (code, out, err) = exec(&id, &["sparkvisor", "health"]);
                (code == 0).then_some(()).ok_or(format!("{out}{err}"))
            },
        );
    }
    // The workers' agents waited for an ALIVE master, over HTTPS, and both registered. On a machine
    // so loaded that the master took longer than the workers' 180 s bound, a worker started anyway
    // ("nothing answered"): then its container is restarted, and this start must find the master.
    for worker in ["spark-worker-1", "spark-worker-2"] {
        let id = project.container(worker);
        if logs(&id).contains("nothing answered on http://spark-master:8080/json/") {
            eprintln!(
                "tls: {worker} did not find the master within its bound (load): restarting it"
            );
            docker(&["restart", "-t", "30", &id]);
            wait_for(
                &format!("{worker}'s wait after a restart"),
                Duration::from_secs(300),
                || {
                    // The part of the log after the second start's "waiting for".
                    let text = logs(&id);
                    let second = text
                        .split("spark-worker: waiting for")
                        .nth(2)
                        .unwrap_or_default();
                    (second.contains("answers after") || second.contains("nothing answered"))
                        .then_some(())
                        .ok_or_else(|| "the second wait has not ended".to_string())
                },
            );
        }
        let text = logs(&id);
        let last_wait = text
            .rsplit("spark-worker: waiting for")
            .next()
            .unwrap_or_default();
        assert!(
            last_wait.contains("spark-worker: http://spark-master:8080/json/ answers after"),
            "{worker}: the agent's wait for the master did not pass over HTTPS:\n{text}"
        );
    }
    wait_for("both workers registered", Duration::from_secs(120), || {
        let n = logs(&master).matches("Registering worker").count();
        (n >= 2).then_some(()).ok_or(format!("{n} registered"))
    });

    // A job over authenticated, encrypted RPC with the worker's rendered spark-defaults.conf.
    let worker = project.container("spark-worker-1");
    let out = run(Command::new("docker").args([
        "exec", "-u", "spark", "-w", "/tmp", &worker, "python3", "-c", JOB,
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("SUM {SUM}")),
        "the job on the SSL cluster (want SUM {SUM}): {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = exec(&worker, &["cat", "/opt/spark/conf/spark-defaults.conf"]).1;
    for key in [
        "spark.ssl.enabled true",
        "spark.authenticate true",
        "spark.network.crypto.enabled true",
    ] {
        assert!(conf.contains(key), "{key} not in spark-defaults.conf");
    }
}
