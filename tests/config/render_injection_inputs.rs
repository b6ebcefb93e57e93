#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The injection corpus end to end: hostile values given as environment variables and in a cluster
//! file (SPARKVISOR_CONFIG) go through the real resolver and `sparkvisor render`; the rendered
//! spark-env.sh, sourced by bash, creates nothing and yields the literal value, and
//! spark-defaults.conf keeps it — or the value is refused with exit 78 and a reason naming it.

use crate::common;

use std::process::Command;

const CORPUS: &[&str] = &[
    "$(touch pwned)",
    "`touch pwned`",
    "it's \"quoted\"",
    "a;touch pwned",
    "line1\ntouch pwned",
    "${IFS}touch${IFS}pwned",
    "<x>&amp;]]>",
    "héllo ✓ 日本",
    "back\\slash",
];

/// The CPU count the resolver sizes the JVMs for on this machine (read back from a plain render).
fn cpus() -> String {
    let repo = common::repo();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["render", "--role", "worker", "--out"])
        .arg(dir.path())
        .env("SPARKVISOR_ROLES", repo.join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo.join("templates"))
        .env("SPARK_MASTER_URL", "spark://m1:7077")
        .env_remove("SPARKVISOR_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(dir.path().join("opt/spark/conf/spark-env.sh")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix("SPARK_DAEMON_JAVA_OPTS='-XX:ActiveProcessorCount="))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap()
        .to_string()
}

#[test]
fn hostile_env_and_cluster_file_values_stay_literal_or_are_refused() {
    let repo = common::repo();
    let mut rendered = 0;
    for (i, value) in CORPUS.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = dir.path().join("cluster.json");
        std::fs::write(
            &cluster,
            serde_json::json!({
                "settings": { "spark": { "daemon_java_opts": value } },
                "spark_conf": { "spark.injected": value },
                "secrets": { "spark.authenticate.secret": value },
            })
            .to_string(),
        )
        .unwrap();
        let out_dir = dir.path().join("out");
        let out = Command::new(common::bin())
            .args(["render", "--role", "worker", "--out"])
            .arg(&out_dir)
            .env("SPARKVISOR_ROLES", repo.join("roles"))
            .env("SPARKVISOR_TEMPLATES", repo.join("templates"))
            .env("SPARKVISOR_CONFIG", &cluster)
            .env("SPARK_WORKER_DIR", format!("/tmp/{value}"))
            .env("SPARK_MASTER_URL", "spark://m1:7077")
            .env_remove("SPARKVISOR_ROLE")
            .env_remove("SPARK_MODE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(78) {
            // Only a multi-line path may be refused, and the reason names where it came from.
            assert!(value.contains('\n'), "#{i} {value:?} refused:\n{stderr}");
            assert!(stderr.contains("SPARK_WORKER_DIR"), "#{i}: {stderr}");
            continue;
        }
        assert!(out.status.success(), "#{i} {value:?}: {stderr}");
        rendered += 1;
        let conf = out_dir.join("opt/spark/conf");
        let env_file = conf.join("spark-env.sh");
        let work = dir.path().join("cwd");
        std::fs::create_dir(&work).unwrap();
        for (var, want) in [
            ("SPARK_WORKER_DIR", format!("/tmp/{value}")),
            (
                "SPARK_DAEMON_JAVA_OPTS",
                format!("-XX:ActiveProcessorCount={}", cpus()),
            ),
        ] {
            let want = if var == "SPARK_DAEMON_JAVA_OPTS" {
                format!("{want} {value}")
            } else {
                want
            };
            let shell = Command::new("bash")
                .arg("-c")
                .arg(format!("set -a; . \"$1\"; printf %s \"${var}\""))
                .arg("bash")
                .arg(&env_file)
                .current_dir(&work)
                .output()
                .unwrap();
            assert!(shell.status.success());
            assert_eq!(String::from_utf8(shell.stdout).unwrap(), want, "#{i} {var}");
        }
        assert_eq!(
            std::fs::read_dir(&work).unwrap().count(),
            0,
            "#{i}: sourcing created files"
        );
        // The properties file holds the value as one escaped line per key (a raw newline would have
        // started a new property).
        let defaults = std::fs::read_to_string(conf.join("spark-defaults.conf")).unwrap();
        let line = defaults
            .lines()
            .find(|l| l.starts_with("spark.injected "))
            .unwrap_or_else(|| panic!("#{i}: no spark.injected line in\n{defaults}"));
        assert!(!line.contains('\n'));
        assert!(
            defaults.lines().filter(|l| l.contains("touch")).count() <= 2,
            "#{i}: the value spilled over lines:\n{defaults}"
        );
    }
    // Every single-line value went through the resolver to the files (not refused).
    assert_eq!(
        rendered,
        CORPUS.iter().filter(|v| !v.contains('\n')).count()
    );
}
