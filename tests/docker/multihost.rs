#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Spark across hosts, as an operator runs it (docs/cluster.md): three Docker hosts built from
//! Debian's docker.io (`tests/multinode/cluster.sh`), a Swarm across them, and the project's stack
//! files deployed with the hosts' own Docker 20.10 CLI (`docker stack deploy`). One cluster serves
//! every step, in order:
//!
//! 1. `docker/compose.yaml` + `docker/compose.hosts.yaml`: the master on the manager, the two
//!    workers on two other hosts, each advertising its overlay address, which the master's host
//!    reaches; a shuffle job across hosts gives the exact sums; the same job with a worker's host
//!    killed mid-job gives them too, the worker comes back on another host and registers, and once
//!    the host returns the master lists exactly the two current workers ALIVE.
//! 2. `docker/stack.ha.yaml`: a three-server ZooKeeper ensemble (one per host, ids from the peers),
//!    two masters on two hosts; one follower ZooKeeper killed: quorum kept, nothing restarts; the
//!    active master's host killed mid-job: the standby becomes ALIVE, the workers re-register, the
//!    job's sums are exact. `health` and `status` of every task on every host at each step.
//!
//! Recovery and failover times are printed (`multihost:` lines; `bench/multihost/run.sh` collects
//! them), never asserted. Two more tests: a run killed midway leaves nothing behind, and
//! `docker/compose.yaml` deploys with Compose v1 and v2. Needs root and Docker (fails under
//! CI=true when missing).

use crate::{common, docker_support, multinode};

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use docker_support::*;
use multinode::{Cluster, Stack, Task, NODES};
use serde_json::Value;

/// The job: `JOB_N` numbers over `JOB_PARTS` partitions, a sleep of `JOB_PAUSE` s per partition on
/// both sides of a shuffle by `x % JOB_KEYS`: the driver's and executors' start and two stages of
/// four rounds of tasks on three cores, long enough to lose a host in the middle.
const JOB_N: u64 = 200_000;
const JOB_KEYS: u64 = 7;
const JOB_PARTS: u32 = 12;
const JOB_PAUSE: &str = "1.0";

/// The swarm's dispatcher heartbeat: the operator's lever on how soon Swarm notices a lost host
/// (about three heartbeats). Docker's default is 5 s.
const HEARTBEAT: &str = "2s";

/// The job, run from the notebook task.
impl Stack<'_> {
    /// Copies the job into the notebook task (the driver's host).
    fn install_job(&self, notebook: &Task) {
        let mut child = Command::new("docker")
            .args([
                "exec",
                "-i",
                &self.cluster.node(notebook.node),
                "docker",
                "exec",
                "-i",
                "-u",
                "spark",
                &notebook.container,
                "sh",
                "-c",
                "cat > /tmp/multihost-job.py",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("docker exec");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(JOB.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "installing the job");
    }

    /// Starts the job with spark-submit in the notebook task; `finish_job` collects it.
    fn start_job(&self, notebook: &Task, master_url: &str, name: &str) -> (Child, Instant) {
        let child = Command::new("docker")
            .args([
                "exec",
                &self.cluster.node(notebook.node),
                "docker",
                "exec",
                "-u",
                "spark",
                "-w",
                "/tmp",
                &notebook.container,
                "spark-submit",
                "--master",
                master_url,
                "--conf",
                "spark.ui.showConsoleProgress=false",
                // Spark's default (1g) does not fit the smaller worker (512 MiB for executors).
                // Less fails in an executor with 1 CPU: the JVM then picks the serial collector,
                // whose usable heap at -Xmx450m is under Spark's 450 MiB minimum.
                "--conf",
                "spark.executor.memory=512m",
                "/tmp/multihost-job.py",
                name,
                &JOB_PARTS.to_string(),
                &JOB_N.to_string(),
                &JOB_KEYS.to_string(),
                JOB_PAUSE,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spark-submit");
        (child, Instant::now())
    }
}

/// The job: a shuffle of squares by key, with a pause per partition on both sides.
const JOB: &str = r#"
import sys, time
from operator import add
from pyspark.sql import SparkSession

name, parts, n, keys, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
spark = SparkSession.builder.appName(name).getOrCreate()
sc = spark.sparkContext

def slow(rows):
    time.sleep(pause)
    return rows

sums = (sc.parallelize(range(n), parts).mapPartitions(slow)
        .map(lambda x: (x % keys, x * x))
        .reduceByKey(add, numPartitions=parts).mapPartitions(slow).collect())
for key, total in sorted(sums):
    print("sum %d %d" % (key, total))
spark.stop()
"#;

/// The sums the job must print, computed here independently.
fn expected_sums() -> BTreeMap<u64, u64> {
    let mut sums = BTreeMap::new();
    for x in 0..JOB_N {
        *sums.entry(x % JOB_KEYS).or_insert(0) += x * x;
    }
    sums
}

/// Waits for the job and checks its sums exactly; returns its wall time.
fn finish_job(job: (Child, Instant), what: &str) -> Duration {
    let (child, started) = job;
    let out = child.wait_with_output().expect("spark-submit");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: spark-submit failed: {}\n{stdout}\n{}",
        out.status,
        tail(&stderr, 60)
    );
    let got: BTreeMap<u64, u64> = stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("sum ")?.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(got, expected_sums(), "{what}: the job's sums\n{stdout}");
    // How the driver lived through the loss: what a slow recovery is made of (Spark's log goes to
    // stdout in the image's log4j2 configuration).
    for line in stdout.lines().chain(stderr.lines()).filter(|l| {
        [
            "Lost executor",
            "Executor lost",
            "Removing executor",
            "FetchFailed",
            "Resubmitting",
            "Resubmitted",
            "Lost task",
            "timed out",
            "Master has changed",
            "Granted executor",
        ]
        .iter()
        .any(|p| l.contains(p))
    }) {
        println!(
            "multihost:   driver ({what}): {}",
            line.chars().take(240).collect::<String>()
        );
    }
    took
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The executors a worker task runs, from its own `/json/`.
fn executors(stack: &Stack, worker: &Task) -> usize {
    let (code, out, _) = stack.exec(worker, &["curl", "-sf", "http://127.0.0.1:8081/json/"]);
    if code != 0 {
        return 0;
    }
    serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v["executors"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// What every running task on every live node says of itself: `sparkvisor health` (waited for,
/// a task that just started may still be starting) and `sparkvisor status`, printed as a table.
fn node_views(stack: &Stack, services: &[&str], step: &str) {
    println!("multihost: {step}: what each host's tasks say");
    for service in services {
        for task in stack.tasks(service) {
            let (health, services_state) = wait_for(
                &format!(
                    "{step}: sparkvisor health of {service} on node {}",
                    task.node
                ),
                Duration::from_secs(300),
                || {
                    let (code, _, err) = stack.exec(&task, &["sparkvisor", "health"]);
                    if code != 0 {
                        return Err(format!("health exit {code}: {err}"));
                    }
                    let (code, out, err) = stack.exec(&task, &["sparkvisor", "status", "--json"]);
                    if code != 0 {
                        return Err(format!("status exit {code}: {err}"));
                    }
                    let status: Value =
                        serde_json::from_str(&out).map_err(|e| format!("status: {e}"))?;
                    let states: Vec<String> = status["services"]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .map(|s| {
                                    format!(
                                        "{} {} (restarts {})",
                                        s["name"].as_str().unwrap_or("?"),
                                        s["state"].as_str().unwrap_or("?"),
                                        s["restarts"]
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Ok((code, states.join(", ")))
                },
            );
            println!(
                "multihost:   node {} {service}: health exit {health}; status: {services_state}; \
                 sees: {}",
                task.node,
                sees(stack, &task)
            );
        }
    }
}

/// What a task's own service reports of the cluster: a master its leadership and ALIVE workers, a
/// worker the master it follows, a ZooKeeper server its place in the ensemble.
fn sees(stack: &Stack, task: &Task) -> String {
    if task.container.contains("spark-master") {
        return match stack.master_json(task) {
            Ok(json) => format!(
                "master {}, {} workers ALIVE",
                json["status"].as_str().unwrap_or("?"),
                alive_workers(&json).len()
            ),
            Err(e) => e,
        };
    }
    if task.container.contains("spark-worker") {
        let (_, out, _) = stack.exec(task, &["curl", "-sf", "http://127.0.0.1:8081/json/"]);
        return serde_json::from_str::<Value>(&out).map_or_else(
            |e| format!("worker /json/: {e}"),
            |json| format!("follows {}", json["masterurl"].as_str().unwrap_or("?")),
        );
    }
    if task.container.contains("zookeeper") {
        return zk_mode(stack, task).map_or_else(|e| e, |mode| format!("ZooKeeper {mode}"));
    }
    "-".into()
}

/// The agent's restart count of every service in a task.
fn restarts(stack: &Stack, task: &Task) -> Vec<(String, u64)> {
    let (_, out, _) = stack.exec(task, &["sparkvisor", "status", "--json"]);
    let status: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    status["services"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or("?").to_string(),
                        s["restarts"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A ZooKeeper server's `srvr` mode (`leader`, `follower`, `standalone`) and `cons` client
/// addresses, asked on its client port from inside its task.
fn zk_word(stack: &Stack, task: &Task, word: &str) -> Result<String, String> {
    let script =
        format!("exec 3<>/dev/tcp/127.0.0.1/2181 && printf {word} >&3 && timeout 5 cat <&3");
    let (code, out, err) = stack.exec(task, &["bash", "-c", &script]);
    if code != 0 {
        return Err(format!("{word} on {task:?}: {err}"));
    }
    Ok(out)
}

fn zk_mode(stack: &Stack, task: &Task) -> Result<String, String> {
    let out = zk_word(stack, task, "srvr")?;
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_string)
        .ok_or_else(|| format!("no mode in srvr: {out}"))
}

/// Waits until the servers' modes, sorted, are `want`.
fn wait_quorum(stack: &Stack, servers: &[&Task], want: &[&str], what: &str) {
    wait_for(what, Duration::from_secs(300), || {
        let mut modes = servers
            .iter()
            .map(|zk| zk_mode(stack, zk))
            .collect::<Result<Vec<_>, _>>()?;
        modes.sort();
        (modes == want)
            .then_some(())
            .ok_or_else(|| format!("{modes:?}"))
    });
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[test]
fn spark_across_three_swarm_hosts() {
    if !prerequisites("multihost") {
        return;
    }
    let image = image();
    let zk_image = zookeeper_image(&image);
    let cluster = Cluster::up(&[&image, &zk_image], HEARTBEAT);
    let version = cluster.must(1, &["version", "--format", "{{.Client.Version}}"]);
    assert!(
        version.starts_with("20.10."),
        "the nodes run Debian's Docker 20.10 CLI, got {version}"
    );

    // ---- 1. docker/compose.yaml across hosts.
    let stack = Stack::deploy(
        &cluster,
        "spark",
        &["docker/compose.yaml", "docker/compose.hosts.yaml"],
        &image,
        &zk_image,
    );
    let master = stack.one("spark-master");
    assert_eq!(master.node, 1, "the master runs on the manager");
    let workers = stack.wait_workers(&master, &["spark-worker-1", "spark-worker-2"], 2);
    let hosts: BTreeSet<usize> = workers.iter().map(|t| t.node).collect();
    assert_eq!(
        hosts,
        BTreeSet::from([2, 3]),
        "the two workers run on the two worker hosts: {workers:?}"
    );
    for worker in &workers {
        let advertised = stack.advertised(worker).unwrap();
        assert_eq!(
            advertised,
            stack.address(worker).unwrap(),
            "{worker:?} advertises its overlay address"
        );
        // The master's host routes to it across hosts.
        let (code, _, err) = stack.exec(
            &master,
            &[
                "curl",
                "-sf",
                "-o",
                "/dev/null",
                &format!("http://{advertised}:8081/json/"),
            ],
        );
        assert_eq!(code, 0, "the master reaches worker {advertised}: {err}");
    }
    let notebook = stack.one("notebook");
    stack.install_job(&notebook);
    let url = "spark://spark-master:7077";
    let undisturbed = finish_job(
        stack.start_job(&notebook, url, "undisturbed"),
        "undisturbed",
    );
    println!(
        "multihost: the job across hosts, undisturbed: {}",
        secs(undisturbed)
    );

    // The same job, with the host of spark-worker-2 killed once both workers run its executors.
    let lost = stack.one("spark-worker-2");
    let kept = stack.one("spark-worker-1");
    let lost_address = stack.advertised(&lost).unwrap();
    let job = stack.start_job(&notebook, url, "host-lost");
    wait_for(
        "executors of the job on both workers",
        Duration::from_secs(300),
        || match (executors(&stack, &lost), executors(&stack, &kept)) {
            (a, b) if a > 0 && b > 0 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let killed = Instant::now();
    cluster.kill(lost.node);
    let mut swarm_down = None;
    let mut master_dropped = None;
    let replacement = wait_for(
        "the lost worker replaced on another host and ALIVE",
        Duration::from_secs(300),
        || {
            if swarm_down.is_none() && cluster.nodes_in_state("Down").contains(&lost.node) {
                swarm_down = Some(killed.elapsed());
            }
            let json = stack.master_json(&master)?;
            let workers = json["workers"].as_array().cloned().unwrap_or_default();
            if master_dropped.is_none()
                && workers
                    .iter()
                    .any(|w| w["host"] == lost_address.as_str() && w["state"] == "DEAD")
            {
                master_dropped = Some(killed.elapsed());
            }
            let task = match stack.tasks("spark-worker-2").as_slice() {
                [t] if t.node != lost.node => t.clone(),
                other => return Err(format!("spark-worker-2 tasks {other:?}")),
            };
            let address = stack.advertised(&task)?;
            alive_workers(&json)
                .iter()
                .any(|w| w["host"] == address.as_str())
                .then_some(task)
                .ok_or_else(|| format!("{address} not ALIVE yet"))
        },
    );
    let replaced = killed.elapsed();
    let with_loss = finish_job(job, "host lost mid-job");
    println!(
        "multihost: worker host killed mid-job: Swarm saw the node down after {}, the master \
         dropped the worker after {}, the replacement on node {} was ALIVE after {} \
         (target 20 s; dispatcher heartbeat {HEARTBEAT})",
        swarm_down.map_or("?".into(), secs),
        master_dropped.map_or("?".into(), secs),
        replacement.node,
        secs(replaced),
    );
    println!(
        "multihost: the job with the host lost: {} against {} undisturbed: +{:.1} s (target 30 s)",
        secs(with_loss),
        secs(undisturbed),
        with_loss.as_secs_f64() - undisturbed.as_secs_f64()
    );

    // The host returns: its old task is not started again, nothing stale stays ALIVE, no worker
    // is registered twice.
    cluster.start(lost.node);
    wait_for("the host Ready again", Duration::from_secs(120), || {
        cluster
            .nodes_in_state("Ready")
            .contains(&lost.node)
            .then_some(())
            .ok_or_else(|| "not Ready".to_string())
    });
    wait_for(
        "no Spark container left running on the returned host",
        Duration::from_secs(120),
        || {
            let (_, out, _) = cluster.docker_on(
                lost.node,
                &[
                    "ps",
                    "-q",
                    "--filter",
                    "label=com.docker.stack.namespace=spark",
                ],
            );
            out.trim()
                .is_empty()
                .then_some(())
                .ok_or_else(|| format!("still running: {out}"))
        },
    );
    let workers = stack.wait_workers(&master, &["spark-worker-1", "spark-worker-2"], 2);
    let json = stack.master_json(&master).unwrap();
    let alive = alive_workers(&json);
    let ids: BTreeSet<&str> = alive.iter().filter_map(|w| w["id"].as_str()).collect();
    let hosts: BTreeSet<String> = alive
        .iter()
        .map(|w| format!("{}:{}", w["host"], w["port"]))
        .collect();
    assert_eq!(alive.len(), 2, "exactly two ALIVE workers: {json}");
    assert_eq!(
        (ids.len(), hosts.len()),
        (2, 2),
        "no duplicate registration: {json}"
    );
    assert!(
        !alive.iter().any(|w| w["host"] == lost_address.as_str()),
        "the lost worker's address is not ALIVE: {json}"
    );
    println!("multihost: the host returned; ALIVE workers: {workers:?}");
    cluster.must(1, &["stack", "rm", "spark"]);
    wait_for("the first stack gone", Duration::from_secs(180), || {
        let left: usize = (1..=NODES)
            .map(|i| {
                cluster
                    .docker_on(
                        i,
                        &[
                            "ps",
                            "-aq",
                            "--filter",
                            "label=com.docker.stack.namespace=spark",
                        ],
                    )
                    .1
                    .lines()
                    .count()
            })
            .sum();
        (left == 0)
            .then_some(())
            .ok_or_else(|| format!("{left} containers"))
    });

    // ---- 2. HA across hosts: docker/stack.ha.yaml.
    for (i, labels) in [
        (1, &["spark.zookeeper=1", "spark.worker=true"][..]),
        (
            2,
            &["spark.zookeeper=2", "spark.worker=true", "spark.master=1"][..],
        ),
        (
            3,
            &["spark.zookeeper=3", "spark.worker=true", "spark.master=2"][..],
        ),
    ] {
        for label in labels {
            cluster.must(
                1,
                &["node", "update", "--label-add", label, &cluster.node(i)],
            );
        }
    }
    let ha = Stack::deploy(&cluster, "ha", &["docker/stack.ha.yaml"], &image, &zk_image);
    let zks: Vec<Task> = (1..=3).map(|i| ha.one(&format!("zookeeper-{i}"))).collect();
    for (i, zk) in zks.iter().enumerate() {
        assert_eq!(
            zk.node,
            i + 1,
            "zookeeper-{} runs on its labelled host",
            i + 1
        );
        let (_, myid, _) = ha.exec(zk, &["cat", "/var/lib/zookeeper/myid"]);
        assert_eq!(
            myid.trim(),
            (i + 1).to_string(),
            "myid of zookeeper-{}",
            i + 1
        );
    }
    wait_quorum(
        &ha,
        &zks.iter().collect::<Vec<_>>(),
        &["follower", "follower", "leader"],
        "a ZooKeeper quorum: one leader, two followers",
    );
    let masters = [ha.one("spark-master-1"), ha.one("spark-master-2")];
    assert_ne!(
        masters[0].node, masters[1].node,
        "the masters run on two hosts: {masters:?}"
    );
    assert!(
        masters.iter().all(|m| m.node != 1),
        "no master on the manager: {masters:?}"
    );
    let (active, standby) = wait_for(
        "one master ALIVE, the other STANDBY",
        Duration::from_secs(600),
        || {
            let states = masters
                .iter()
                .map(|m| {
                    ha.master_json(m)
                        .map(|j| j["status"].as_str().unwrap_or("").to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            match (states[0].as_str(), states[1].as_str()) {
                ("ALIVE", "STANDBY") => Ok((masters[0].clone(), masters[1].clone())),
                ("STANDBY", "ALIVE") => Ok((masters[1].clone(), masters[0].clone())),
                _ => Err(format!("{states:?}")),
            }
        },
    );
    let ha_services = [
        "zookeeper-1",
        "zookeeper-2",
        "zookeeper-3",
        "spark-master-1",
        "spark-master-2",
        "spark-worker",
        "notebook",
    ];
    let workers = ha.wait_workers(&active, &["spark-worker"], 2);
    let worker_hosts: BTreeSet<usize> = workers.iter().map(|t| t.node).collect();
    assert_eq!(
        worker_hosts.len(),
        2,
        "the workers run on two hosts: {workers:?}"
    );
    node_views(&ha, &ha_services, "HA stack up");

    // Kill a ZooKeeper follower that holds neither the active master's session: the ensemble
    // keeps its quorum and nothing restarts. (Losing the server that holds the leader's session,
    // or the ZooKeeper leader, suspends that session, and Spark's master then gives up leadership:
    // docs/cluster.md.)
    let active_ip = ha.address(&active).unwrap();
    let victim = zks
        .iter()
        .find(|zk| {
            zk_mode(&ha, zk).as_deref() == Ok("follower")
                && !zk_word(&ha, zk, "cons")
                    .unwrap_or_default()
                    .contains(&format!("/{active_ip}:"))
        })
        .expect("a follower without the active master's session")
        .clone();
    let before: Vec<(Task, Vec<(String, u64)>)> =
        ["spark-master-1", "spark-master-2", "spark-worker"]
            .iter()
            .flat_map(|s| ha.tasks(s))
            .map(|t| {
                let r = restarts(&ha, &t);
                (t, r)
            })
            .collect();
    println!(
        "multihost: killing ZooKeeper follower {} on node {} (the active master's session is \
         elsewhere)",
        victim.container, victim.node
    );
    cluster.must(victim.node, &["kill", &victim.container]);
    let rest: Vec<&Task> = zks.iter().filter(|zk| **zk != victim).collect();
    wait_quorum(
        &ha,
        &rest,
        &["follower", "leader"],
        "the two other servers keep a quorum",
    );
    // Swarm starts the killed server again; the ensemble is whole once it follows.
    let back = wait_for(
        "the killed server replaced",
        Duration::from_secs(300),
        || {
            let name = zks.iter().position(|z| *z == victim).unwrap() + 1;
            match ha.tasks(&format!("zookeeper-{name}")).as_slice() {
                [t] if *t != victim => zk_mode(&ha, t).map(|m| (t.clone(), m)),
                other => Err(format!("{other:?}")),
            }
        },
    );
    assert_eq!(
        back.1, "follower",
        "the restarted server rejoins as a follower"
    );
    let after: Vec<(Task, Vec<(String, u64)>)> = before
        .iter()
        .map(|(t, _)| (t.clone(), restarts(&ha, t)))
        .collect();
    assert_eq!(
        before, after,
        "no Spark task replaced and no service restarted"
    );
    assert_eq!(
        ha.master_json(&active).unwrap()["status"],
        "ALIVE",
        "the active master kept its leadership"
    );
    node_views(&ha, &ha_services, "one ZooKeeper server killed");

    // Kill the active master's host mid-job: the standby takes over, the workers re-register,
    // the job's sums are exact.
    let notebook = ha.one("notebook");
    ha.install_job(&notebook);
    let url = "spark://spark-master-1:7077,spark-master-2:7077";
    let job = ha.start_job(&notebook, url, "master-host-lost");
    wait_for(
        "the job's executors running",
        Duration::from_secs(300),
        || {
            let running: usize = ha
                .tasks("spark-worker")
                .iter()
                .map(|w| executors(&ha, w))
                .sum();
            (running > 0)
                .then_some(())
                .ok_or_else(|| "none".to_string())
        },
    );
    // Whether the lost host also takes the ZooKeeper leader: then the ensemble elects a new one
    // first, and the dead master's session runs its full timeout again under the new leader.
    let zk_leader_lost = zks
        .iter()
        .any(|zk| zk.node == active.node && zk_mode(&ha, zk).as_deref() == Ok("leader"));
    let killed = Instant::now();
    cluster.kill(active.node);
    let survivors: Vec<Task> = workers
        .iter()
        .filter(|w| w.node != active.node)
        .cloned()
        .collect();
    // Elected (its status leaves STANDBY: the dead leader's ZooKeeper session expired), then
    // ALIVE once its recovery completes: every stored worker and application answered, or the
    // worker timeout passed for those that cannot (the ones on the lost host).
    let mut elected = None;
    wait_for("the standby ALIVE", Duration::from_secs(300), || {
        let json = ha.master_json(&standby)?;
        if elected.is_none() && json["status"] != "STANDBY" {
            elected = Some(killed.elapsed());
        }
        (json["status"] == "ALIVE")
            .then_some(())
            .ok_or_else(|| format!("{}", json["status"]))
    });
    let failover = killed.elapsed();
    let mut want: Vec<String> = survivors
        .iter()
        .map(|w| ha.advertised(w).unwrap())
        .collect();
    want.sort();
    wait_for(
        "the surviving workers registered with the new leader",
        Duration::from_secs(300),
        || {
            let json = ha.master_json(&standby)?;
            let alive: BTreeSet<String> = alive_workers(&json)
                .iter()
                .map(|w| w["host"].as_str().unwrap_or_default().to_string())
                .collect();
            want.iter()
                .all(|w| alive.contains(w))
                .then_some(())
                .ok_or_else(|| format!("ALIVE {alive:?}, want {want:?}"))
        },
    );
    let reregistered = killed.elapsed();
    let took = finish_job(job, "active master's host lost mid-job");
    println!(
        "multihost: active master's host killed mid-job: the standby elected after {} (bound: \
         ZooKeeper session timeout 30 s, the role's maxSessionTimeout under Spark's 60 s{}), \
         ALIVE after {} (recovery: at most spark.worker.timeout 10 s more), the surviving \
         workers registered with it after {}; the job took {}",
        elected.map_or("?".into(), secs),
        if zk_leader_lost {
            ", plus an election: the host also ran the ZooKeeper leader"
        } else {
            ""
        },
        secs(failover),
        secs(reregistered),
        secs(took)
    );
    cluster.start(active.node);
    wait_for(
        "the master's host Ready again",
        Duration::from_secs(120),
        || {
            cluster
                .nodes_in_state("Ready")
                .contains(&active.node)
                .then_some(())
                .ok_or_else(|| "not Ready".to_string())
        },
    );
    // Its ZooKeeper server (pinned there) starts again and rejoins the ensemble.
    let zk_back = format!("zookeeper-{}", active.node);
    wait_for(
        "the returned host's ZooKeeper server back in the ensemble",
        Duration::from_secs(300),
        || match ha.tasks(&zk_back).as_slice() {
            [t] if t.node == active.node => zk_mode(&ha, t).and_then(|m| {
                ["leader", "follower"]
                    .contains(&m.as_str())
                    .then_some(())
                    .ok_or(m)
            }),
            other => Err(format!("{other:?}")),
        },
    );
    node_views(
        &ha,
        &ha_services,
        "the active master's host killed and back",
    );
}

/// Where scripts/lib/prereqs.sh installs Compose v2 for the tests: a Docker config directory whose
/// `cli-plugins` holds Debian's docker-compose 2.x, used only when a test names it.
fn compose_v2_config() -> PathBuf {
    repo().join("target/compose-v2")
}

/// `docker/compose.yaml` deploys unchanged with Compose v1 (`docker-compose --compatibility`) and
/// Compose v2 (`docker compose`): the master and the smaller worker, the worker ALIVE with the
/// memory its agent sized from the file's `deploy` limits. The multi-host and HA stack files load
/// in both too.
#[test]
fn compose_v1_and_v2_deploy_the_same_files() {
    if !prerequisites("multihost") {
        return;
    }
    let v2_ready = Command::new("docker")
        .args(["compose", "version"])
        .env("DOCKER_CONFIG", compose_v2_config())
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("version 2.")
        });
    let v1_ready = common::has_command("docker-compose");
    if !common::require(
        v1_ready && v2_ready,
        "multihost: needs docker-compose (v1) and Compose v2 in target/compose-v2 (scripts/test installs both)",
    ) {
        return;
    }
    let image = image();
    let v1 = |args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.arg("--compatibility").args(args);
        c
    };
    let v2 = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", compose_v2_config())
            .arg("compose")
            .args(args);
        c
    };
    for (what, compose) in [
        ("Compose v1", &v1 as &dyn Fn(&[&str]) -> Command),
        ("Compose v2", &v2),
    ] {
        for files in [
            &["docker/compose.yaml"][..],
            &["docker/compose.yaml", "docker/compose.hosts.yaml"][..],
            &["docker/compose.ha.yaml"][..],
            &["docker/stack.ha.yaml"][..],
        ] {
            let mut args = vec![];
            for f in files {
                args.extend(["-f", f]);
            }
            args.extend(["config", "-q"]);
            let out = run(compose(&args).current_dir(repo()));
            assert!(
                out.status.success(),
                "{what} loads {files:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let project = unique("cv");
        let file = repo().join("docker/compose.yaml");
        let file = file.to_str().unwrap();
        let up = |args: &[&str]| {
            let mut all = vec!["-p", project.as_str(), "-f", file];
            all.extend_from_slice(args);
            let out = run(compose(&all)
                .env("SPARKVISOR_IMAGE", &image)
                .env("SPARK_MASTER_UI_PORT", "0")
                .env("NOTEBOOK_PORT", "0")
                .env("SPARK_HISTORY_UI_PORT", "0"));
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        };
        struct Down<F: Fn(&[&str]) -> (bool, String)>(F);
        impl<F: Fn(&[&str]) -> (bool, String)> Drop for Down<F> {
            fn drop(&mut self) {
                let _ = (self.0)(&["down", "-v", "--remove-orphans", "-t", "5"]);
            }
        }
        let _down = Down(&up);
        let (ok, err) = up(&["up", "-d", "spark-master", "spark-worker-2"]);
        assert!(ok, "{what} up: {err}");
        let master = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--filter",
            "label=com.docker.compose.service=spark-master",
        ]);
        let ip = container_ip(&master);
        let json = wait_for(
            &format!("{what}: spark-worker-2 ALIVE"),
            Duration::from_secs(400),
            || {
                let json = http_json(&ip, 8080, "/json/")?;
                (alive_workers(&json).len() == 1)
                    .then_some(json.clone())
                    .ok_or_else(|| format!("{json}"))
            },
        );
        // 1 GiB limit -> 512 MiB for executors (docs/sizing.md): the deploy limit reached the worker.
        assert_eq!(
            alive_workers(&json)[0]["memory"],
            512,
            "{what}: the worker sized from the file's limits: {json}"
        );
        println!("multihost: {what} deployed docker/compose.yaml: worker ALIVE with 512 MiB");
    }
}

/// A run that dies midway leaves nothing behind: the cluster belongs to a process that is killed
/// with SIGKILL while a node holds a container and another node has been killed (its containers'
/// cgroups left on the host); the guard then removes every node, volume, network and cgroup.
#[test]
fn a_killed_run_leaves_no_node_volume_network_or_cgroup() {
    if !prerequisites("multihost") {
        return;
    }
    let _ = image(); // the base image the node image is built on
    let name = unique("mk");
    let script = repo().join("tests/multinode/cluster.sh");
    let mut guard = Command::new(&script)
        .args(["guard", &name])
        .stdin(Stdio::piped())
        .spawn()
        .expect("cluster.sh guard");
    // The owner holds the only write end of the guard's stdin, as a test process does.
    let mut owner = Command::new("sleep")
        .arg("3600")
        .stdout(Stdio::from(guard.stdin.take().unwrap()))
        .spawn()
        .expect("sleep");
    let status = Command::new(&script)
        .args(["up", &name])
        .env("MULTINODE_OWNER", owner.id().to_string())
        .status()
        .expect("cluster.sh up");
    assert!(status.success(), "cluster.sh up: {status}");
    let node = |i: usize| format!("{name}-n{i}");
    // A container in node 2 (a rootfs of one binary, no image to copy), then node 2's host lost.
    let (code, _, err) = exec(
        &node(2),
        &[
            "sh",
            "-c",
            "tar -ch -C / usr/bin/sleep lib64/ld-linux-x86-64.so.2 lib/x86_64-linux-gnu/libc.so.6 \
             | docker import - tiny && docker run -d tiny /usr/bin/sleep 3600",
        ],
    );
    assert_eq!(code, 0, "a container in node 2: {err}");
    docker(&["kill", &node(2)]);
    let cgroups = || -> Vec<String> {
        let mut found = vec![];
        for dir in [
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/pids",
        ] {
            for i in 1..=NODES {
                let path = format!("{dir}/{}", node(i));
                if std::path::Path::new(&path).exists() {
                    found.push(path);
                }
            }
        }
        found
    };
    assert!(
        cgroups().iter().any(|c| c.ends_with("-n2")),
        "the killed node left its containers' cgroups on the host"
    );
    owner.kill().expect("SIGKILL the owner");
    owner.wait().expect("owner");
    let status = guard.wait().expect("guard");
    assert!(status.success(), "the guard's teardown: {status}");
    let label = format!("label=sparkvisor.multinode={name}");
    assert_eq!(docker(&["ps", "-aq", "--filter", &label]), "", "nodes left");
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &label]),
        "",
        "volumes left"
    );
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", &label]),
        "",
        "networks left"
    );
    assert_eq!(cgroups(), Vec::<String>::new(), "cgroups left");
}
