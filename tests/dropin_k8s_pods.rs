#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Spark-on-Kubernetes pods without a Kubernetes API: containers started the way Spark's pod specs
//! start them (`driver ARGS...` / `executor`, with the environment the feature steps set).
//! - driver: completes a job (local master) with exit 0;
//! - executor: two `sparkvisor executor` containers register with a real driver (client mode
//!   against a standalone master that has no workers, so they are its only executors) and run its
//!   tasks; the JVM is uid 185, a child of sparkvisor as PID 1, with SPARK_JAVA_OPT_n and -Xmx;
//! - the memory-limit warning names the cgroup file when the heap does not fit.
//!
//! The argv itself is checked against the official entrypoint by the table tests in
//! src/k8s_pod.rs. Needs root and Docker (CI=true: mandatory).

mod common;
mod docker_support;

use std::time::Duration;

use docker_support::{
    container_ip, image, pids_matching, prerequisites, proc_field, proc_status, repo, unique,
    wait_for, Container, Network,
};

fn fixture(name: &str) -> String {
    repo()
        .join("tests/fixtures/dropin")
        .join(name)
        .display()
        .to_string()
}

fn exit_code(c: &Container, timeout: Duration) -> i32 {
    wait_for("the container to exit", timeout, || {
        match c
            .inspect("{{.State.Running}} {{.State.ExitCode}}")
            .split_once(' ')
        {
            Some(("false", code)) => code.parse::<i32>().map_err(|e| e.to_string()),
            other => Err(format!("{other:?}")),
        }
    })
}

#[test]
fn driver_pod_completes_a_job() {
    if !prerequisites("driver_pod_completes_a_job") {
        return;
    }
    let image = image();
    let props = format!(
        "{}:/opt/dropin/spark.properties:ro",
        fixture("driver.properties")
    );
    let pi = format!(
        "{}:/opt/dropin/pi.py:ro",
        repo().join("docker/examples/pi.py").display()
    );
    // As DriverCommandFeatureStep builds a Python driver's args, BasicDriverFeatureStep its env.
    let c = Container::run(
        "dropindriver",
        &[
            "-e",
            "SPARK_DRIVER_BIND_ADDRESS=0.0.0.0",
            "-e",
            "SPARK_CONF_DIR=/opt/spark/conf",
            "-e",
            "SPARK_USER=spark",
            "-v",
            &props,
            "-v",
            &pi,
        ],
        &image,
        &[
            "driver",
            "--properties-file",
            "/opt/dropin/spark.properties",
            "--class",
            "org.apache.spark.deploy.PythonRunner",
            "local:///opt/dropin/pi.py",
            "4",
        ],
    );
    let code = exit_code(&c, Duration::from_secs(600));
    let logs = c.logs();
    assert_eq!(code, 0, "driver pod exit code; logs:\n{logs}");
    assert!(logs.contains("Pi is roughly 3.1"), "{logs}");
    assert!(logs.contains("master local[2]"), "{logs}");
}

#[test]
fn executor_pods_register_with_a_real_driver_and_run_its_tasks() {
    if !prerequisites("executor_pods_register_with_a_real_driver") {
        return;
    }
    let image = image();
    let network = Network::new("dropinpods");
    let master_name = unique("dropinmaster");
    let _master = Container::run_named(
        &master_name,
        &["--network", &network.0],
        &image,
        &[
            "/opt/spark/bin/spark-class",
            "org.apache.spark.deploy.master.Master",
        ],
    );
    let driver_name = unique("dropindrv");
    let job = format!("{}:/opt/dropin/job.py:ro", fixture("executor_job.py"));
    let master_url = format!("spark://{master_name}:7077");
    let driver_host = format!("spark.driver.host={driver_name}");
    let driver = Container::run_named(
        &driver_name,
        &["--network", &network.0, "-v", &job],
        &image,
        &[
            "/opt/spark/bin/spark-submit",
            "--master",
            &master_url,
            "--conf",
            &driver_host,
            "--conf",
            "spark.driver.port=7078",
            "--conf",
            "spark.driver.bindAddress=0.0.0.0",
            "--conf",
            "spark.decommission.enabled=true",
            "/opt/dropin/job.py",
        ],
    );
    let driver_ip = container_ip(&driver.name);
    wait_for("the driver's RPC port", Duration::from_secs(300), || {
        std::net::TcpStream::connect_timeout(
            &format!("{driver_ip}:7078")
                .parse()
                .map_err(|e| format!("{e}"))?,
            Duration::from_secs(2),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    });
    let driver_url = format!("SPARK_DRIVER_URL=spark://CoarseGrainedScheduler@{driver_name}:7078");
    let mut executors = Vec::new();
    for id in ["1", "2"] {
        let name = unique(&format!("dropinexec{id}"));
        let pod_env = [
            driver_url.clone(),
            format!("SPARK_EXECUTOR_ID={id}"),
            "SPARK_EXECUTOR_CORES=1".into(),
            "SPARK_EXECUTOR_MEMORY=512m".into(),
            "SPARK_APPLICATION_ID=spark-dropin-app".into(),
            "SPARK_CONF_DIR=/opt/spark/conf".into(),
            "SPARK_RESOURCE_PROFILE_ID=0".into(),
            format!("SPARK_EXECUTOR_POD_IP={name}"),
            format!("SPARK_EXECUTOR_POD_NAME={name}"),
            "SPARK_JAVA_OPT_0=-Dspark.driver.port=7078".into(),
            "SPARK_JAVA_OPT_1=-Ddropin.marker=executor-pod".into(),
        ];
        let mut args: Vec<String> = vec![
            "--network".into(),
            network.0.clone(),
            "--hostname".into(),
            name.clone(),
        ];
        for e in &pod_env {
            args.push("-e".into());
            args.push(e.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        executors.push(Container::run_named(&name, &args, &image, &["executor"]));
    }
    // The executor JVM: uid 185, PID 1's child (the agent's main command), options as expected.
    for e in &executors {
        let pid = wait_for("the executor JVM", Duration::from_secs(120), || {
            pids_matching(&e.name, "KubernetesExecutorBackend")
                .into_iter()
                .find(|p| *p != 1)
                .ok_or_else(|| "no executor JVM yet".to_string())
        });
        let st = proc_status(&e.name, pid);
        assert_eq!(proc_field(&st, "Uid"), "185\t185\t185\t185");
        assert_eq!(proc_field(&st, "PPid"), "1");
        let (_, pid1, _) = docker_support::exec(&e.name, &["cat", "/proc/1/cmdline"]);
        assert!(
            pid1.starts_with("/usr/local/bin/sparkvisor\0executor"),
            "{pid1:?}"
        );
        let (_, cmdline, _) =
            docker_support::exec(&e.name, &["cat", &format!("/proc/{pid}/cmdline")]);
        let argv: Vec<&str> = cmdline.split('\0').collect();
        let at = |s: &str| argv.iter().position(|a| *a == s);
        assert!(
            at("-Dspark.driver.port=7078") < at("-Ddropin.marker=executor-pod")
                && at("-Ddropin.marker=executor-pod") < at("-Xms512m")
                && at("-Xmx512m").is_some(),
            "{argv:?}"
        );
    }
    let ran_on = wait_for("the job's tasks", Duration::from_secs(600), || {
        let logs = driver.logs();
        logs.lines()
            .find_map(|l| l.strip_prefix("RAN_ON "))
            .map(str::to_string)
            .ok_or(logs)
    });
    for e in &executors {
        assert!(ran_on.contains(&format!("{}:185", e.name)), "{ran_on}");
    }
    // A preStop hook's `sparkvisor decommission`: SIGPWR to the executor, back once it exited.
    let (code, out, err) = docker_support::exec(
        &executors[1].name,
        &["sparkvisor", "decommission", "--timeout", "240"],
    );
    // Once the executor has exited, its agent ends and the container with it: the exec'd hook may be
    // killed with it (137) before it prints, as a preStop hook is when the container stops. What
    // must hold is below: the executor container exits 0 and the driver saw the executor leave.
    assert!(
        code == 0 && out.contains("executor exited") || code == 137,
        "decommission: {code} {out}{err}"
    );
    assert!(
        format!("{out}{err}").contains("SIGPWR sent to executor"),
        "{out}{err}"
    );
    assert_eq!(exit_code(&executors[1], Duration::from_secs(60)), 0);
    let code = exit_code(&driver, Duration::from_secs(600));
    let logs = driver.logs();
    assert_eq!(code, 0, "driver exit; logs:\n{logs}");
    assert!(logs.contains("EXECUTOR_LEFT 3 -> 2"), "{logs}");
}

#[test]
fn executor_warns_when_its_heap_does_not_fit_the_memory_limit() {
    if !prerequisites("executor_warns_when_its_heap_does_not_fit") {
        return;
    }
    let image = image();
    let c = Container::run(
        "dropinsmall",
        &[
            "--memory",
            "512m",
            "-e",
            "SPARK_EXECUTOR_MEMORY=1g",
            "-e",
            "SPARK_EXECUTOR_CORES=1",
            "-e",
            "SPARK_DRIVER_URL=spark://CoarseGrainedScheduler@127.0.0.1:1",
            "-e",
            "SPARK_EXECUTOR_ID=1",
        ],
        &image,
        &["executor"],
    );
    let warning = wait_for("the memory warning", Duration::from_secs(60), || {
        let logs = c.logs();
        logs.lines()
            .find(|l| l.contains("SPARK_EXECUTOR_MEMORY=1g"))
            .map(str::to_string)
            .ok_or(logs)
    });
    assert!(
        warning.contains("exceeds the container's memory limit of 512 MiB"),
        "{warning}"
    );
    assert!(
        warning.contains("memory.limit_in_bytes") || warning.contains("memory.max"),
        "{warning}"
    );
}
