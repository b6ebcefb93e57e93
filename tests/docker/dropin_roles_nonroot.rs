#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Role mode without root: every built-in role that starts a service reaches ready (the image's
//! HEALTHCHECK turns healthy) in three ways, each its own container:
//! - `--user spark`: the image's default user, uid 185, named;
//! - `--user 1000700000:0`: an OpenShift-style arbitrary uid in group 0 (a passwd entry through
//!   nss_wrapper);
//! - `--read-only --tmpfs /tmp`: the default user on a read-only root filesystem (rendered config,
//!   Jupyter's config and the status socket move under /tmp).
//!
//! Each service runs as the container's uid, the agent says once that it runs the services as
//! itself, and `docker stop` ends the container without SIGKILL. Roles: master, worker, notebook,
//! history-server, connect, thriftserver, and the ssh add-on (a key login as the container's user;
//! with an arbitrary uid, which has no login name of its own, and with the ldap add-on, which needs
//! a root agent, the node starts without them and says why). Not here: `zeppelin`
//! (Zeppelin is not installed in the image), `driver`/`executor` (tests/docker/dropin_k8s_pods.rs),
//! `all-in-one` (master + worker + notebook, each covered here). `zookeeper` runs from its own image
//! (docker/Dockerfile.zookeeper), whose default user is the package's `zookeeper`.
//! Needs root and Docker (CI=true: mandatory). One role at a time (three JVMs fill two cores).

use crate::{access_support, docker_support};

use std::sync::Mutex;
use std::time::Duration;

use docker_support::{
    agent_status, container_ip, docker, exec, image, prerequisites, proc_field, proc_status_in,
    service, unique, wait_for, Container, Network,
};

/// One way to run without root: (what, docker run arguments, the uid every service must have).
type Variant<'a> = (&'a str, &'a [&'a str], &'a str);

/// The ways to run the Spark image without root.
const VARIANTS: &[Variant<'static>] = &[
    ("--user spark", &["--user", "spark"], "185"),
    (
        "--user 1000700000:0",
        &["--user", "1000700000:0"],
        "1000700000",
    ),
    (
        "--read-only --tmpfs /tmp",
        &["--read-only", "--tmpfs", "/tmp"],
        "185",
    ),
];

/// Starts a `pyspark` kernel through Jupyter's REST API and prints its name and state (Jupyter
/// reports `starting` until a client talks to it; a kernel that could not start says `dead`).
const KERNEL_IDLE: &str = r#"
import glob, json, time, urllib.request as u
info = json.load(open(glob.glob("/tmp/sparkvisor-jupyter/runtime/jpserver-*.json")[0]))
def call(path, data=None):
    r = u.Request(info["url"].rstrip("/") + path, data=data, method="POST" if data else "GET",
                  headers={"Authorization": "token " + info["token"]})
    return json.load(u.urlopen(r))
kernel = call("/api/kernels", b'{"name": "pyspark"}')
print(kernel["name"], call("/api/kernels/" + kernel["id"])["execution_state"])
"#;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Starts `role` in every [`VARIANTS`] way (plus `extra` arguments), waits until each is healthy
/// and checks who runs what; returns the containers (still running) with their variant's uid.
fn start_role<'a>(
    role: &str,
    services: &[&str],
    extra: &[&str],
    image: &str,
) -> Vec<(String, Container, &'a str)> {
    start_variants(VARIANTS, role, services, extra, image)
}

/// [`start_role`] with the given variants.
fn start_variants<'a>(
    variants: &[Variant<'a>],
    role: &str,
    services: &[&str],
    extra: &[&str],
    image: &str,
) -> Vec<(String, Container, &'a str)> {
    let mode = format!("SPARK_MODE={role}");
    let containers: Vec<(String, Container, &str)> = variants
        .iter()
        .map(|(what, args, uid)| {
            let mut all = args.to_vec();
            all.extend(extra);
            all.extend(["-e", &mode]);
            let c = Container::run(
                &format!("nonroot{}", role.replace('-', "")),
                &all,
                image,
                &[],
            );
            (format!("{role} {what}"), c, *uid)
        })
        .collect();
    for (what, c, uid) in &containers {
        wait_healthy(what, c);
        let logs = c.logs();
        assert_eq!(
            logs.matches("(not root): every service runs as this user")
                .count(),
            1,
            "{what}: {logs}"
        );
        if what.ends_with("--tmpfs /tmp") && services.iter().any(|s| s.starts_with("spark-")) {
            assert!(
                logs.contains("rendering the config into SPARK_CONF_DIR=/tmp/spark/conf"),
                "{what}: {logs}"
            );
        }
        let status = agent_status(&c.name).unwrap_or_else(|e| panic!("{what}: {e}"));
        for name in services {
            let s = service(&status, name).unwrap_or_else(|| panic!("{what}: no {name}"));
            assert_eq!(s["state"], "ready", "{what}: {s}");
            let pid = s["pid"].as_u64().unwrap() as u32;
            let st = proc_status_in(&c.name, pid);
            assert_eq!(
                proc_field(&st, "Uid").split_whitespace().next(),
                Some(*uid),
                "{what}: {name} {st:?}"
            );
            assert_eq!(proc_field(&st, "CapEff"), "0000000000000000", "{what}");
        }
    }
    containers
}

/// Waits until the container's HEALTHCHECK says healthy (the agent's required services ready).
fn wait_healthy(what: &str, c: &Container) {
    wait_for(
        &format!("{what} healthy"),
        Duration::from_secs(600),
        || match c
            .inspect("{{.State.Status}} {{.State.Health.Status}}")
            .as_str()
        {
            "running healthy" => Ok(()),
            // An ended container never turns healthy: fail now, with its log.
            other if other.starts_with("exited") => panic!("{what}: {other}\n{}", c.logs()),
            other => Err(format!("{other}\n{}", c.logs())),
        },
    );
}

/// `docker stop` ends each container by the agent's orderly stop, never by Docker's SIGKILL: the
/// agent logs the stop and the end of every service before PID 1 exits. (A service that overstays
/// its role's stop grace is killed by the agent itself, which it logs; on a loaded machine a JVM
/// can.)
fn stop_all(containers: &[(String, Container, &str)]) {
    for (what, c, _) in containers {
        let services = agent_status(&c.name)
            .map(|s| s["services"].as_array().map_or(0, Vec::len))
            .unwrap_or(0);
        docker(&["stop", "-t", "60", &c.name]);
        let logs = c.logs();
        let after = logs
            .split("signal 15: stopping every service")
            .nth(1)
            .unwrap_or_else(|| panic!("{what}: no orderly stop logged:\n{logs}"));
        let ended = after.lines().filter(|l| l.contains(" ended (")).count();
        assert!(
            ended >= services,
            "{what}: {ended} of {services} services seen ending before PID 1 exited:\n{logs}"
        );
    }
}

/// A master (default user) on its own network, for the roles that join one.
fn master(image: &str) -> (Network, Container, String) {
    let network = Network::new("nonrootnet");
    let name = unique("nonrootmaster");
    let c = Container::run_named(
        &name,
        &["--network", &network.0, "-e", "SPARK_MODE=master"],
        image,
        &[],
    );
    (network, c, format!("SPARK_MASTER_URL=spark://{name}:7077"))
}

fn simple_role(role: &str, services: &[&str]) {
    if !prerequisites(&format!("{role}_reaches_ready_without_root")) {
        return;
    }
    let image = image();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let containers = start_role(role, services, &[], &image);
    stop_all(&containers);
}

#[test]
fn master_reaches_ready_without_root() {
    simple_role("master", &["spark-master"]);
}

#[test]
fn history_server_reaches_ready_without_root() {
    simple_role("history-server", &["spark-history"]);
}

#[test]
fn connect_reaches_ready_without_root() {
    simple_role("connect", &["spark-connect"]);
}

#[test]
fn thriftserver_reaches_ready_without_root() {
    simple_role("thriftserver", &["spark-thriftserver"]);
}

#[test]
fn worker_and_notebook_reach_ready_without_root() {
    if !prerequisites("worker_and_notebook_reach_ready_without_root") {
        return;
    }
    let image = image();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (network, master, url) = master(&image);
    let extra = ["--network", network.0.as_str(), "-e", url.as_str()];
    let workers = start_role("worker", &["spark-worker"], &extra, &image);
    // Every worker registered, whoever it runs as.
    let master_ip = container_ip(&master.name);
    wait_for("3 workers alive", Duration::from_secs(300), || {
        let json = docker_support::http_json(&master_ip, 8080, "/json/")?;
        match docker_support::alive_workers(&json).len() {
            3 => Ok(()),
            n => Err(format!("{n} alive: {json}")),
        }
    });
    stop_all(&workers);
    drop(workers);
    let notebooks = start_role("notebook", &["spark-notebook"], &extra, &image);
    // Jupyter starts a PySpark kernel that turns idle: its runtime, data and IPython directories
    // are writable whoever it runs as (token and URL from Jupyter's own runtime file).
    for (what, c, _) in &notebooks {
        let (code, out, err) = exec(&c.name, &["python3", "-c", KERNEL_IDLE]);
        assert!(
            code == 0 && out.starts_with("pyspark ") && !out.contains("dead"),
            "{what}: {err}\n{}",
            c.logs()
        );
    }
    stop_all(&notebooks);
}

#[test]
fn ssh_add_on_works_without_root() {
    if !prerequisites("ssh_add_on_works_without_root") {
        return;
    }
    let image = image();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(unique("nonrootkeys"));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, public) = access_support::keypair(&dir, "k");
    let keys = format!("SPARKVISOR_SSH_AUTHORIZED_KEYS={public}");
    // The ldap add-on asked for too: it needs a root agent, so it is reported and left out.
    let extra = [
        "-e",
        keys.as_str(),
        "-e",
        "SPARKVISOR_LDAP_URI=ldap://ldap.invalid",
    ];
    // sshd as the image's user, also on a read-only root (its run and host key dirs under /tmp).
    let variants = [VARIANTS[0], VARIANTS[2]];
    let nodes = start_variants(&variants, "ssh", &["sshd"], &extra, &image);
    for (what, c, uid) in &nodes {
        let logs = c.logs();
        assert!(
            logs.contains("LDAP users need the agent to run as root"),
            "{what}: {logs}"
        );
        let (code, out, err) =
            access_support::ssh_key(&container_ip(&c.name), &key, "spark", "id -u");
        assert_eq!((code, out.trim()), (0, *uid), "{what}: {err}\n{logs}");
    }
    stop_all(&nodes);
    // An arbitrary uid has no login name of its own: the node starts without sshd and says why.
    let (what, args, _) = VARIANTS[1];
    let mut all = args.to_vec();
    all.extend(extra);
    all.extend(["-e", "SPARK_MODE=master", "-e", "SPARKVISOR_SSH=true"]);
    let c = Container::run("nonrootsshuid", &all, &image, &[]);
    wait_healthy(what, &c);
    let logs = c.logs();
    assert!(
        logs.contains("which has no account in /etc/passwd (an arbitrary uid"),
        "{logs}"
    );
    let status = agent_status(&c.name).unwrap();
    assert!(service(&status, "sshd").is_none(), "{status}");
    assert_eq!(service(&status, "spark-master").unwrap()["state"], "ready");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zookeeper_reaches_ready_without_root() {
    if !prerequisites("zookeeper_reaches_ready_without_root") {
        return;
    }
    let spark_image = image();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = docker_support::run(
        std::process::Command::new(docker_support::repo().join("docker/build-zookeeper-image.sh"))
            .arg(&spark_image)
            .current_dir(docker_support::repo())
            .stderr(std::process::Stdio::inherit()),
    );
    assert!(out.status.success(), "build-zookeeper-image.sh failed");
    let zk = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let zk_uid = docker(&["run", "--rm", "--entrypoint", "id", &zk, "-u", "zookeeper"]);
    // On a read-only root ZooKeeper's data goes on a volume (here a tmpfs) and its config to a
    // writable directory named by a setting.
    // The data volume belongs to ZooKeeper's user, as a Kubernetes fsGroup or a prepared volume
    // would make it (a bare tmpfs is root's).
    let data_tmpfs = format!("/var/lib/zookeeper:uid={zk_uid}");
    let read_only = [
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        &data_tmpfs,
        "-e",
        "SPARKVISOR_SETTINGS={zookeeper.conf_dir: /tmp/zookeeper}",
    ];
    let variants: [Variant; 3] = [
        ("the image's default user (zookeeper)", &[], &zk_uid),
        (
            "--user 1000700000:0",
            &["--user", "1000700000:0"],
            "1000700000",
        ),
        ("--read-only", &read_only, &zk_uid),
    ];
    let nodes = start_variants(&variants, "zookeeper", &["zookeeper"], &[], &zk);
    stop_all(&nodes);
}
