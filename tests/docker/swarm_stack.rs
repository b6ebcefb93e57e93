#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! docker/compose.yaml on a real single-node Swarm: `docker stack deploy`, both workers ALIVE and
//! sized from their own limits, a PySpark pi job, `docker service scale` of a worker service up to 3
//! replicas (each task advertises its own address, so all are ALIVE) and back down (the master
//! shows them gone), then the stack removed and the swarm left as it was found (docs/swarm.md).
//!
//! The engine is shared: the test refuses to run on an engine that is already in a swarm (it could
//! not leave it as found), and a guard removes the stack, its volume and the swarm even when an
//! assertion fails. Needs root and Docker (fails under CI=true when missing).

use crate::{common, docker_support};

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use docker_support::*;
use serde_json::Value;

/// A swarm this test created, with its stack: removed (stack, volume, swarm, the swarm's bridge
/// network) when dropped.
struct Swarm {
    stack: String,
    /// `docker swarm init` creates the `docker_gwbridge` network and `leave` keeps it: removed
    /// again when it did not exist before.
    gwbridge_existed: bool,
}

impl Swarm {
    fn init(stack: String) -> Swarm {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        assert_eq!(
            state, "inactive",
            "the engine is already in a swarm ({state}): this test only runs where it can leave \
             the engine as it found it"
        );
        // The address of the default route: an engine with several addresses needs one named.
        let addr = String::from_utf8_lossy(
            &run(Command::new("ip").args(["route", "get", "1.1.1.1"])).stdout,
        )
        .split_whitespace()
        .skip_while(|w| *w != "src")
        .nth(1)
        .unwrap_or("127.0.0.1")
        .to_string();
        let gwbridge_existed =
            run(Command::new("docker").args(["network", "inspect", "docker_gwbridge"]))
                .status
                .success();
        let swarm = Swarm {
            stack,
            gwbridge_existed,
        };
        docker(&["swarm", "init", "--advertise-addr", &addr]);
        swarm
    }

    fn service(&self, name: &str) -> String {
        format!("{}_{name}", self.stack)
    }

    /// Running task containers of a service.
    fn containers(&self, name: &str) -> Vec<String> {
        docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={}", self.service(name)),
            "--filter",
            "status=running",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }

    fn one(&self, name: &str) -> String {
        wait_for(
            &format!("a running task of {name}"),
            Duration::from_secs(180),
            || {
                self.containers(name)
                    .into_iter()
                    .next()
                    .ok_or_else(|| "none yet".to_string())
            },
        )
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        if std::thread::panicking() {
            for s in [
                "spark-master",
                "spark-worker-1",
                "spark-worker-2",
                "notebook",
            ] {
                let out = run(Command::new("docker").args([
                    "service",
                    "logs",
                    "--tail",
                    "40",
                    &self.service(s),
                ]));
                eprintln!(
                    "---- {s}:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        quiet(&["stack", "rm", &self.stack]);
        let label = format!("label=com.docker.stack.namespace={}", self.stack);
        let _ = common::poll(Duration::from_secs(120), Duration::from_millis(500), || {
            let out = run(Command::new("docker").args(["ps", "-aq", "--filter", &label]));
            out.stdout.is_empty().then_some(())
        });
        quiet(&["volume", "rm", &format!("{}_spark-data", self.stack)]);
        quiet(&["swarm", "leave", "--force"]);
        let _ = common::poll(Duration::from_secs(60), Duration::from_millis(500), || {
            let out =
                run(Command::new("docker").args(["info", "--format", "{{.Swarm.LocalNodeState}}"]));
            (String::from_utf8_lossy(&out.stdout).trim() == "inactive").then_some(())
        });
        if !self.gwbridge_existed {
            quiet(&["network", "rm", "docker_gwbridge"]);
        }
    }
}

/// The address a worker task advertises and its sizing, from its agent. A task that is starting or
/// stopping (scaling) is an error to retry, never a panic.
fn advertised(worker: &str) -> Result<(String, u64, u64), String> {
    let (code, out, err) = exec(worker, &["sparkvisor", "inspect", "--json"]);
    if code != 0 {
        return Err(format!("inspect in {worker}: {err}"));
    }
    let report: Value = serde_json::from_str(&out).map_err(|e| format!("inspect JSON: {e}"))?;
    let host = report["config"]["settings"]["spark.local_hostname"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let status = agent_status(worker)?;
    let value = |k: &str| status["sizing"][k]["value"].as_u64().unwrap_or_default();
    Ok((host, value("worker_cores"), value("worker_memory_mb")))
}

/// Waits until the ALIVE workers are exactly the tasks of the worker services: hosts, cores and
/// memory as each task's agent advertised and sized them.
fn wait_workers(swarm: &Swarm, master: &str, replicas: [usize; 2]) -> Vec<(String, u64, u64)> {
    wait_for(
        &format!("ALIVE workers = the tasks of the worker services {replicas:?}"),
        // On Swarm a worker only starts once the master is healthy (its name resolves from then
        // on): several minutes on a loaded 2-core host.
        Duration::from_secs(600),
        || {
            // One snapshot of the tasks: counts and the list must agree.
            let w1 = swarm.containers("spark-worker-1");
            let w2 = swarm.containers("spark-worker-2");
            let counts = [w1.len(), w2.len()];
            let tasks: Vec<String> = w1.into_iter().chain(w2).collect();
            if counts != replicas {
                return Err(format!("running tasks {counts:?}"));
            }
            let mut want = tasks
                .iter()
                .map(|t| advertised(t))
                .collect::<Result<Vec<_>, _>>()?;
            want.sort();
            let json = master_json_in(master)?;
            let mut alive: Vec<(String, u64, u64)> = alive_workers(&json)
                .iter()
                .map(|w| {
                    (
                        w["host"].as_str().unwrap_or_default().to_string(),
                        w["cores"].as_u64().unwrap_or_default(),
                        w["memory"].as_u64().unwrap_or_default(),
                    )
                })
                .collect();
            alive.sort();
            if alive == want {
                Ok(alive)
            } else {
                Err(format!("ALIVE {alive:?}, tasks {want:?}"))
            }
        },
    )
}

fn pi_job(notebook: &str) {
    let script = std::fs::read_to_string(repo().join("docker/examples/pi.py")).expect("pi.py");
    let mut child = Command::new("docker")
        .args([
            "exec", "-i", "-u", "spark", "-w", "/tmp", notebook, "sh", "-c",
            "cat > /tmp/swarm-pi.py && spark-submit --master spark://spark-master:7077 /tmp/swarm-pi.py 4",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker exec");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("pi.py to stdin");
    let out = child.wait_with_output().expect("pi job");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Pi is roughly 3.1"),
        "pi job: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stack_deploys_runs_a_job_and_scales_workers() {
    if !prerequisites("stack_deploys_runs_a_job_and_scales_workers") {
        return;
    }
    let image = image();
    let swarm = Swarm::init(format!("platforms{}", unique("stk")));
    // No registry: the single node runs the local image; --resolve-image never keeps Swarm from
    // asking a registry for a digest it cannot get.
    let out = run(Command::new("docker")
        .args(["stack", "deploy", "--resolve-image", "never", "-c"])
        .arg(repo().join("docker/compose.yaml"))
        .arg(&swarm.stack)
        .env("SPARKVISOR_IMAGE", &image)
        .env("SPARK_MASTER_UI_PORT", "0")
        .env("NOTEBOOK_PORT", "0"));
    assert!(
        out.status.success(),
        "docker stack deploy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let master = swarm.one("spark-master");
    let notebook = swarm.one("notebook");
    let two = wait_workers(&swarm, &master, [1, 1]);
    // Sized from each task's own limits: the 1.5-CPU/2 GiB worker gets more than the 1-CPU/1 GiB one.
    let sizes: std::collections::BTreeSet<(u64, u64)> =
        two.iter().map(|(_, c, m)| (*c, *m)).collect();
    assert!(
        sizes.len() == 2 && sizes.iter().all(|(c, m)| *c >= 1 && *m > 0),
        "{two:?}"
    );
    pi_job(&notebook);

    let worker2 = swarm.service("spark-worker-2");
    docker(&["service", "scale", "--detach", &format!("{worker2}=3")]);
    let four = wait_workers(&swarm, &master, [1, 3]);
    let hosts: std::collections::BTreeSet<&String> = four.iter().map(|(h, _, _)| h).collect();
    assert_eq!(
        hosts.len(),
        4,
        "every task advertises its own address: {four:?}"
    );

    docker(&["service", "scale", "--detach", &format!("{worker2}=1")]);
    wait_workers(&swarm, &master, [1, 1]);
    let json = master_json_in(&master).expect("master");
    assert_eq!(json["status"], "ALIVE");
    assert_eq!(alive_workers(&json).len(), 2, "{json}");
    pi_job(&notebook);

    // No task was killed for failing its healthcheck while it was still starting (the file's
    // start period covers a slow start; docs/swarm.md).
    for s in [
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "notebook",
        "spark-history",
    ] {
        let errors = docker(&[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Name}} {{.CurrentState}} {{.Error}}",
            &swarm.service(s),
        ]);
        assert!(
            !errors.contains("unhealthy"),
            "{s}: a task was replaced as unhealthy:\n{errors}"
        );
    }
}
