#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Settings that must take effect in the rendered files (docs/services.md), through the real
//! binary: `sparkvisor render` and `inspect --json` with the built-in roles and templates.

use crate::common;

use std::process::Output;

use common::{repo, sparkvisor, TempDir};
use serde_json::Value;

fn with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = sparkvisor(false);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SPARKVISOR_ROLES", repo().join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo().join("templates"))
        .env("SPARK_DAEMON_USER", "root")
        .env("SPARKVISOR_HOSTNAME", "node-1")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Renders `role` under a temp dir: (spark-env.sh, spark-defaults.conf).
fn render(role: &str, env: &[(&str, &str)]) -> (String, String) {
    let out = TempDir::new("render-services");
    let dir = out.0.display().to_string();
    let o = with_env(&["render", "--role", role, "--out", &dir], env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |f: &str| std::fs::read_to_string(out.0.join("opt/spark/conf").join(f)).unwrap();
    (read("spark-env.sh"), read("spark-defaults.conf"))
}

fn settings(role: &str, env: &[(&str, &str)]) -> Value {
    let o = with_env(&["inspect", "--json", "--role", role], env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    json["config"]["settings"].clone()
}

#[test]
fn user_settings_reach_spark_env_and_defaults() {
    let (env_sh, defaults) = render(
        "worker",
        &[
            (
                "SPARK_DAEMON_JAVA_OPTS",
                "-Dspark.deploy.recoveryMode=ZOOKEEPER -Da='b c'",
            ),
            ("SPARK_WORKER_PORT", "35555"),
            ("SPARK_LOCAL_IP", "10.1.2.3"),
            ("SPARK_METRICS_ENABLED", "yes"),
            ("SPARK_EVENT_LOG_ENABLED", "true"),
            ("SPARK_EVENT_LOG_DIR", "/shared/events"),
        ],
    );
    let java_opts = env_sh
        .lines()
        .find(|l| l.starts_with("SPARK_DAEMON_JAVA_OPTS="))
        .unwrap_or_else(|| panic!("no SPARK_DAEMON_JAVA_OPTS in:\n{env_sh}"));
    assert!(
        java_opts.starts_with("SPARK_DAEMON_JAVA_OPTS='-XX:ActiveProcessorCount=")
            && java_opts.ends_with(r#" -Dspark.deploy.recoveryMode=ZOOKEEPER -Da='\''b c'\'''"#),
        "ours first, then the user's, quoted: {java_opts}"
    );
    assert!(env_sh.contains("\nSPARK_WORKER_PORT='35555'\n"), "{env_sh}");
    assert!(env_sh.contains("\nSPARK_LOCAL_IP='10.1.2.3'\n"), "{env_sh}");
    for line in [
        "spark.eventLog.enabled true",
        "spark.eventLog.dir file\\:/shared/events",
        "spark.metrics.conf.*.sink.prometheusServlet.class org.apache.spark.metrics.sink.PrometheusServlet",
        "spark.metrics.conf.master.sink.prometheusServlet.path /metrics/master/prometheus",
        "spark.ui.prometheus.enabled true",
    ] {
        assert!(defaults.lines().any(|l| l == line), "{line} missing:\n{defaults}");
    }
}

/// The master's and worker's daemon JVMs get HotSpot's C1 compiler only (a quicker start) unless
/// the user asks for full tiered compilation; other daemons (history server, Connect server) keep
/// the JVM's default; a value that is neither is refused before anything is written.
#[test]
fn daemon_jit_defaults_to_c1_for_master_and_worker_only() {
    let opts = |role: &str, env: &[(&str, &str)]| {
        let (env_sh, _) = render(role, env);
        env_sh
            .lines()
            .find(|l| l.starts_with("SPARK_DAEMON_JAVA_OPTS="))
            .unwrap_or_default()
            .to_string()
    };
    for role in ["master", "worker", "all-in-one"] {
        assert!(
            opts(role, &[]).contains(" -XX:TieredStopAtLevel=1"),
            "{role}"
        );
        let full = opts(role, &[("SPARKVISOR_DAEMON_JIT", "full")]);
        assert!(!full.contains("TieredStopAtLevel"), "{role}: {full}");
        // The user's own flag comes after ours, so HotSpot takes the user's.
        let user = opts(
            role,
            &[("SPARK_DAEMON_JAVA_OPTS", "-XX:TieredStopAtLevel=4")],
        );
        assert!(
            user.ends_with("-XX:TieredStopAtLevel=1 -XX:TieredStopAtLevel=4'"),
            "{role}: {user}"
        );
    }
    for role in ["history-server", "connect"] {
        assert!(!opts(role, &[]).contains("TieredStopAtLevel"), "{role}");
    }
    let bad = with_env(
        &[
            "render",
            "--role",
            "worker",
            "--out",
            "/nonexistent-dir/out",
        ],
        &[("SPARKVISOR_DAEMON_JIT", "C2")],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("SPARKVISOR_DAEMON_JIT") && stderr.contains("expected c1"),
        "{stderr}"
    );
}

#[test]
fn features_stay_off_unless_asked_and_explicit_properties_win() {
    let (env_sh, defaults) = render(
        "worker",
        &[
            ("SPARK_METRICS_ENABLED", "no"),
            ("SPARK_EVENT_LOG_ENABLED", "yes"),
            (
                "SPARKVISOR_SPARK_CONF",
                "{spark.eventLog.dir: 's3a://bucket/events'}",
            ),
        ],
    );
    assert!(!env_sh.contains("SPARK_WORKER_PORT"), "{env_sh}");
    assert!(!env_sh.contains("SPARK_LOCAL_IP"), "{env_sh}");
    assert!(!defaults.contains("prometheus"), "{defaults}");
    assert!(
        defaults
            .lines()
            .any(|l| l == "spark.eventLog.dir s3a\\://bucket/events"),
        "{defaults}"
    );
}

#[test]
fn history_server_reads_the_event_log_dir() {
    let s = settings(
        "history-server",
        &[("SPARK_EVENT_LOG_DIR", "/shared/events")],
    );
    assert_eq!(s["history.log_dir"]["value"], "file:/shared/events");
    let s = settings("history-server", &[]);
    assert_eq!(s["history.log_dir"]["value"], "file:/tmp/spark/events");
}

#[test]
fn server_roles_use_the_configured_master_else_local() {
    let s = settings("connect", &[("SPARK_MASTER_URL", "spark://m:7077")]);
    assert_eq!(s["spark.app_master"]["value"], "spark://m:7077");
    let s = settings(
        "thriftserver",
        &[("SPARKVISOR_PEERS", "{master: [m1, m2]}")],
    );
    assert_eq!(s["spark.app_master"]["value"], "spark://m1:7077,m2:7077");
    let s = settings("connect", &[]);
    assert!(
        s.get("spark.app_master").is_none(),
        "no master: local[N] ({s})"
    );
}

#[test]
fn zeppelin_accepts_what_spark_submit_accepts() {
    for good in [
        "local[*]",
        "local[2]",
        "local",
        "yarn",
        "k8s://https://api:6443",
    ] {
        let o = with_env(&["check", "--role", "zeppelin"], &[("SPARK_MASTER", good)]);
        assert!(
            o.status.success(),
            "{good}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = with_env(
        &["check", "--role", "zeppelin"],
        &[("SPARK_MASTER", "local[x]")],
    );
    assert_eq!(o.status.code(), Some(78));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("env SPARK_MASTER") && err.contains("local[x]"),
        "{err}"
    );
}

/// Failure detection (docs/cluster.md, "Losing a host"): every Spark role gets the worker timeout
/// and network timeout chosen for orchestrated clusters; a user's own property replaces ours.
#[test]
fn failure_detection_defaults_and_a_users_value_wins() {
    for role in ["master", "worker", "notebook"] {
        let (_, defaults) = render(role, &[("SPARK_MASTER_URL", "spark://m:7077")]);
        assert!(
            defaults.contains("\nspark.worker.timeout 10\n")
                && defaults.contains("\nspark.network.timeout 60s\n"),
            "{role}:\n{defaults}"
        );
    }
    let (_, defaults) = render(
        "worker",
        &[
            ("SPARK_MASTER_URL", "spark://m:7077"),
            (
                "SPARKVISOR_SPARK_CONF",
                "{spark.worker.timeout: 30, spark.network.timeout: 120s}",
            ),
        ],
    );
    assert_eq!(
        defaults
            .lines()
            .filter(|l| l.starts_with("spark.worker.timeout ")
                || l.starts_with("spark.network.timeout "))
            .collect::<Vec<_>>(),
        ["spark.network.timeout 120s", "spark.worker.timeout 30"],
        "only the user's values:\n{defaults}"
    );
}

/// A ZooKeeper ensemble from the `zookeeper` peers, injected by environment or by the cluster
/// file: every server listed, this node's id its place in the list, peers heard on every address.
#[test]
fn zookeeper_ensemble_from_the_peers() {
    let tmp = TempDir::new("render-zk");
    let cluster_file = tmp.file(
        "cluster.yaml",
        "peers:\n  zookeeper: [zk-a.example, zk-b.example, zk-c.example]\n",
    );
    for (how, env) in [
        (
            "SPARKVISOR_PEERS",
            vec![(
                "SPARKVISOR_PEERS",
                "{zookeeper: [zk-a.example, zk-b.example, zk-c.example]}",
            )],
        ),
        (
            "cluster file",
            vec![("SPARKVISOR_CONFIG", cluster_file.as_str())],
        ),
    ] {
        let out = TempDir::new("render-zk-out");
        let dir = out.0.display().to_string();
        let mut env = env;
        env.extend([
            ("SPARKVISOR_HOSTNAME", "zk-c"),
            ("SPARKVISOR_FQDN", "zk-c.example"),
            ("SPARKVISOR_SETTINGS", "{zookeeper.user: root}"),
        ]);
        let o = with_env(&["render", "--role", "zookeeper", "--out", &dir], &env);
        assert!(
            o.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let read = |f: &str| std::fs::read_to_string(out.0.join(f)).unwrap();
        let zoo = read("etc/sparkvisor/zookeeper/zoo.cfg");
        for line in [
            "server.1=zk-a.example:2888:3888",
            "server.2=zk-b.example:2888:3888",
            "server.3=zk-c.example:2888:3888",
            "quorumListenOnAllIPs=true",
        ] {
            assert!(
                zoo.lines().any(|l| l == line),
                "{how}: no {line} in:\n{zoo}"
            );
        }
        assert_eq!(read("var/lib/zookeeper/myid").trim(), "3", "{how}: myid");
    }
}
