//! ssh into a node (docs/access.md), with real containers and the host's OpenSSH client: a master
//! and a worker from the image, `SPARKVISOR_SSH=true` and an injected key on the master.
//!
//! Run alone: `cargo test --test access_ssh -- --test-threads=2` (root and Docker).

mod common;
mod docker_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use docker_support::{
    agent_status, alive_workers, container_ip, docker, exec, http_json, pids_matching,
    prerequisites, proc_field, proc_status, service, unique, wait_for, Container,
};

/// The port the ssh add-on listens on by default.
const PORT: &str = "2222";
/// CHOWN, SETGID, SETUID, NET_BIND_SERVICE, SYS_CHROOT, AUDIT_WRITE: the `ssh` role's list.
const SSHD_CAPS: &str = "00000000200404c1";

/// A Docker network removed when dropped.
pub struct Network(pub String);
impl Network {
    fn new(what: &str) -> Network {
        let name = unique(what);
        docker(&["network", "create", &name]);
        Network(name)
    }
}
impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A fresh ed25519 key pair in `dir`: (private key path, public key line).
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = docker_support::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key),
    );
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub"))
        .unwrap_or_else(|e| panic!("{}.pub: {e}", key.display()));
    (key, public.trim().to_string())
}

/// The client options every test login uses: no agent, no known_hosts, no prompts.
fn ssh_base(ip: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-p",
        PORT,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=15",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentityAgent=none",
        "-F",
        "/dev/null",
    ]);
    let _ = ip;
    cmd.env_remove("SSH_AUTH_SOCK");
    cmd
}

/// `ssh -i KEY USER@IP CMD` with key authentication only: (exit code, stdout, stderr).
pub fn ssh_key(ip: &str, key: &Path, user: &str, command: &str) -> (i32, String, String) {
    ssh_key_stdin(ip, key, user, command, None)
}

/// [`ssh_key`] with `input` on the remote command's stdin.
pub fn ssh_key_stdin(
    ip: &str,
    key: &Path,
    user: &str,
    command: &str,
    input: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = ssh_base(ip);
    cmd.args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o"])
        .arg("PreferredAuthentications=publickey")
        .arg("-i")
        .arg(key)
        .arg(format!("{user}@{ip}"))
        .arg(command);
    finish(cmd, input)
}

/// `ssh USER@IP CMD` with password authentication only, the password given through SSH_ASKPASS
/// (OpenSSH's own non-interactive way, no sshpass needed): (exit code, stdout, stderr).
pub fn ssh_password(
    ip: &str,
    user: &str,
    password: &str,
    command: &str,
    input: Option<&str>,
) -> (i32, String, String) {
    let askpass =
        docker_support::temp_file("askpass.sh", &format!("#!/bin/sh\necho '{password}'\n"));
    let _ = Command::new("chmod").arg("0755").arg(&askpass).status();
    let mut cmd = ssh_base(ip);
    cmd.args([
        "-o",
        "BatchMode=no",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "NumberOfPasswordPrompts=1",
    ])
    .arg(format!("{user}@{ip}"))
    .arg(command)
    .env("SSH_ASKPASS", &askpass)
    .env("SSH_ASKPASS_REQUIRE", "force")
    .env("DISPLAY", ":0");
    finish(cmd, input)
}

fn finish(mut cmd: Command, input: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ssh: {e}"));
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("ssh: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The host key sshd offers on IP:2222 (`ssh-keyscan`), without the host name.
fn host_key(ip: &str) -> Result<String, String> {
    let out = docker_support::run(
        Command::new("ssh-keyscan").args(["-T", "5", "-t", "ed25519", "-p", PORT, ip]),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("ssh-ed25519"))
        .and_then(|l| l.split_once(' ').map(|(_, k)| k.to_string()))
        .ok_or_else(|| {
            format!(
                "no host key from {ip}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

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
    let st = proc_status(container, pid);
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
            "--memory",
            "1g",
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
    let st = proc_status(&master.name, sshd_pid as u32);
    assert_eq!(proc_field(&st, "CapEff"), SSHD_CAPS, "sshd {st:?}");
    assert_eq!(proc_field(&st, "CapBnd"), SSHD_CAPS, "sshd {st:?}");
    let java = pids_matching(&master.name, "org.apache.spark.deploy.master.Master");
    assert_eq!(java.len(), 1, "master JVM pids {java:?}");
    assert_unprivileged(&master.name, java[0], "spark-master");

    // 4. The session has the node's Spark environment: spark-submit of a pi job runs on the cluster.
    wait_for("a worker ALIVE", Duration::from_secs(180), || {
        let json = http_json(&ip, 8080, "/json/")?;
        (!alive_workers(&json).is_empty())
            .then_some(())
            .ok_or(json.to_string())
    });
    let (code, out, err) = ssh_key_stdin(
        &ip,
        &good,
        "spark",
        "cat > /tmp/pi.py && spark-submit /tmp/pi.py 2>&1",
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
    let st = proc_status(&node.name, pid as u32);
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
