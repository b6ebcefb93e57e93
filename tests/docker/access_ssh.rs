//! ssh into a node (docs/access.md), with real containers and the host's OpenSSH client: a master
//! and a worker from the image, `SPARKVISOR_SSH=true` and an injected key on the master.
//!
//! Run alone: `cargo test --test docker access_ssh:: -- --test-threads=2` (root and Docker).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{access_support, docker_support};

use std::time::Duration;

use access_support::{host_key, keypair, ssh_key, ssh_key_stdin, ssh_password};
use docker_support::{
    agent_status, alive_workers, container_ip, docker, exec, http_json, pids_matching,
    prerequisites, proc_field, proc_status_in, service, unique, wait_for, Container, Network,
};

/// CHOWN, KILL, SETGID, SETUID, NET_BIND_SERVICE, SYS_CHROOT, AUDIT_WRITE: the `ssh` role's list.
const SSHD_CAPS: &str = "00000000200404e1";

/// Waits until the agent reports `name` ready and returns its pid.
fn wait_ready(container: &str, name: &str, timeout: Duration) -> u64 {
    wait_for(&format!("{name} ready in {container}"), timeout, || {
        let status = agent_status(container)?;
        let s = service(&status, name).ok_or_else(|| format!("no {name} in {status}"))?;
        match (s["state"].as_str(), s["pid"].as_u64()) {
            (Some("ready"), Some(pid)) => Ok(pid),
            _ => Err(s.to_string()),
        }
    })
}

/// Every capability set of the process is empty and NoNewPrivs is on.
fn assert_unprivileged(container: &str, pid: u32, what: &str) {
    let st = proc_status_in(container, pid);
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(proc_field(&st, cap), "0000000000000000", "{what} {cap}");
    }
    assert_eq!(proc_field(&st, "NoNewPrivs"), "1", "{what} NoNewPrivs");
}

const PI: &str = r#"
import random
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("ssh-pi").getOrCreate()
n = 20000
inside = spark.sparkContext.parallelize(range(n), 2).filter(
    lambda _: random.random() ** 2 + random.random() ** 2 <= 1).count()
print("Pi is roughly %f on %s" % (4.0 * inside / n, spark.sparkContext.master))
spark.stop()
"#;

#[test]
fn ssh_with_injected_key_as_root_agent() {
    if !prerequisites("ssh_with_injected_key_as_root_agent") {
        return;
    }
    let image = docker_support::image();
    let dir = std::env::temp_dir().join(unique("keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, good_pub) = keypair(&dir, "good");
    let (other, _) = keypair(&dir, "other");
    let net = Network::new("net");
    let master_name = unique("master");
    // The injected keys: the good key, and a broken line that must be reported and skipped.
    let keys = format!("{good_pub}\nssh-ed25519 AAAAnot-a-key broken@example\n");
    let master = Container::run(
        "m",
        &[
            "--network",
            &net.0,
            "--network-alias",
            &master_name,
            "--hostname",
            &master_name,
            "--user",
            "0",
            "-e",
            "SPARK_MODE=master",
            "-e",
            "SPARKVISOR_SSH=true",
            "-e",
            &format!("SPARKVISOR_SSH_AUTHORIZED_KEYS={keys}"),
        ],
        &image,
        &[],
    );
    let _worker = Container::run(
        "w",
        &[
            "--network",
            &net.0,
            "--user",
            "0",
            // 2 GiB: the worker then offers 1408 MiB (sizing policy), room for Spark's default 1g
            // executor, so spark-submit runs with the node's defaults alone.
            "--memory",
            "2g",
            "-e",
            "SPARK_MODE=worker",
            "-e",
            &format!("SPARK_MASTER_URL=spark://{master_name}:7077"),
        ],
        &image,
        &[],
    );
    let ip = container_ip(&master.name);
    let sshd_pid = wait_ready(&master.name, "sshd", Duration::from_secs(180));

    // The bad key line is reported with the variable and line; the node runs on.
    let logs = master.logs();
    assert!(
        logs.contains("SPARKVISOR_SSH_AUTHORIZED_KEYS") && logs.contains("line 2"),
        "no error naming the setting in:\n{logs}"
    );

    // 1. The injected key logs in as spark, uid 185, with no capabilities left in the session.
    let (code, out, err) = ssh_key(&ip, &good, "spark", "id -u; grep CapEff /proc/self/status");
    assert_eq!(code, 0, "key login failed: {err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("185"), "{out}");
    assert!(
        lines
            .next()
            .is_some_and(|l| l.ends_with("0000000000000000")),
        "session holds capabilities: {out}"
    );

    // 2. Another key, any password and root are refused; the server offers public keys only.
    let (code, _, err) = ssh_key(&ip, &other, "spark", "true");
    assert_ne!(code, 0, "another key got in");
    assert!(err.contains("Permission denied"), "{err}");
    let (code, _, err) = ssh_password(&ip, "spark", "spark", "true", None);
    assert_ne!(code, 0, "a password got in");
    assert!(err.contains("Permission denied (publickey)"), "{err}");
    let (code, _, _) = ssh_key(&ip, &good, "root", "true");
    assert_ne!(code, 0, "root logged in");
    let (_, config, _) = exec(
        &master.name,
        &[
            "/usr/sbin/sshd",
            "-T",
            "-f",
            "/run/sparkvisor/ssh/sshd_config",
        ],
    );
    for line in [
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "sshd -T lacks {line:?}:\n{config}"
        );
    }

    // 3. Privileges: sshd holds exactly its declared capabilities; the master JVM holds none.
    let st = proc_status_in(&master.name, sshd_pid as u32);
    assert_eq!(proc_field(&st, "CapEff"), SSHD_CAPS, "sshd {st:?}");
    assert_eq!(proc_field(&st, "CapBnd"), SSHD_CAPS, "sshd {st:?}");
    let java = pids_matching(&master.name, "org.apache.spark.deploy.master.Master");
    assert_eq!(java.len(), 1, "master JVM pids {java:?}");
    assert_unprivileged(&master.name, java[0], "spark-master");
    // ...and so does every other service of the node (each process the agent started).
    let status = agent_status(&master.name).unwrap();
    let mut checked = 0;
    for s in status["services"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        if name == "sshd" {
            continue;
        }
        let pid = s["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} not running: {s}"));
        assert_unprivileged(&master.name, pid as u32, name);
        checked += 1;
    }
    assert!(checked >= 1, "no Spark service in {status}");

    // 4. The session has the node's Spark environment: spark-submit of a pi job runs on the cluster.
    // Generous: on a loaded 2-core machine the master and worker JVMs take minutes to come up.
    wait_for("a worker ALIVE", Duration::from_secs(600), || {
        let json = http_json(&ip, 8080, "/json/")?;
        (!alive_workers(&json).is_empty())
            .then_some(())
            .ok_or(json.to_string())
    });
    let (code, out, err) = ssh_key_stdin(
        &ip,
        &good,
        "spark",
        "cat > /tmp/pi.py && timeout 600 spark-submit /tmp/pi.py 2>&1",
        Some(PI),
    );
    assert_eq!(code, 0, "spark-submit over ssh failed:\n{out}\n{err}");
    assert!(
        out.contains("Pi is roughly") && out.contains(&format!("spark://{master_name}:7077")),
        "{out}"
    );

    // 5. kill -9 of sshd: the agent restarts it; the same key works again.
    let key_before = wait_for("host key", Duration::from_secs(30), || host_key(&ip));
    exec(&master.name, &["kill", "-9", &sshd_pid.to_string()]);
    let new_pid = wait_for("sshd restarted", Duration::from_secs(60), || {
        let status = agent_status(&master.name)?;
        let s = service(&status, "sshd").ok_or("no sshd")?;
        match (
            s["state"].as_str(),
            s["pid"].as_u64(),
            s["restarts"].as_u64(),
        ) {
            (Some("ready"), Some(pid), Some(r)) if pid != sshd_pid && r >= 1 => Ok(pid),
            _ => Err(s.to_string()),
        }
    });
    assert_ne!(new_pid, sshd_pid);
    let (code, out, err) = ssh_key(&ip, &good, "spark", "id -un");
    assert_eq!((code, out.trim()), (0, "spark"), "{err}");
    let (_, sshd_logs, _) = exec(&master.name, &["sparkvisor", "logs", "sshd", "-n", "50"]);
    assert!(
        sshd_logs.contains("Server listening"),
        "sshd output not in logs: {sshd_logs}"
    );

    // 6. The host key survives a container restart (kept under /data/ssh).
    docker(&["restart", "-t", "20", &master.name]);
    let ip = container_ip(&master.name);
    wait_ready(&master.name, "sshd", Duration::from_secs(180));
    let key_after = wait_for("host key", Duration::from_secs(30), || host_key(&ip));
    assert_eq!(key_before, key_after, "host key changed across a restart");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node started as uid 185 (the image's default USER, given explicitly): the agent runs sshd as
/// itself with no capabilities, and only spark gets in.
#[test]
fn ssh_as_spark_user_lets_only_spark_in() {
    if !prerequisites("ssh_as_spark_user_lets_only_spark_in") {
        return;
    }
    let image = docker_support::image();
    let dir = std::env::temp_dir().join(unique("keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, good_pub) = keypair(&dir, "good");
    // A role with only the ssh add-on: no JVM needed to show the non-root path.
    let node = Container::run(
        "u",
        &[
            "--user",
            "185:185",
            "-e",
            "SPARK_MODE=ssh",
            "-e",
            &format!("SPARKVISOR_SSH_AUTHORIZED_KEYS={good_pub}"),
        ],
        &image,
        &[],
    );
    let ip = container_ip(&node.name);
    let pid = wait_ready(&node.name, "sshd", Duration::from_secs(120));
    let st = proc_status_in(&node.name, pid as u32);
    assert_eq!(
        proc_field(&st, "Uid").split_whitespace().next(),
        Some("185"),
        "{st:?}"
    );
    assert_eq!(proc_field(&st, "CapEff"), "0000000000000000", "{st:?}");
    let (code, out, err) = ssh_key(&ip, &good, "spark", "id -u");
    assert_eq!((code, out.trim()), (0, "185"), "{err}");
    // Another account is not let in by a non-root sshd, whatever the key.
    let (code, _, _) = ssh_key(&ip, &good, "nobody", "true");
    assert_ne!(code, 0, "a non-root sshd let another user in");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An arbitrary uid (OpenShift's `restricted-v2`, here `--user 1000700000:0`): sshd cannot serve
/// logins for an account that only nss_wrapper knows, so the add-on is refused with the reason
/// while the master runs as usual.
#[test]
fn ssh_under_an_arbitrary_uid_is_refused_and_spark_runs() {
    if !prerequisites("ssh_under_an_arbitrary_uid_is_refused_and_spark_runs") {
        return;
    }
    let image = docker_support::image();
    let node = Container::run(
        "a",
        &[
            "--user",
            "1000700000:0",
            "-e",
            "SPARK_MODE=master",
            "-e",
            "SPARKVISOR_SSH=true",
        ],
        &image,
        &[],
    );
    wait_ready(&node.name, "spark-master", Duration::from_secs(180));
    let logs = node.logs();
    assert!(
        logs.contains("access.ssh: the container runs as uid 1000700000, which has no account"),
        "no reason in the log:\n{logs}"
    );
    let status = agent_status(&node.name).unwrap();
    assert!(service(&status, "sshd").is_none(), "{status}");
}
