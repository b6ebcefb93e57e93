#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Spark-on-Kubernetes pods without a Kubernetes API: containers started the way Spark's pod specs
//! start them (`driver ARGS...` / `executor`, with the environment the feature steps set).
//! - driver: bound to its own IP as a pod is (SPARK_DRIVER_BIND_ADDRESS from the downward API),
//!   completes a job (local master) with exit 0, and its spark-submit argv is the official
//!   entrypoint's for the same env;
//! - executor: two executor containers (one `executor` under the image's ENTRYPOINT, one through
//!   the official `/opt/entrypoint.sh executor`) register with a real driver (client mode against
//!   a standalone master that has no workers, so they are its only executors) and run its tasks;
//!   the JVM is uid 185, a child of sparkvisor as PID 1, with SPARK_JAVA_OPT_n and -Xmx; the
//!   preStop hook `/opt/decom.sh`, exec'd as the kubelet does, makes one leave gracefully;
//! - the memory-limit warning names the cgroup file when the heap does not fit.
//!
//! More env → argv rows: the table tests in src/platform/k8s_pod.rs. Needs root and Docker (CI=true: mandatory).

use crate::docker_support;

use std::time::Duration;

use docker_support::{
    container_ip, image, pids_matching, prerequisites, proc_field, proc_status_in, repo, unique,
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

/// A network with a subnet given at creation (Docker takes `--ip` only on those) and an address in
/// it: the container's own address, known before it starts, as the downward API's `status.podIP`
/// is. The subnet is one Docker just picked as free (a probe network's, removed at once); only the
/// gateway (`.1`) is taken in a fresh network, so `.10` is free.
fn network_and_own_ip() -> (Network, String) {
    let probe = Network::new("dropinprobe");
    let subnet = docker_support::docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        &probe.0,
    ]);
    drop(probe);
    let subnet = subnet
        .split_whitespace()
        .find(|s| s.contains('.'))
        .unwrap_or_else(|| panic!("no IPv4 subnet: {subnet:?}"))
        .to_string();
    let network = Network(unique("dropindrvnet"));
    docker_support::docker(&["network", "create", "--subnet", &subnet, &network.0]);
    let base = subnet.split('/').next().unwrap();
    let mut octets: Vec<u8> = base.split('.').map(|o| o.parse().unwrap()).collect();
    octets[3] += 10;
    let ip = octets
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(".");
    (network, ip)
}

/// What the official entrypoint runs for `driver ARGS` (its `driver)` case): spark-submit under
/// SPARK_HOME, the bind address and the executors' driver pod IP from SPARK_DRIVER_BIND_ADDRESS,
/// client mode, then Spark's arguments untouched. One row per environment.
fn official_driver_argv(spark_home: &str, bind_address: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        format!("{spark_home}/bin/spark-submit"),
        "--conf".into(),
        format!("spark.driver.bindAddress={bind_address}"),
        "--conf".into(),
        format!("spark.executorEnv.SPARK_DRIVER_POD_IP={bind_address}"),
        "--deploy-mode".into(),
        "client".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

#[test]
fn driver_pod_completes_a_job() {
    if !prerequisites("driver_pod_completes_a_job") {
        return;
    }
    let image = image();
    let (network, pod_ip) = network_and_own_ip();
    let props = format!(
        "{}:/opt/dropin/spark.properties:ro",
        fixture("driver.properties")
    );
    let job = format!("{}:/opt/dropin/job.py:ro", fixture("driver_job.py"));
    // SPARK_HOME's bin/spark-submit records the argv it was given, then runs the real one.
    let spark_home = "/opt/dropin/spark-home";
    let home = format!("{}:{spark_home}:ro", fixture("spark-home"));
    let bind = format!("SPARK_DRIVER_BIND_ADDRESS={pod_ip}");
    let home_env = format!("SPARK_HOME={spark_home}");
    // As DriverCommandFeatureStep builds a Python driver's args; BasicDriverFeatureStep's env, with
    // SPARK_DRIVER_BIND_ADDRESS the pod's own IP (the downward API's status.podIP).
    let args = [
        "--properties-file",
        "/opt/dropin/spark.properties",
        "--class",
        "org.apache.spark.deploy.PythonRunner",
        "local:///opt/dropin/job.py",
        "4",
    ];
    let mut cmd = vec!["driver"];
    cmd.extend(args);
    let c = Container::run(
        "dropindriver",
        &[
            "--network",
            &network.0,
            "--ip",
            &pod_ip,
            "-e",
            &bind,
            "-e",
            &home_env,
            "-e",
            "SPARK_CONF_DIR=/opt/spark/conf",
            "-e",
            "SPARK_USER=spark",
            "-v",
            &props,
            "-v",
            &job,
            "-v",
            &home,
        ],
        &image,
        &cmd,
    );
    let code = exit_code(&c, Duration::from_secs(600));
    let logs = c.logs();
    assert_eq!(code, 0, "driver pod exit code; logs:\n{logs}");
    assert!(logs.contains("Pi is roughly 3.1"), "{logs}");
    assert!(logs.contains("master local[2]"), "{logs}");
    let argv: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("SUBMIT_ARGV "))
        .collect();
    assert_eq!(
        argv,
        official_driver_argv(spark_home, &pod_ip, &args),
        "the driver's spark-submit command line; logs:\n{logs}"
    );
    // The driver bound its RPC port to the pod IP (not 0.0.0.0) and tells executors that address.
    assert!(logs.contains(&format!("BIND_ADDRESS {pod_ip}\n")), "{logs}");
    assert!(
        logs.contains(&format!("POD_IP_FOR_EXECUTORS {pod_ip}\n")),
        "{logs}"
    );
    let listens: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("RPC_LISTENS_ON "))
        .collect();
    assert!(
        !listens.is_empty() && listens.iter().all(|a| a.starts_with(&format!("{pod_ip}:"))),
        "{listens:?}\n{logs}"
    );
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
        if id == "2" {
            // A pod spec naming the official image's entry point as its command.
            args.extend(["--entrypoint".into(), "/opt/entrypoint.sh".into()]);
        }
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
        let st = proc_status_in(&e.name, pid);
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
    // The preStop hook BasicExecutorFeatureStep sets with spark.decommission.enabled: the kubelet
    // execs `/opt/decom.sh` (no arguments) in the executor container. SIGPWR to the executor, back
    // once it exited.
    let (code, out, err) = docker_support::exec(&executors[1].name, &["/opt/decom.sh"]);
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
