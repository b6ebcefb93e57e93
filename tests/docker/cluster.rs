#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The main job, for real: the sparkvisor Spark image forming a standalone cluster under Docker
//! Compose (docker/compose.yaml), running PySpark, surviving a worker JVM crash, a master restart and
//! `docker stop`; least privilege inside the containers; a broken injected config exiting 78; the
//! HEALTHCHECK turning healthy. Needs root and Docker (CI=true: mandatory). One image build per run.

use crate::docker_support;

use std::time::{Duration, Instant};

use docker_support::*;
use serde_json::Value;

/// Container limits in docker/compose.yaml (deploy.resources.limits).
const WORKERS: [(&str, f64, u64); 2] = [
    ("spark-worker-1", 1.5, 2 << 30),
    ("spark-worker-2", 1.0, 1 << 30),
];
/// The stop grace we give Docker in the test (`docker stop -t`), equal to the compose file's
/// stop_grace_period: the agent must finish well within it.
const STOP_GRACE: Duration = Duration::from_secs(20);
const MASTER_UI: u16 = 8080;

/// Exit code of the agent after `docker stop` with every service stopped cleanly (README "Exit codes").
const EXIT_AFTER_DOCKER_STOP: i32 = 0;

fn wait_alive_workers(master_ip: &str, n: usize, timeout: Duration) -> Value {
    wait_for(
        &format!("{n} ALIVE workers in master /json/"),
        timeout,
        || {
            let json = master_json(master_ip, MASTER_UI)?;
            let alive = alive_workers(&json);
            if alive.len() == n {
                Ok(json)
            } else {
                Err(format!("{} alive: {json}", alive.len()))
            }
        },
    )
}

/// The master's entry for the worker in `container` (matched by its hostname or IP).
fn worker_entry(master: &Value, hostname: &str, ip: &str) -> Option<Value> {
    alive_workers(master).into_iter().find(|w| {
        let host = w["host"].as_str().unwrap_or_default();
        let ui = w["webuiaddress"].as_str().unwrap_or_default();
        host == hostname
            || host == ip
            || ui.contains(&format!("//{hostname}:"))
            || ui.contains(&format!("//{ip}:"))
    })
}

fn sizing_value(status: &Value, key: &str) -> u64 {
    status["sizing"][key]["value"]
        .as_u64()
        .unwrap_or_else(|| panic!("sizing.{key}.value missing in status: {}", status["sizing"]))
}

#[test]
fn cluster_forms_runs_jobs_and_recovers() {
    if !prerequisites("cluster_forms_runs_jobs_and_recovers") {
        return;
    }
    let image = image();
    let project = Project::up("cluster", &image);
    let master = project.container("spark-master");
    let master_ip = container_ip(&master);

    // 1. Formation: both workers ALIVE, advertising what sparkvisor derived from their limits.
    let json = wait_alive_workers(&master_ip, 2, Duration::from_secs(240));
    assert_eq!(json["status"], "ALIVE", "master status: {json}");
    for (service_name, cpus, memory) in WORKERS {
        let worker = project.container(service_name);
        let status = wait_for("worker agent status", Duration::from_secs(30), || {
            agent_status(&worker)
        });
        // The agent read the container's real limits (cgroup v1 on this host).
        let quota = status["resources"]["cpu_quota"].as_f64();
        assert_eq!(
            quota,
            Some(cpus),
            "{service_name}: resources {}",
            status["resources"]
        );
        assert_eq!(
            status["resources"]["memory_limit"].as_u64(),
            Some(memory),
            "{service_name}: resources {}",
            status["resources"]
        );
        let cores = sizing_value(&status, "worker_cores");
        let memory_mb = sizing_value(&status, "worker_memory_mb");
        assert!(
            cores >= 1 && cores as f64 <= cpus.ceil(),
            "{service_name}: {cores} cores for a {cpus}-CPU limit"
        );
        assert!(
            memory_mb > 0 && memory_mb < memory >> 20,
            "{service_name}: worker memory {memory_mb} MiB must stay under the {} MiB limit",
            memory >> 20
        );
        let entry = worker_entry(&json, service_name, &container_ip(&worker))
            .unwrap_or_else(|| panic!("{service_name} not ALIVE in master /json/: {json}"));
        assert_eq!(
            entry["cores"].as_u64(),
            Some(cores),
            "{service_name}: {entry}"
        );
        assert_eq!(
            entry["memory"].as_u64(),
            Some(memory_mb),
            "{service_name}: {entry}"
        );
    }
    let total_cores: u64 = alive_workers(&json)
        .iter()
        .map(|w| w["cores"].as_u64().unwrap())
        .sum();
    assert_eq!(
        json["cores"].as_u64(),
        Some(total_cores),
        "master totals: {json}"
    );

    // Start order across containers (docs/ha.md): each worker's agent waited until the master was
    // ALIVE, so no worker started before the master listened ("Failed to connect to master" and
    // Spark's 5-15 s registration retry). ("Retrying connection" alone can still appear on a machine
    // so loaded that the master takes longer than the retry interval to answer; not asserted.)
    for (service_name, _, _) in WORKERS {
        let id = project.container(service_name);
        let out = run(std::process::Command::new("docker").args(["logs", &id]));
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            logs.contains("spark-worker: http://spark-master:8080/json/ answers after"),
            "{service_name}: the agent did not wait for the master:\n{logs}"
        );
        assert!(
            !logs.contains("Failed to connect to master"),
            "{service_name}: the worker started before the master listened:\n{logs}"
        );
    }

    // 2. Least privilege: services run as spark with no capabilities and NoNewPrivs; the agent's
    //    bounding set is smaller than Docker's default one.
    let worker1 = project.container("spark-worker-1");
    check_privileges(&worker1, "org.apache.spark.deploy.worker.Worker");
    check_privileges(&master, "org.apache.spark.deploy.master.Master");

    // 2b. Compose --scale (docs/swarm.md): a second spark-worker-2 replica has the service's
    //     name like the first, so each advertises its own project-network address; all three
    //     workers are ALIVE under three distinct addresses and the pi job below runs on them.
    scale(&project, "spark-worker-2", 2);
    let replicas = service_containers(&project, "spark-worker-2");
    assert_eq!(replicas.len(), 2, "spark-worker-2 replicas: {replicas:?}");
    let mut want: Vec<String> = replicas
        .iter()
        .chain([&worker1])
        .map(|c| container_ip(c))
        .collect();
    want.sort();
    let scaled = wait_for(
        "3 ALIVE workers, one per container address",
        Duration::from_secs(240),
        || {
            let json = master_json(&master_ip, MASTER_UI)?;
            let mut hosts: Vec<String> = alive_workers(&json)
                .iter()
                .map(|w| w["host"].as_str().unwrap_or_default().to_string())
                .collect();
            hosts.sort();
            if hosts == want {
                Ok(json)
            } else {
                Err(format!("ALIVE {hosts:?}, containers {want:?}"))
            }
        },
    );
    assert_eq!(alive_workers(&scaled).len(), 3, "{scaled}");

    // 3. The notebook answers and is wired to the master; a PySpark job run with the notebook's
    //    own environment completes on the cluster.
    let notebook = project.container("notebook");
    let notebook_ip = container_ip(&notebook);
    let api = wait_for("Jupyter /api", Duration::from_secs(180), || {
        http_json(&notebook_ip, 8888, "/api")
    });
    assert!(api["version"].is_string(), "Jupyter /api: {api}");
    let jupyter = wait_for("jupyter process", Duration::from_secs(10), || {
        pids_matching(&notebook, "jupyter-notebook|jupyter notebook")
            .into_iter()
            .next()
            .ok_or_else(|| "no jupyter process".to_string())
    });
    // As the service's own user: root in the container lacks CAP_SYS_PTRACE, which reading another
    // user's environ needs.
    let environ = docker(&[
        "exec",
        "-u",
        "spark",
        &notebook,
        "cat",
        &format!("/proc/{jupyter}/environ"),
    ]);
    let env: Vec<&str> = environ.split('\0').collect();
    assert!(
        env.iter()
            .any(|e| e.starts_with("PYSPARK_SUBMIT_ARGS=")
                && e.contains("spark://spark-master:7077")),
        "the notebook's kernels are not pointed at the master: {env:?}"
    );
    run_pi_job(&notebook, &env, &master_ip);

    // 3b. Event logging is on for the whole cluster (SPARK_EVENT_LOG_ENABLED on every node): the
    //     compose file's history server lists the finished pi job.
    let history_ip = container_ip(&project.container("spark-history"));
    wait_for(
        "the pi job in the history server",
        Duration::from_secs(180),
        || {
            let apps = http_json(&history_ip, 18080, "/api/v1/applications")?;
            let listed = apps.as_array().into_iter().flatten().any(|a| {
                a["name"] == "sparkvisor-pi-test" && a["attempts"][0]["completed"] == true
            });
            if listed {
                Ok(())
            } else {
                Err(format!("{apps}"))
            }
        },
    );

    // 3c. Scale back down: the extra replica stops (decommissioned by its agent) and the master
    //     keeps exactly the two original workers ALIVE.
    scale(&project, "spark-worker-2", 1);
    assert_eq!(service_containers(&project, "spark-worker-2").len(), 1);
    wait_alive_workers(&master_ip, 2, Duration::from_secs(120));

    // 4. kill -9 of the worker JVM: sparkvisor restarts it, it registers again, the restart counts.
    let before = agent_status(&worker1).unwrap();
    let svc = service(&before, "spark-worker")
        .expect("spark-worker in status")
        .clone();
    let old_pid = pids_matching(&worker1, "org.apache.spark.deploy.worker.Worker");
    assert_eq!(old_pid.len(), 1, "one worker JVM: {old_pid:?}");
    let (code, _, err) = exec(&worker1, &["kill", "-9", &old_pid[0].to_string()]);
    assert_eq!(code, 0, "kill -9: {err}");
    let after = wait_for(
        "worker JVM restarted by sparkvisor",
        Duration::from_secs(60),
        || {
            let status = agent_status(&worker1)?;
            let s = service(&status, "spark-worker")
                .ok_or("no spark-worker")?
                .clone();
            let pids = pids_matching(&worker1, "org.apache.spark.deploy.worker.Worker");
            if s["restarts"].as_u64() > svc["restarts"].as_u64()
                && pids.len() == 1
                && pids[0] != old_pid[0]
            {
                Ok(s)
            } else {
                Err(format!("status {s}, JVMs {pids:?}"))
            }
        },
    );
    assert_eq!(
        after["last_exit"]["signal"].as_i64(),
        Some(9),
        "last exit: {after}"
    );
    wait_alive_workers(&master_ip, 2, Duration::from_secs(120));

    // 5. Master container restarted while an application runs: FILESYSTEM recovery on the /data
    //    volume (docs/ha.md) gives the new master its workers and the application back, and the
    //    application goes on to its exact result.
    let mut app = RunningApp::start(&worker1);
    wait_for(
        "the application in the master",
        Duration::from_secs(120),
        || {
            let json = master_json(&master_ip, MASTER_UI)?;
            active_app(&json, &app.id)
                .map(drop)
                .ok_or(format!("{} not in activeapps: {json}", app.id))
        },
    );
    let t = Instant::now();
    docker(&["restart", "-t", "20", &master]);
    assert!(
        t.elapsed() < STOP_GRACE,
        "master restart needed Docker's SIGKILL: {:?}",
        t.elapsed()
    );
    let master_ip = container_ip(&master);
    wait_alive_workers(&master_ip, 2, Duration::from_secs(180));
    let out = run(std::process::Command::new("docker").args(["logs", &master]));
    let master_logs = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        master_logs.contains("Recovery complete"),
        "the restarted master did not recover from /data:\n{master_logs}"
    );
    // The new master knows the application it never saw start, and it is running again.
    wait_for(
        "the application recovered by the new master",
        Duration::from_secs(180),
        || {
            let json = master_json(&master_ip, MASTER_UI)?;
            match active_app(&json, &app.id) {
                Some(a) if a["state"] == "RUNNING" => Ok(()),
                other => Err(format!("{}: {other:?} in {json}", app.id)),
            }
        },
    );
    let sum = app.finish(&worker1);
    assert_eq!(sum, Some(APP_SUM), "the recovered application's result");
    wait_for(
        "the recovered application completed in the master",
        Duration::from_secs(120),
        || {
            let json = master_json(&master_ip, MASTER_UI)?;
            let done = json["completedapps"]
                .as_array()
                .is_some_and(|apps| apps.iter().any(|a| a["id"] == app.id.as_str()));
            done.then_some(()).ok_or(format!("{json}"))
        },
    );

    // 6. docker stop of a worker: the agent stops the JVM itself, well within the grace.
    let worker2 = project.container("spark-worker-2");
    assert_eq!(
        pids_matching(&worker2, "org.apache.spark.deploy.worker.Worker").len(),
        1
    );
    let t = Instant::now();
    docker(&["stop", "-t", &STOP_GRACE.as_secs().to_string(), &worker2]);
    let took = t.elapsed();
    let exit = docker(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}} {{.State.OOMKilled}}",
        &worker2,
    ]);
    assert!(
        took < STOP_GRACE - Duration::from_secs(5),
        "docker stop took {took:?}: Docker had to kill the agent"
    );
    assert_eq!(
        exit,
        format!("{EXIT_AFTER_DOCKER_STOP} false"),
        "exit code after docker stop"
    );
    // The agent, not Docker, ended the JVM: it logged the shutdown, the worker's end, and no SIGKILL.
    let logs = docker_logs(&worker2);
    let shutdown = logs
        .find("stopping every service")
        .unwrap_or_else(|| panic!("no shutdown in the agent's log:\n{logs}"));
    let after = &logs[shutdown..];
    assert!(
        after
            .lines()
            .any(|l| l.contains("spark-worker: pid") && l.contains("ended")),
        "the agent did not see the worker JVM end:\n{after}"
    );
    assert!(
        !after.contains("SIGKILL"),
        "a service needed SIGKILL:\n{after}"
    );
}

/// `up -d --scale SERVICE=N SERVICE`: the other services are left as they are.
fn scale(project: &Project, service: &str, n: usize) {
    let out = run(project.compose().args([
        "up",
        "-d",
        "--no-build",
        "--no-recreate",
        "--scale",
        &format!("{service}={n}"),
        service,
    ]));
    assert!(
        out.status.success(),
        "compose up --scale {service}={n}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The running containers of a compose service (several once scaled).
fn service_containers(project: &Project, service: &str) -> Vec<String> {
    let out = run(project.compose().args(["ps", "-q", service]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The sum the recovery application computes (squares of 1..=100000).
const APP_SUM: u64 = 100_000 * 100_001 * 200_001 / 6;

/// A PySpark application that registers, says its id, then waits for a marker file before it
/// computes [`APP_SUM`]: it is running (with executors) while the master restarts.
const APP: &str = r#"
import os, time
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("sparkvisor-recovery-test")
         .config("spark.executor.memory", "480m").getOrCreate())
sc = spark.sparkContext
print("APP", sc.applicationId, flush=True)
while not os.path.exists("/tmp/sparkvisor-recovery-go"):
    time.sleep(0.2)
print("SUM", sc.parallelize(range(1, 100001), 4).map(lambda x: x * x).sum(), flush=True)
spark.stop()
"#;

/// The application of [`APP`], its driver run by `docker exec` in a worker container.
struct RunningApp {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    id: String,
}

impl RunningApp {
    fn start(container: &str) -> RunningApp {
        use std::io::BufRead;
        let mut child = std::process::Command::new("docker")
            .args([
                "exec", "-u", "spark", "-w", "/tmp", container, "python3", "-c", APP,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let id = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("APP ").map(str::to_string))
            .unwrap_or_else(|| panic!("the recovery application did not start"));
        RunningApp { child, lines, id }
    }

    /// Lets the application compute; returns its SUM once it has ended.
    fn finish(&mut self, container: &str) -> Option<u64> {
        docker(&[
            "exec",
            "-u",
            "spark",
            container,
            "touch",
            "/tmp/sparkvisor-recovery-go",
        ]);
        let sum = self
            .lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("SUM ").and_then(|v| v.parse().ok()));
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the recovery application failed: {status}"
        );
        sum
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The master's `activeapps` entry of application `id`.
fn active_app(master: &Value, id: &str) -> Option<Value> {
    master["activeapps"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
}

fn docker_logs(container: &str) -> String {
    let out = run(std::process::Command::new("docker").args(["logs", "--tail", "60", container]));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Docker's default bounding set for containers (no --cap-add/--cap-drop).
const DOCKER_DEFAULT_CAPS: u64 = 0x0000_0000_a804_25fb;
const CAP_NET_RAW: u64 = 1 << 13;
const CAP_MKNOD: u64 = 1 << 27;

fn check_privileges(container: &str, java_class: &str) {
    let pids = pids_matching(container, java_class);
    assert_eq!(pids.len(), 1, "{container}: one {java_class} JVM: {pids:?}");
    let st = proc_status_in(container, pids[0]);
    assert_eq!(
        proc_field(&st, "Uid"),
        "185\t185\t185\t185",
        "{java_class} uid"
    );
    assert_eq!(
        proc_field(&st, "Gid"),
        "185\t185\t185\t185",
        "{java_class} gid"
    );
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(
            proc_field(&st, cap),
            "0000000000000000",
            "{java_class} {cap}"
        );
    }
    assert_eq!(
        proc_field(&st, "NoNewPrivs"),
        "1",
        "{java_class} NoNewPrivs"
    );
    let agent = proc_status_in(container, 1);
    assert!(
        proc_field(&agent, "Name").starts_with("sparkvisor"),
        "PID 1 is {agent:?}"
    );
    let bnd = u64::from_str_radix(&proc_field(&agent, "CapBnd"), 16).unwrap();
    assert_eq!(
        bnd & !DOCKER_DEFAULT_CAPS,
        0,
        "agent bounding set {bnd:x} beyond Docker's"
    );
    assert_ne!(
        bnd, DOCKER_DEFAULT_CAPS,
        "agent did not reduce its bounding set"
    );
    assert_eq!(
        bnd & (CAP_NET_RAW | CAP_MKNOD),
        0,
        "agent keeps NET_RAW/MKNOD: {bnd:x}"
    );
}

const PI_JOB: &str = r#"
import random
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("sparkvisor-pi-test").getOrCreate()
n = 200000
inside = spark.sparkContext.parallelize(range(n), 4).filter(
    lambda _: random.random() ** 2 + random.random() ** 2 <= 1).count()
print("MASTER", spark.sparkContext.master)
print("PI", 4.0 * inside / n)
spark.stop()
"#;

/// Runs the pi job in the notebook container as `spark`, with the environment the notebook server
/// got from sparkvisor (so the job goes where a notebook kernel's would).
fn run_pi_job(notebook: &str, env: &[&str], master_ip: &str) {
    let mut args: Vec<String> = vec![
        "exec".into(),
        "-u".into(),
        "spark".into(),
        "-w".into(),
        "/tmp".into(),
    ];
    for e in env.iter().filter(|e| {
        [
            "PYSPARK_SUBMIT_ARGS=",
            "SPARK_CONF_DIR=",
            "SPARK_HOME=",
            "PYSPARK_PYTHON=",
            "JAVA_HOME=",
        ]
        .iter()
        .any(|p| e.starts_with(p))
    }) {
        args.push("-e".into());
        args.push((*e).to_string());
    }
    args.extend([
        notebook.to_string(),
        "python3".into(),
        "-c".into(),
        PI_JOB.into(),
    ]);
    let out = run(std::process::Command::new("docker").args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pi job failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("MASTER spark://spark-master:7077"),
        "job master: {stdout}"
    );
    let pi: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PI "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no PI line: {stdout}"));
    assert!((pi - std::f64::consts::PI).abs() < 0.05, "pi = {pi}");
    let json = master_json(master_ip, MASTER_UI).unwrap();
    let done = json["completedapps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        done.iter()
            .any(|a| a["name"] == "sparkvisor-pi-test" && a["cores"].as_u64() > Some(0)),
        "the job did not run on the cluster: completedapps {done:?}"
    );
}

#[test]
fn broken_injected_config_exits_78_with_the_error_in_docker_logs() {
    if !prerequisites("broken_injected_config_exits_78") {
        return;
    }
    let image = image();
    let file = temp_file(
        "cluster.yaml",
        "peers:\n  master: [spark-master]\nno_such_key: 1\n",
    );
    let mount = format!("{}:/etc/sparkvisor/cluster/cluster.yaml:ro", file.display());
    let c = Container::run(
        "badcfg",
        &[
            "-e",
            "SPARK_MODE=worker",
            "-e",
            "SPARKVISOR_CONFIG=/etc/sparkvisor/cluster/cluster.yaml",
            "-v",
            &mount,
        ],
        &image,
        &[],
    );
    let code = wait_for("container exit", Duration::from_secs(60), || {
        match c
            .inspect("{{.State.Running}} {{.State.ExitCode}}")
            .split_once(' ')
        {
            Some(("false", code)) => Ok(code.to_string()),
            other => Err(format!("{other:?}")),
        }
    });
    let logs = c.logs();
    assert_eq!(code, "78", "exit code; logs:\n{logs}");
    assert!(
        logs.contains("/etc/sparkvisor/cluster/cluster.yaml") && logs.contains("no_such_key"),
        "the error must name the file and the key:\n{logs}"
    );
    assert!(
        !logs.contains("org.apache.spark"),
        "nothing may start on a broken config:\n{logs}"
    );
}

#[test]
fn healthcheck_turns_healthy_on_a_good_config() {
    if !prerequisites("healthcheck_turns_healthy") {
        return;
    }
    let image = image();
    let c = Container::run(
        "health",
        &["--user", "root", "-e", "SPARK_MODE=master"],
        &image,
        &[],
    );
    let mut seen_starting = false;
    wait_for("HEALTHCHECK healthy", Duration::from_secs(180), || match c
        .inspect("{{.State.Health.Status}}")
        .as_str()
    {
        "healthy" => Ok(()),
        "starting" => {
            seen_starting = true;
            Err("starting".into())
        }
        other => Err(other.to_string()),
    });
    let (code, _, err) = exec(&c.name, &["sparkvisor", "health"]);
    assert_eq!(code, 0, "sparkvisor health: {err}");
    assert!(seen_starting || c.inspect("{{len .State.Health.Log}}") != "0");
    let ip = container_ip(&c.name);
    assert_eq!(master_json(&ip, MASTER_UI).unwrap()["status"], "ALIVE");
}

#[test]
fn compose_file_runs_unchanged_on_compose_and_swarm() {
    if !prerequisites("compose_file_runs_unchanged_on_compose_and_swarm") {
        return;
    }
    let file = repo().join("docker/compose.yaml");
    // Swarm's loader (docker stack deploy) accepts the file as is and keeps the limits.
    let out = run(std::process::Command::new("docker")
        .args(["stack", "config", "-c"])
        .arg(&file));
    assert!(
        out.status.success(),
        "docker stack config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let limits = &stack["services"]["spark-worker-1"]["deploy"]["resources"]["limits"];
    assert_eq!(limits["cpus"], "1.5", "{stack:?}");
    // Workers scale: no pinned hostname, each task advertises its own address (docs/swarm.md).
    for w in ["spark-worker-1", "spark-worker-2"] {
        assert!(stack["services"][w]["hostname"].is_null(), "{w}: {stack:?}");
        assert_eq!(
            stack["services"][w]["environment"]["SPARKVISOR_ADVERTISE"],
            "address"
        );
    }
    assert_eq!(
        stack["services"]["spark-worker-2"]["deploy"]["resources"]["limits"]["cpus"],
        "1"
    );
    // The master by DNS round robin, its UI port on the node (docs/swarm.md).
    let master = &stack["services"]["spark-master"];
    assert_eq!(master["deploy"]["endpoint_mode"], "dnsrr", "{master:?}");
    assert_eq!(master["ports"][0]["mode"], "host", "{master:?}");
    assert_eq!(master["ports"][0]["target"], 8080, "{master:?}");
    for s in [
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "notebook",
    ] {
        // Workers get room for a graceful decommission (docs/ha.md).
        let grace = if s.starts_with("spark-worker") {
            "30s"
        } else {
            "20s"
        };
        assert_eq!(stack["services"][s]["stop_grace_period"], grace, "{s}");
        assert!(stack["services"][s]["image"]
            .as_str()
            .unwrap()
            .contains("sparkvisor-spark"));
    }
    // Plain compose parses it too.
    let cmd = compose_command().unwrap();
    let out = run(std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg("-f")
        .arg(&file)
        .arg("config")
        .arg("-q"));
    assert!(
        out.status.success(),
        "compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
