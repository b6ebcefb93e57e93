//! Real Spark (pyspark 4's jars, Java 17) started by sparkvisor with the built-in `master` and
//! `worker` roles on 127.0.0.1: the worker registers ALIVE with the derived cores and memory, a
//! PySpark job computing pi completes, `kill -9` of the worker JVM brings a new worker ALIVE, and
//! SIGTERM ends each agent cleanly within the grace.
//!
//! The Spark services run as root with `capabilities: []` (SPARK_DAEMON_USER=root): pyspark is
//! installed under /root (mode 0700), which the usual `spark` user cannot read on this machine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{common, supervisor_support};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{alive_workers, free_port, has_java, http_get, master_json, spark_home};
use supervisor_support::*;

struct Node {
    scene: Scene,
    env: Vec<(String, String)>,
}

impl Node {
    fn new(roles: &Path, templates: &Path, env: Vec<(String, String)>) -> Self {
        let scene = Scene::new();
        let mut env = env;
        let root = scene.path().display().to_string();
        env.extend([
            ("SPARKVISOR_ROLES".into(), roles.display().to_string()),
            (
                "SPARKVISOR_TEMPLATES".into(),
                templates.display().to_string(),
            ),
            ("SPARK_CONF_DIR".into(), format!("{root}/conf")),
            ("SPARK_WORKER_DIR".into(), format!("{root}/work")),
            ("SPARK_LOCAL_DIRS".into(), format!("{root}/local")),
            ("SPARK_LOG_DIR".into(), format!("{root}/logs")),
            ("SPARK_DAEMON_USER".into(), "root".into()),
            ("SPARK_LOCAL_IP".into(), "127.0.0.1".into()),
            ("SPARK_LOCAL_HOSTNAME".into(), "127.0.0.1".into()),
            ("SPARK_PUBLIC_DNS".into(), "127.0.0.1".into()),
            ("SPARKVISOR_HOSTNAME".into(), "localhost".into()),
            ("SPARKVISOR_SOCKET".into(), format!("{root}/agent.sock")),
        ]);
        Self { scene, env }
    }
    fn command(&self, pid1: bool, args: &[&str]) -> Command {
        let mut cmd = self.scene.agent(pid1, args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
    fn socket(&self) -> PathBuf {
        self.scene.path().join("agent.sock")
    }
}

/// Spark's home when pyspark, Java and root are all here; else `None` (after skip_unless said
/// which is missing, or failed under `CI=true`).
fn spark_prerequisites() -> Option<PathBuf> {
    let Some(home) = spark_home() else {
        skip_unless(false, "pyspark with bin/spark-class is not installed");
        return None;
    };
    if skip_unless(has_java(), "java is not installed") || skip_unless(is_root(), "needs root") {
        return None;
    }
    Some(home)
}

#[test]
fn spark_master_and_worker_under_sparkvisor() {
    let Some(home) = spark_prerequisites() else {
        return;
    };
    let started = Instant::now();
    let repo = common::repo();
    // Root services: the role files must be ones they cannot change (copies owned by nobody).
    let trusted = tempfile::tempdir().unwrap();
    let copies = common::copies_owned_by_nobody(
        &[&repo.join("roles"), &repo.join("templates")],
        trusted.path(),
    );
    let (roles, templates) = (copies[0].clone(), copies[1].clone());
    let (master_port, master_ui, worker_ui) = (free_port(), free_port(), free_port());
    // A cgroup v2 fixture: 2 CPUs, 3 GiB.
    let cgroup = tempfile::tempdir().unwrap();
    for (file, text) in [
        ("cgroup.controllers", "cpuset cpu io memory pids\n"),
        ("cpu.max", "200000 100000\n"),
        ("memory.max", "3221225472\n"),
    ] {
        std::fs::write(cgroup.path().join(file), text).unwrap();
    }
    let common = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("SPARK_HOME".into(), home.display().to_string()),
            ("SPARK_MASTER_HOST".into(), "127.0.0.1".into()),
            ("SPARK_MASTER_PORT".into(), master_port.to_string()),
            ("SPARK_MASTER_WEBUI_PORT".into(), master_ui.to_string()),
            ("SPARK_WORKER_WEBUI_PORT".into(), worker_ui.to_string()),
            (
                "SPARKVISOR_CGROUP_ROOT".into(),
                cgroup.path().display().to_string(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    };
    let master = Node::new(&roles, &templates, common(&[]));
    let master_url = format!("spark://127.0.0.1:{master_port}");
    let worker = Node::new(
        &roles,
        &templates,
        common(&[("SPARK_MASTER_URL", master_url.clone())]),
    );

    // The master as a real PID 1, the worker as a subreaper.
    let mut master_agent = master
        .scene
        .start(&mut master.command(true, &["run", "--role", "master"]));
    wait_until(Duration::from_secs(60), "master ALIVE", || {
        master_json("127.0.0.1", master_ui).is_ok_and(|j| j["status"] == "ALIVE")
    });
    let mut worker_agent = worker
        .scene
        .start(&mut worker.command(false, &["run", "--role", "worker"]));
    wait_until(Duration::from_secs(60), "worker registered", || {
        alive_workers(&master_json("127.0.0.1", master_ui).unwrap_or_default()).len() == 1
    });
    // What sparkvisor derived for the worker from the fixture limits, as rendered in spark-env.sh.
    let env_sh = std::fs::read_to_string(worker.scene.path().join("conf/spark-env.sh")).unwrap();
    let value = |key: &str| -> String {
        env_sh
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} not in spark-env.sh:\n{env_sh}"))
            .trim_matches('\'')
            .to_string()
    };
    let cores: u64 = value("SPARK_WORKER_CORES").parse().unwrap();
    let memory_mb: u64 = value("SPARK_WORKER_MEMORY")
        .trim_end_matches('m')
        .parse()
        .unwrap();
    assert_eq!(cores, 2, "the cgroup fixture was not used:\n{env_sh}");
    let first = alive_workers(&master_json("127.0.0.1", master_ui).unwrap_or_default()).remove(0);
    assert_eq!(first["cores"].as_u64(), Some(cores), "{first}");
    assert_eq!(first["memory"].as_u64(), Some(memory_mb), "{first}");
    // The master's service is reported ready on the status socket.
    let status = get(&master.socket(), "/v1/status");
    assert!(status.contains("\"ready\":true"), "{status}");

    // A PySpark job computing pi on the cluster.
    let job = r#"
import sys
from random import random
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master(sys.argv[1]).appName("pi")
         .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.executor.memory", "512m").config("spark.ui.enabled", "false").getOrCreate())
n = 200000
inside = spark.sparkContext.parallelize(range(n), 4).filter(lambda _: random() ** 2 + random() ** 2 <= 1).count()
print("PI=%f" % (4.0 * inside / n))
spark.stop()
"#;
    let out = Command::new("python3")
        .args(["-c", job, &master_url])
        .env("SPARK_HOME", &home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYSPARK_PYTHON", "python3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pi job failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pi: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PI="))
        .expect("no PI line")
        .parse()
        .unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.1, "pi = {pi}");

    // kill -9 of the worker JVM: restarted, a new worker registers ALIVE.
    let status: serde_json::Value =
        serde_json::from_str(&get(&worker.socket(), "/v1/status")).unwrap();
    let jvm = status["services"][0]["pid"].as_i64().expect("worker pid") as i32;
    assert_eq!(unsafe { libc::kill(jvm, libc::SIGKILL) }, 0);
    let old_id = first["id"].as_str().unwrap().to_string();
    wait_until(Duration::from_secs(60), "a new worker ALIVE", || {
        alive_workers(&master_json("127.0.0.1", master_ui).unwrap_or_default())
            .iter()
            .any(|w| w["id"].as_str() != Some(old_id.as_str()))
    });
    let status: serde_json::Value =
        serde_json::from_str(&get(&worker.socket(), "/v1/status")).unwrap();
    assert_eq!(
        status["services"][0]["restarts"].as_u64(),
        Some(1),
        "{status}"
    );

    // SIGTERM to each agent: a clean exit (0) within Docker's 10 s.
    for (agent, pid1, name) in [
        (&mut worker_agent, false, "worker"),
        (&mut master_agent, true, "master"),
    ] {
        let t0 = Instant::now();
        agent.signal(pid1, libc::SIGTERM);
        let code = Agent::code(agent.wait(Duration::from_secs(15)));
        let took = t0.elapsed();
        assert_eq!(code, 0, "{name} agent: {}", agent.stderr());
        assert!(took < Duration::from_secs(10), "{name} agent took {took:?}");
    }
    println!("spark test took {:?}", started.elapsed());
}

/// Waits (generously: a loaded machine) until `sparkvisor health` of `node` passes.
fn healthy(node: &Node, name: &str) {
    let ok = common::poll(Duration::from_secs(240), Duration::from_millis(500), || {
        health(&node.socket()).status.success().then_some(())
    });
    assert!(
        ok.is_some(),
        "the SSL {name} never became ready:\n{}",
        node.scene.stderr()
    );
}

/// The bitnami-compatible SSL, RPC authentication and RPC encryption settings, with stores in `dir`
/// as Java 17's `keytool` writes them by default: PKCS#12, which Spark reads although its store
/// type says JKS (`keystore.type.compat`), and so must the probes. (docker_tls uses JKS stores.)
fn ssl_env(dir: &Path) -> Vec<(String, String)> {
    let (keystore, truststore) = common::keytool_default_stores(dir, "storepass1");
    [
        ("SPARK_SSL_ENABLED", "yes".to_string()),
        ("SPARK_SSL_KEYSTORE_FILE", keystore.display().to_string()),
        (
            "SPARK_SSL_TRUSTSTORE_FILE",
            truststore.display().to_string(),
        ),
        ("SPARK_SSL_KEYSTORE_PASSWORD", "storepass1".into()),
        ("SPARK_SSL_TRUSTSTORE_PASSWORD", "storepass1".into()),
        ("SPARK_SSL_KEY_PASSWORD", "storepass1".into()),
        ("SPARK_RPC_AUTHENTICATION_ENABLED", "yes".into()),
        ("SPARK_RPC_AUTHENTICATION_SECRET", "rpc-secret-1".into()),
        ("SPARK_RPC_ENCRYPTION_ENABLED", "yes".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The probes read the JKS stores keytool makes: the cluster certificate is trusted and the key
/// decrypts; wrong passwords are refused; the same store converted to PKCS#12 reads too.
#[test]
fn java_keystores_give_the_probes_their_tls_identity() {
    if skip_unless(
        common::has_command("keytool"),
        "keytool (a JRE) is not installed",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ks, ts) = common::keytool_stores(dir.path(), "storepass1");
    let (ks, ts) = (ks.to_str().unwrap(), ts.to_str().unwrap());
    let pw = Some("storepass1");
    assert!(sparkvisor::supervision::tls::build(ts, pw, Some((ks, pw, pw))).is_ok());
    let wrong = sparkvisor::supervision::tls::build(ts, Some("nope"), None)
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("password is incorrect"), "{wrong}");
    let wrong = sparkvisor::supervision::tls::build(ts, pw, Some((ks, pw, Some("nope"))))
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("key password is incorrect"), "{wrong}");
    let p12 = dir.path().join("store.p12");
    let out = Command::new("keytool")
        .args([
            "-importkeystore",
            "-srckeystore",
            ks,
            "-srcstorepass",
            "storepass1",
        ])
        .args([
            "-destkeystore",
            p12.to_str().unwrap(),
            "-deststoretype",
            "PKCS12",
        ])
        .args(["-deststorepass", "storepass1", "-noprompt"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p12 = p12.to_str().unwrap();
    assert!(sparkvisor::supervision::tls::build(p12, pw, Some((p12, pw, pw))).is_ok());
    let jks = sparkvisor::supervision::tls::read_store(ks, pw).unwrap();
    let converted = sparkvisor::supervision::tls::read_store(p12, pw).unwrap();
    assert_eq!(converted.keys.len(), 1);
    assert_eq!(converted.keys[0].chain, jks.keys[0].chain);
    assert_eq!(
        sparkvisor::supervision::tls::decrypt_key(p12, &converted.keys[0], "storepass1").unwrap(),
        sparkvisor::supervision::tls::decrypt_key(ks, &jks.keys[0], "storepass1").unwrap()
    );
}

/// Spark's SSL on (with RPC authentication and encryption, keytool-default PKCS#12 stores): the
/// UIs' plain ports only redirect to HTTPS (with client certificates required, bitnami's default),
/// yet the master and the worker become ready, the worker's wait for the master passes, and a job
/// runs on the cluster.
#[test]
fn an_ssl_cluster_is_ready_and_runs_a_job() {
    let Some(home) = spark_prerequisites() else {
        return;
    };
    let repo = common::repo();
    let trusted = tempfile::tempdir().unwrap();
    let copies = common::copies_owned_by_nobody(
        &[&repo.join("roles"), &repo.join("templates")],
        trusted.path(),
    );
    let stores = tempfile::tempdir().unwrap();
    let ssl = ssl_env(stores.path());
    let (master_port, master_ui, worker_ui) = (free_port(), free_port(), free_port());
    let env = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("SPARK_HOME".into(), home.display().to_string()),
            ("SPARK_MASTER_HOST".into(), "127.0.0.1".into()),
            ("SPARK_MASTER_PORT".into(), master_port.to_string()),
            ("SPARK_MASTER_WEBUI_PORT".into(), master_ui.to_string()),
            ("SPARK_WORKER_WEBUI_PORT".into(), worker_ui.to_string()),
            ("SPARK_WORKER_CORES".into(), "1".into()),
            ("SPARK_WORKER_MEMORY".into(), "1g".into()),
        ];
        env.extend(ssl.iter().cloned());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    };
    let master = Node::new(&copies[0], &copies[1], env(&[]));
    let master_url = format!("spark://127.0.0.1:{master_port}");
    let worker = Node::new(
        &copies[0],
        &copies[1],
        env(&[("SPARK_MASTER_URL", master_url.clone())]),
    );
    let mut master_agent = master
        .scene
        .start(&mut master.command(false, &["run", "--role", "master"]));
    // The plain port only redirects: a plain-HTTP probe could never pass.
    let redirect = common::poll(Duration::from_secs(120), Duration::from_millis(250), || {
        http_get("127.0.0.1", master_ui, "/json/")
            .ok()
            .map(|(status, _)| status)
    });
    assert!(
        redirect.is_some_and(|s| s == 302),
        "the master's plain UI port answered {redirect:?}, not a redirect"
    );
    healthy(&master, "master");
    let mut worker_agent = worker
        .scene
        .start(&mut worker.command(false, &["run", "--role", "worker"]));
    healthy(&worker, "worker");
    let waited = worker_agent.stderr();
    assert!(
        waited.contains(&format!("http://127.0.0.1:{master_ui}/json/ answers after")),
        "the worker's wait for the master did not pass over HTTPS:\n{waited}"
    );

    // A job with the worker's rendered spark-defaults.conf (SSL, authentication, encryption).
    let job = r#"
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("ssl-sum").config("spark.executor.memory", "512m").getOrCreate()
print("SUM=%d" % spark.sparkContext.parallelize(range(1, 1001), 2).sum())
spark.stop()
"#;
    let out = Command::new("python3")
        .args(["-c", job])
        .env("SPARK_HOME", &home)
        .env("SPARK_CONF_DIR", worker.scene.path().join("conf"))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYSPARK_PYTHON", "python3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("SUM=500500"),
        "job on the SSL cluster failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (agent, name) in [(&mut worker_agent, "worker"), (&mut master_agent, "master")] {
        agent.signal(false, libc::SIGTERM);
        let code = Agent::code(agent.wait(Duration::from_secs(30)));
        assert_eq!(code, 0, "{name} agent: {}", agent.stderr());
    }
}
