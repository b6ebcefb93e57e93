#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Spark services and settings in real containers of the sparkvisor image (issue 14): settings that
//! must reach Spark (SPARK_DAEMON_JAVA_OPTS merged, foreign `*_FILE` variables passed through,
//! SPARK_WORKER_PORT), Spark's Prometheus servlet on master, worker, driver and executors
//! (SPARK_METRICS_ENABLED, parsed with prometheus_client's parser), cluster-wide event logging
//! into a directory sparkvisor creates on /data and a history server listing the finished job.
//! Needs root and Docker (CI=true: mandatory). One image build per run.

mod common;
mod docker_support;

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
    let (_, out, _) = exec(container, &["cat", &format!("/proc/{}/{file}", pids[0])]);
    out.split('\0').map(str::to_string).collect()
}

#[test]
fn settings_metrics_and_history_server() {
    if !prerequisites("settings_metrics_and_history_server") {
        return;
    }
    let image = image();
    let net = Resource::new("network", "net");
    let data = Resource::new("volume", "data");
    let fixtures = repo().join("tests/fixtures/services");
    let fixtures_mount = format!("{}:/fixtures:ro", fixtures.display());
    let data_mount = format!("{}:/data", data.name);
    let mode_file = temp_file("mode", "master\n");
    let mode_mount = format!("{}:/run/sparkvisor-mode:ro", mode_file.display());
    let master_host = unique("m");
    let common_args = |host: &str| -> Vec<String> {
        [
            "--network",
            &net.name,
            "--hostname",
            host,
            "--network-alias",
            host,
            "-v",
            &data_mount,
            "-e",
            "SPARK_METRICS_ENABLED=yes",
            "-e",
            "SPARK_EVENT_LOG_ENABLED=yes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut args = common_args(&master_host);
    args.extend(
        [
            "-v",
            &fixtures_mount,
            "-v",
            &mode_mount,
            // The role from a _FILE (consumed by sparkvisor: must not reach the services)...
            "-e",
            "SPARK_MODE_FILE=/run/sparkvisor-mode",
            // ...and a _FILE that is not sparkvisor's (EKS IRSA): must reach them unchanged.
            "-e",
            "AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks/token",
            "-e",
            "SPARK_DAEMON_JAVA_OPTS=-Dsparkvisor.test.marker=kept -Dspark.deploy.spreadOut=false",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let master = Container::run("services-master", &args, &image, &[]);
    let master_ip = container_ip(&master.name);

    let worker_host = unique("w");
    let mut args = common_args(&worker_host);
    args.extend(
        [
            "--cpus",
            "1",
            "--memory",
            "2g",
            "-e",
            "SPARK_MODE=worker",
            "-e",
            &format!("SPARK_MASTER_URL=spark://{master_host}:7077"),
            "-e",
            "SPARK_WORKER_PORT=35555",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let worker = Container::run("services-worker", &args, &image, &[]);
    let worker_ip = container_ip(&worker.name);

    let history_host = unique("h");
    let mut args = common_args(&history_host);
    args.extend(["-e", "SPARK_MODE=history-server"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let history = Container::run("services-history", &args, &image, &[]);
    let history_ip = container_ip(&history.name);

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

    // The user's SPARK_DAEMON_JAVA_OPTS merged after sparkvisor's own JVM options.
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
    let environ = proc_fields(&master.name, "deploy.master.Master", "environ");
    assert!(
        environ.contains(&"AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks/token".to_string()),
        "a foreign _FILE variable must reach the service: {environ:?}"
    );
    assert!(
        !environ.iter().any(|e| e.starts_with("SPARK_MODE_FILE=")),
        "sparkvisor's own _FILE variable must not reach the service: {environ:?}"
    );

    // The event log directory, created by sparkvisor on /data for the service user.
    let (_, stat, _) = exec(&master.name, &["stat", "-c", "%u %a", "/data/spark/events"]);
    assert_eq!(stat.trim(), "185 1777", "event log dir owner and mode");

    // A driver on the cluster: a known answer, then its own driver/executor metrics.
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

    // The daemons' own servlets.
    let m = scrape(&master_ip, 8080, "/metrics/master/prometheus");
    let alive = &m["metrics_master_aliveWorkers_Value"];
    assert_eq!(alive[0][1], 1.0, "master metrics: {m}");
    scrape(&master_ip, 8080, "/metrics/applications/prometheus");
    let w = scrape(&worker_ip, 8081, "/metrics/prometheus");
    assert!(
        !names_with(&w, &["metrics_worker_"]).is_empty() && !names_with(&w, &["jvm"]).is_empty(),
        "worker metrics: {w}"
    );

    // The history server (its log directory is the shared event log directory) lists the job.
    let apps = wait_for("the finished job in the history server", STARTUP, || {
        let apps = http_json(&history_ip, 18080, "/api/v1/applications")?;
        let done =
            apps.as_array().into_iter().flatten().any(|a| {
                a["name"] == "sparkvisor-metrics" && a["attempts"][0]["completed"] == true
            });
        if done {
            Ok(apps)
        } else {
            Err(format!("{apps}"))
        }
    });
    assert_eq!(apps.as_array().unwrap().len(), 1, "{apps}");
    drop(history);
    drop(worker);
    drop(master);
}
