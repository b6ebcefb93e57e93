#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A Spark cluster that survives its master (docs/ha.md): docker/compose.ha.yaml — a ZooKeeper
//! supervised by sparkvisor (the `zookeeper` role, Debian's package), two masters whose recovery mode
//! is derived from the injected `zookeeper` peers, two workers that know both masters. The standby
//! master is healthy; `docker kill` of the active one makes the standby take over, the workers
//! register with it and a job computes its exact result. Then graceful decommission: a job that is
//! running when one worker container gets `docker stop` completes with its exact result, the worker
//! having decommissioned (SIGPWR, executors drained) before it stopped. Needs root and Docker
//! (CI=true: mandatory).

use crate::docker_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use docker_support::*;
use serde_json::Value;

const MASTERS: [&str; 2] = ["spark-master-1", "spark-master-2"];

fn master_state(container: &str) -> Result<Value, String> {
    http_json(&container_ip(container), 8080, "/json/")
}

/// Waits until exactly one master is ALIVE with `workers` ALIVE workers (and the others, if
/// `standby`, are STANDBY); returns (active, others).
fn wait_leader(project: &Project, candidates: &[&str], workers: usize, standby: bool) -> String {
    wait_for(
        &format!("one ALIVE master of {candidates:?} with {workers} workers"),
        Duration::from_secs(300),
        || {
            let mut active = None;
            let mut seen = Vec::new();
            for m in candidates {
                let id = project.container(m);
                let json = master_state(&id)?;
                let status = json["status"].as_str().unwrap_or_default().to_string();
                seen.push(format!(
                    "{m}: {status}, {} alive",
                    alive_workers(&json).len()
                ));
                match status.as_str() {
                    "ALIVE" if alive_workers(&json).len() == workers => active = Some(id),
                    "STANDBY" if standby => {}
                    _ => return Err(seen.join("; ")),
                }
            }
            active.ok_or_else(|| seen.join("; "))
        },
    )
}

/// An exact job: the sum of squares of 1..=200000 over 8 partitions.
const JOB: &str = r#"
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("sparkvisor-ha-test")
         .config("spark.executor.memory", "480m").getOrCreate())
print("MASTER", spark.sparkContext.master)
print("SUM", spark.sparkContext.parallelize(range(1, 200001), 8).map(lambda x: x * x).sum())
spark.stop()
"#;
const EXPECTED_SUM: u64 = 200_000 * 200_001 * 400_001 / 6;

#[test]
fn a_standby_master_is_healthy_and_takes_over_when_the_active_one_dies() {
    if !prerequisites("a_standby_master_is_healthy_and_takes_over_when_the_active_one_dies") {
        return;
    }
    let image = image();
    let zk = zookeeper_image(&image);
    let project = Project::up_file(
        "ha",
        &image,
        "docker/compose.ha.yaml",
        &[("SPARKVISOR_ZK_IMAGE", zk.as_str())],
    );

    // ZooKeeper under sparkvisor: running as its package's user, ready.
    let zookeeper = project.container("zookeeper");
    wait_for("zookeeper ready", Duration::from_secs(180), || {
        let (code, out, err) = exec(&zookeeper, &["sparkvisor", "health"]);
        (code == 0).then_some(()).ok_or(format!("{out}{err}"))
    });
    let zk_pids = pids_matching(&zookeeper, "QuorumPeerMain");
    assert_eq!(zk_pids.len(), 1, "one ZooKeeper JVM: {zk_pids:?}");
    let uid = proc_field(&proc_status_in(&zookeeper, zk_pids[0]), "Uid");
    assert!(
        !uid.starts_with("0\t") && !uid.is_empty(),
        "ZooKeeper runs as root: Uid {uid}"
    );

    // One leader with both workers, one standby; the standby is healthy (ready = ALIVE or STANDBY).
    let active = wait_leader(&project, &MASTERS, 2, true);
    let standby_name = MASTERS
        .iter()
        .find(|m| project.container(m) != active)
        .copied()
        .unwrap();
    let standby = project.container(standby_name);
    let (code, out, err) = exec(&standby, &["sparkvisor", "health"]);
    assert_eq!(code, 0, "the standby master is not healthy: {out}{err}");
    let conf = exec(&standby, &["cat", "/opt/spark/conf/spark-defaults.conf"]).1;
    assert!(
        conf.contains("spark.deploy.recoveryMode ZOOKEEPER")
            && conf.contains("spark.deploy.zookeeper.url zookeeper\\:2181"),
        "recovery not derived from the zookeeper peers:\n{conf}"
    );

    // The active master dies: the standby takes over and the workers register with it.
    let t = Instant::now();
    docker(&["kill", &active]);
    let new_active = wait_leader(&project, &[standby_name], 2, false);
    assert_eq!(new_active, standby);
    eprintln!(
        "ha: {standby_name} took over with both workers {:.1} s after docker kill of the leader",
        t.elapsed().as_secs_f64()
    );

    // A job over both masters' URL runs on the new leader with the exact result.
    let worker = project.container("spark-worker-1");
    let out = run(Command::new("docker").args([
        "exec", "-u", "spark", "-w", "/tmp", &worker, "python3", "-c", JOB,
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "job failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("MASTER spark://spark-master-1:7077,spark-master-2:7077"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("SUM {EXPECTED_SUM}")),
        "wrong result (want {EXPECTED_SUM}): {stdout}"
    );

    a_running_job_survives_docker_stop_of_a_worker(&project);
}

/// A job with cached blocks and a shuffle on both workers, then a slow stage (the window for the
/// `docker stop`): the sum of squares of 1..=200000 again, through reduceByKey.
const LONG_JOB: &str = r#"
import time
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("sparkvisor-decommission-test")
         .config("spark.executor.memory", "480m").getOrCreate())
sc = spark.sparkContext
rdd = sc.parallelize(range(1, 200001), 16).map(lambda x: (x % 97, x * x)).cache()
rdd.count()
print("READY", flush=True)
def slow(part):
    time.sleep(2)
    return part
total = rdd.mapPartitions(slow).reduceByKey(lambda a, b: a + b).values().sum()
print("SUM", total, flush=True)
spark.stop()
"#;

/// The running executors a worker's `/json/` lists.
fn worker_executors(container: &str) -> usize {
    http_json(&container_ip(container), 8081, "/json/")
        .ok()
        .and_then(|j| j["executors"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Graceful decommission, on the HA cluster (any cluster with two workers would do).
fn a_running_job_survives_docker_stop_of_a_worker(project: &Project) {
    let driver_host = project.container("spark-worker-1");
    let victim = project.container("spark-worker-2");
    let mut job = Command::new("docker")
        .args([
            "exec",
            "-u",
            "spark",
            "-w",
            "/tmp",
            &driver_host,
            "python3",
            "-c",
            LONG_JOB,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a job that hangs (no master) is killed, and the assertions below report it.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (done, pid) = (std::sync::Arc::clone(&done), job.id().to_string());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(600);
            while Instant::now() < until && !done.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(500));
            }
            if !done.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = Command::new("kill").arg(&pid).status();
            }
        })
    };
    let mut lines = BufReader::new(job.stdout.take().unwrap()).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l == "READY");
    assert!(ready, "the job never got its blocks cached");
    wait_for(
        "an executor on the worker that will be stopped",
        Duration::from_secs(120),
        || {
            let n = worker_executors(&victim);
            (n > 0).then_some(()).ok_or(format!("{n} executors"))
        },
    );
    let t = Instant::now();
    docker(&["stop", "-t", "30", &victim]);
    let took = t.elapsed();
    let exit = docker(&["inspect", "--format", "{{.State.ExitCode}}", &victim]);
    let logs = {
        let out = run(Command::new("docker").args(["logs", &victim]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    eprintln!("decommission: docker stop of a busy worker took {took:?}, exit {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = job.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    let mut stderr = String::new();
    if let Some(mut e) = job.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(status.success(), "job failed: {rest:?}\n{stderr}");
    assert!(
        rest.contains(&format!("SUM {EXPECTED_SUM}")),
        "wrong result (want {EXPECTED_SUM}): {rest:?}"
    );
    assert!(
        logs.contains("Decommission worker"),
        "the worker did not decommission before it stopped:\n{logs}"
    );
    assert!(
        !logs.contains("still running after its grace"),
        "the worker needed SIGKILL:\n{logs}"
    );
    assert_eq!(
        exit, "0",
        "the agent's exit code after docker stop:\n{logs}"
    );
    eprintln!(
        "decommission: tasks lost in the driver's log: {}",
        stderr.matches("Lost task").count()
    );
}
