#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Spark services and settings in real containers of the sparkvisor image (issue 14), on one small
//! cluster (master, worker, history server, Spark Connect server, Thrift server) so the JVMs start
//! once: settings that must reach Spark (SPARK_DAEMON_JAVA_OPTS merged, foreign `*_FILE` variables
//! passed through, SPARK_WORKER_PORT); init scripts run in order before the services; Spark's
//! Prometheus servlet on master, worker, driver and executors (SPARK_METRICS_ENABLED, parsed with
//! prometheus_client's parser); cluster-wide event logging into a directory sparkvisor creates on
//! /data and the history server listing the finished job; a real Spark Connect client from another
//! container (exact answers, executed on the worker); beeline from the image against the Thrift
//! server. Plus a failing init script stopping the start. Needs root and Docker (CI=true:
//! mandatory). One image build per run.

use crate::docker_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use docker_support::*;
use serde_json::Value;

const STARTUP: Duration = Duration::from_secs(240);

/// A Docker network or volume removed when dropped.
struct Resource {
    kind: &'static str,
    name: String,
}

impl Resource {
    fn new(kind: &'static str, what: &str) -> Resource {
        let name = format!("services-{}", unique(what));
        docker(&[kind, "create", &name]);
        Resource { kind, name }
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args([self.kind, "rm", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Parses Prometheus text with prometheus_client's parser: {sample name: [[labels, value], ...]}.
fn parse_prometheus(text: &str) -> Value {
    use std::io::Write;
    let script = repo().join("tests/fixtures/services/prom_parse.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with prometheus_client) for the Prometheus parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// GETs a Prometheus endpoint of a container and parses it.
fn scrape(ip: &str, port: u16, path: &str) -> Value {
    let (status, body) = wait_for(&format!("{ip}:{port}{path}"), STARTUP, || {
        match http_get(ip, port, path)? {
            (200, body) if !body.trim().is_empty() => Ok((200, body)),
            (status, body) => Err(format!("status {status}: {body:.200}")),
        }
    });
    assert_eq!(status, 200);
    parse_prometheus(&body)
}

/// The names of the parsed samples that contain every one of `parts`.
fn names_with<'a>(metrics: &'a Value, parts: &[&str]) -> Vec<&'a String> {
    metrics
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| parts.iter().all(|p| k.contains(p)))
        .collect()
}

/// The text between `=====BEGIN path` and `=====END path` in a driver's output.
fn section<'a>(out: &'a str, path: &str) -> &'a str {
    let begin = format!("=====BEGIN {path}\n");
    let start = out
        .find(&begin)
        .unwrap_or_else(|| panic!("no {path} in:\n{out}"))
        + begin.len();
    let end = out[start..].find(&format!("=====END {path}")).unwrap();
    &out[start..start + end]
}

/// `/proc/PID/<file>` of the one process matching `pattern`, NUL-separated fields.
fn proc_fields(container: &str, pattern: &str, file: &str) -> Vec<String> {
    let pids = wait_for(&format!("{pattern} in {container}"), STARTUP, || {
        let pids = pids_matching(container, pattern);
        if pids.is_empty() {
            Err("no process".into())
        } else {
            Ok(pids)
        }
    });
    // As the service's user: root in the container lacks CAP_SYS_PTRACE, which reading another
    // user's environ needs.
    let out = docker(&[
        "exec",
        "-u",
        "spark",
        container,
        "cat",
        &format!("/proc/{}/{file}", pids[0]),
    ]);
    out.split('\0').map(str::to_string).collect()
}

/// `docker run --rm --network NET IMAGE CMD...` to completion: (success, stdout, stderr).
fn run_client(net: &str, image: &str, mounts: &[&str], cmd: &[&str]) -> (bool, String, String) {
    let name = unique("services-client");
    let mut args = vec!["run", "--rm", "--name", name.as_str(), "--network", net];
    for m in mounts {
        args.extend(["-v", m]);
    }
    args.push(image);
    // `--`: tini's way to end the agent's own options, so the client's (beeline -u ...) stay its.
    args.push("--");
    args.extend_from_slice(cmd);
    let out = run(Command::new("docker").args(&args));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Starts `docker run -d` with the common cluster arguments plus `extra`.
fn start(what: &str, image: &str, common: &[String], extra: &[&str]) -> Container {
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Container::run(what, &args, image, &[])
}

fn common_args(net: &str, data: &str, host: &str) -> Vec<String> {
    [
        "--network",
        net,
        "--hostname",
        host,
        "--network-alias",
        host,
        "-v",
        &format!("{data}:/data"),
        "-e",
        "SPARK_METRICS_ENABLED=yes",
        "-e",
        "SPARK_EVENT_LOG_ENABLED=yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn services_and_settings_on_a_cluster() {
    if !prerequisites("services_and_settings_on_a_cluster") {
        return;
    }
    let image = image();
    let net = Resource::new("network", "net");
    let data = Resource::new("volume", "data");
    let fixtures = repo().join("tests/fixtures/services");
    let fixtures_mount = format!("{}:/fixtures:ro", fixtures.display());
    let init_mount = format!(
        "{}:/docker-entrypoint-initdb.d:ro",
        fixtures.join("init-ok").display()
    );
    let mode_file = temp_file("mode", "master\n");
    let mode_mount = format!("{}:/run/sparkvisor-mode:ro", mode_file.display());
    let hosts = ["m", "w", "h", "c", "t"].map(unique);
    let [m, w, h, c, t] = &hosts;
    let master_url = format!("SPARK_MASTER_URL=spark://{m}:7077");
    // Executors of the Connect server and of the test's driver share the worker's two cores.
    let small_apps = "SPARKVISOR_SPARK_CONF={spark.cores.max: 1, spark.executor.memory: 512m}";

    let master = start(
        "services-master",
        &image,
        &common_args(&net.name, &data.name, m),
        &[
            "-v",
            &fixtures_mount,
            "-v",
            &mode_mount,
            "-v",
            &init_mount,
            // The role from a _FILE (consumed by sparkvisor: must not reach the services)...
            "-e",
            "SPARK_MODE_FILE=/run/sparkvisor-mode",
            // ...and a _FILE that is not sparkvisor's (EKS IRSA): must reach them unchanged.
            "-e",
            "AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks/token",
            "-e",
            "SPARK_DAEMON_JAVA_OPTS=-Dsparkvisor.test.marker=kept -Dspark.deploy.spreadOut=false",
        ],
    );
    let worker = start(
        "services-worker",
        &image,
        &common_args(&net.name, &data.name, w),
        &[
            "--cpus",
            "2",
            "--memory",
            "2g",
            "-e",
            "SPARK_MODE=worker",
            "-e",
            &master_url,
            "-e",
            "SPARK_WORKER_PORT=35555",
        ],
    );
    let history = start(
        "services-history",
        &image,
        &common_args(&net.name, &data.name, h),
        &["-e", "SPARK_MODE=history-server"],
    );
    let connect = start(
        "services-connect",
        &image,
        &common_args(&net.name, &data.name, c),
        &[
            "--memory",
            "2g",
            "-e",
            "SPARK_MODE=connect",
            "-e",
            &master_url,
            "-e",
            small_apps,
        ],
    );
    // No master: the Thrift server runs its queries in local mode.
    let thrift = start(
        "services-thrift",
        &image,
        &common_args(&net.name, &data.name, t),
        &["--memory", "2g", "-e", "SPARK_MODE=thriftserver"],
    );
    let master_ip = container_ip(&master.name);
    let worker_ip = container_ip(&worker.name);

    // SPARK_WORKER_PORT took effect: the worker registered from that RPC port.
    let json = wait_for("the worker ALIVE in the master", STARTUP, || {
        let json = http_json(&master_ip, 8080, "/json/")?;
        if alive_workers(&json).len() == 1 {
            Ok(json)
        } else {
            Err(format!("{json}"))
        }
    });
    let entry = &alive_workers(&json)[0];
    assert!(
        entry["id"].as_str().unwrap().ends_with("-35555"),
        "worker id should carry SPARK_WORKER_PORT 35555: {entry}"
    );

    check_master_settings(&master);
    check_init_scripts(&master);

    // The event log directory, created by sparkvisor on /data for the service user.
    let (_, stat, _) = exec(&master.name, &["stat", "-c", "%u %a", "/data/spark/events"]);
    assert_eq!(stat.trim(), "185 1777", "event log dir owner and mode");

    check_metrics_and_history(
        &master,
        m,
        &master_ip,
        &worker_ip,
        &container_ip(&history.name),
    );
    check_connect(&net.name, &image, &fixtures_mount, &connect, c);
    check_thriftserver(&net.name, &image, &thrift, t);
}

/// The user's SPARK_DAEMON_JAVA_OPTS merged after sparkvisor's own JVM options (the processor
/// count, C1 only for the master); only the `_FILE` variables sparkvisor consumed are kept from the services.
fn check_master_settings(master: &Container) {
    let cmdline = proc_fields(&master.name, "deploy.master.Master", "cmdline");
    assert!(
        cmdline.iter().any(|a| a == "-Dsparkvisor.test.marker=kept")
            && cmdline
                .iter()
                .any(|a| a == "-Dspark.deploy.spreadOut=false"),
        "user's SPARK_DAEMON_JAVA_OPTS lost: {cmdline:?}"
    );
    assert!(
        cmdline
            .iter()
            .any(|a| a.starts_with("-XX:ActiveProcessorCount=")),
        "sparkvisor's own JVM options lost: {cmdline:?}"
    );
    // The master role's spark.daemon_jit=c1 default reaches the JVM, before the user's options.
    let c1 = cmdline.iter().position(|a| a == "-XX:TieredStopAtLevel=1");
    let user = cmdline
        .iter()
        .position(|a| a == "-Dsparkvisor.test.marker=kept");
    assert!(
        matches!((c1, user), (Some(c), Some(u)) if c < u),
        "the master's C1-only option missing or after the user's: {cmdline:?}"
    );
    let environ = proc_fields(&master.name, "deploy.master.Master", "environ");
    assert!(
        environ.contains(&"AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks/token".to_string()),
        "a foreign _FILE variable must reach the service: {environ:?}"
    );
    assert!(
        !environ.iter().any(|e| e.starts_with("SPARK_MODE_FILE=")),
        "sparkvisor's own _FILE variable must not reach the service: {environ:?}"
    );
}

/// The init scripts ran once each, in name order, as the service user, before the master, and
/// their output is in the container's log.
fn check_init_scripts(master: &Container) {
    let (_, order, _) = exec(&master.name, &["cat", "/tmp/sparkvisor-init-order"]);
    assert_eq!(order, "first\nsecond\n", "init scripts order");
    let logs = master.logs();
    let pos = |needle: &str| {
        logs.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in the logs:\n{logs}"))
    };
    assert!(pos("init first: running as spark") < pos("init second: after first"));
    assert!(pos("init second: after first") < pos("spark-master: started"));
    assert!(
        logs.contains("README: skipped") && !logs.contains("README: started"),
        "a non-executable file ran:\n{logs}"
    );
}

/// A driver on the cluster: a known answer, the driver's and executors' metrics, the daemons'
/// metrics, and the finished application in the history server.
fn check_metrics_and_history(
    master: &Container,
    master_host: &str,
    master_ip: &str,
    worker_ip: &str,
    history_ip: &str,
) {
    let submit = run(Command::new("docker").args([
        "exec",
        "-u",
        "spark",
        &master.name,
        "spark-submit",
        "--master",
        &format!("spark://{master_host}:7077"),
        "--conf",
        "spark.driver.memory=512m",
        "--conf",
        "spark.executor.memory=512m",
        "--conf",
        "spark.cores.max=1",
        "/fixtures/metrics_job.py",
    ]));
    let out = String::from_utf8_lossy(&submit.stdout).to_string();
    assert!(
        submit.status.success() && out.contains("SUM=500500"),
        "driver failed: {out}\n{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let driver = parse_prometheus(section(&out, "/metrics/prometheus"));
    assert!(
        !names_with(&driver, &["driver", "DAGScheduler"]).is_empty(),
        "driver metrics: {driver}"
    );
    let executors = parse_prometheus(section(&out, "/metrics/executors/prometheus"));
    let on_workers = executors
        .as_object()
        .unwrap()
        .values()
        .flat_map(|samples| samples.as_array().unwrap())
        .filter(|s| {
            s[0]["executor_id"]
                .as_str()
                .is_some_and(|id| id != "driver")
        })
        .count();
    assert!(on_workers > 0, "no executor metrics: {executors}");

    let m = scrape(master_ip, 8080, "/metrics/master/prometheus/");
    assert_eq!(
        m["metrics_master_aliveWorkers_Value"][0][1], 1.0,
        "master metrics: {m}"
    );
    scrape(master_ip, 8080, "/metrics/applications/prometheus/");
    let w = scrape(worker_ip, 8081, "/metrics/prometheus/");
    assert!(
        !names_with(&w, &["metrics_worker_"]).is_empty() && !names_with(&w, &["jvm"]).is_empty(),
        "worker metrics: {w}"
    );

    wait_for("the finished job in the history server", STARTUP, || {
        let apps = http_json(history_ip, 18080, "/api/v1/applications")?;
        let done =
            apps.as_array().into_iter().flatten().any(|a| {
                a["name"] == "sparkvisor-metrics" && a["attempts"][0]["completed"] == true
            });
        if done {
            Ok(())
        } else {
            Err(format!("{apps}"))
        }
    });
}

/// A Spark Connect client in another container gets the exact answers, computed by executors on
/// the worker (the server runs against the configured master).
fn check_connect(net: &str, image: &str, fixtures_mount: &str, connect: &Container, host: &str) {
    wait_for("spark-connect ready", STARTUP, || {
        let status = agent_status(&connect.name)?;
        match service(&status, "spark-connect") {
            Some(s) if s["state"] == "ready" || s["ready"] == true => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let (ok, out, err) = run_client(
        net,
        image,
        &[fixtures_mount],
        &[
            "python3",
            "/fixtures/connect_client.py",
            &format!("sc://{host}:15002"),
        ],
    );
    assert!(ok, "Spark Connect client failed: {out}\n{err}");
    let answer: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("client output {out:?}: {e}"));
    assert_eq!(answer["sum"], 500500, "{answer}");
    assert_eq!(
        answer["groups"],
        serde_json::json!([[0, 34], [1, 33], [2, 33]]),
        "{answer}"
    );
    // The server's application ran its tasks on the worker's executors.
    let ip = container_ip(&connect.name);
    // Retried within a deadline: a loaded driver can be slower than one read timeout.
    let apps = wait_for("the Connect server's REST API", STARTUP, || {
        http_json(&ip, 4040, "/api/v1/applications")
    });
    let id = apps[0]["id"].as_str().unwrap().to_string();
    let executors = wait_for("the Connect server's executors", STARTUP, || {
        http_json(&ip, 4040, &format!("/api/v1/applications/{id}/executors"))
    });
    let remote_tasks: u64 = executors
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["id"] != "driver")
        .map(|e| e["totalTasks"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        remote_tasks > 0,
        "no tasks on the worker's executors: {executors}"
    );
}

/// beeline from the image runs SQL with a known answer; the table lives in the warehouse on /data.
fn check_thriftserver(net: &str, image: &str, thrift: &Container, host: &str) {
    wait_for("spark-thriftserver ready", STARTUP, || {
        let status = agent_status(&thrift.name)?;
        match service(&status, "spark-thriftserver") {
            Some(s) if s["state"] == "ready" || s["ready"] == true => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let sql = "CREATE TABLE kv (k INT, v STRING) USING parquet; \
               INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c'); \
               SELECT concat('ANSWER=', sum(k), '/', count(*)) FROM kv;";
    let (ok, out, err) = run_client(
        net,
        image,
        &[],
        &[
            "beeline",
            "-u",
            &format!("jdbc:hive2://{host}:10000/default"),
            "-n",
            "spark",
            "--silent=true",
            "--showHeader=false",
            "--outputformat=csv2",
            "-e",
            sql,
        ],
    );
    assert!(ok && out.contains("ANSWER=6/3"), "beeline: {out}\n{err}");
    let (_, ls, _) = exec(
        &thrift.name,
        &["ls", "/data/spark/warehouse", "/data/spark"],
    );
    assert!(
        ls.contains("kv") && ls.contains("metastore_db"),
        "warehouse and metastore under /data: {ls}"
    );
}

/// A failing init script stops the start: the container exits with the script's code, the error
/// names it, and no role service ever started.
#[test]
fn failing_init_script_stops_the_start() {
    if !prerequisites("failing_init_script_stops_the_start") {
        return;
    }
    let image = image();
    let init_mount = format!(
        "{}:/docker-entrypoint-initdb.d:ro",
        repo().join("tests/fixtures/services/init-fail").display()
    );
    let node = Container::run(
        "services-initfail",
        &["-v", &init_mount, "-e", "SPARK_MODE=master"],
        &image,
        &[],
    );
    let code = wait_for("the container to exit", STARTUP, || {
        match node
            .inspect("{{.State.Status}} {{.State.ExitCode}}")
            .split_once(' ')
        {
            Some(("exited", code)) => Ok(code.to_string()),
            other => Err(format!("{other:?}")),
        }
    });
    let logs = node.logs();
    assert_eq!(
        code, "3",
        "exit code of the failed init script; logs:\n{logs}"
    );
    assert!(
        logs.contains("init fail: cannot prepare the data") && logs.contains("init-01-10-fail.sh"),
        "the script's output and name in the logs:\n{logs}"
    );
    assert!(
        !logs.contains("spark-master: started"),
        "a role service started:\n{logs}"
    );
}
