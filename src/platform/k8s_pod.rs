//! Spark on Kubernetes pods: the command lines the official image's entrypoint builds for its
//! `driver` and `executor` arguments, from the same environment (the variables Spark's
//! `BasicDriverFeatureStep`/`BasicExecutorFeatureStep` set on the pod), plus the checks only
//! sparkvisor can make (the executor's heap against the container's cgroup limits).
//! docs/kubernetes.md describes the rules; this module is pure except [`hadoop_classpath`].
//!
//! Differences from the official entrypoint, on purpose:
//! - `SPARK_JAVA_OPT_<n>` are ordered by n as a number (Spark numbers them from 0 in order); bash's
//!   `${!SPARK_JAVA_OPT_@}` orders names as text, so the official image puts `_10` before `_2`.
//! - An empty `JAVA_HOME` runs `java` from `PATH` (the official script asks `java` for its home).

use std::collections::BTreeMap;

/// The executor's main class (the official entrypoint's).
pub const EXECUTOR_CLASS: &str = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend";

fn get<'a>(env: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    env.get(key).map_or("", String::as_str)
}

fn spark_home(env: &BTreeMap<String, String>) -> &str {
    env.get("SPARK_HOME")
        .map_or(crate::config::env::DEFAULT_SPARK_HOME, String::as_str)
}

/// The driver's argv: `spark-submit` in client mode bound to the pod's IP, then `args` (what
/// Spark puts after `driver`: `--properties-file ... --class ... spark-internal ...`).
pub fn driver_argv(env: &BTreeMap<String, String>, args: &[String]) -> Vec<String> {
    let bind = get(env, "SPARK_DRIVER_BIND_ADDRESS");
    let mut argv = vec![
        format!("{}/bin/spark-submit", spark_home(env)),
        "--conf".into(),
        format!("spark.driver.bindAddress={bind}"),
        "--conf".into(),
        format!("spark.executorEnv.SPARK_DRIVER_POD_IP={bind}"),
        "--deploy-mode".into(),
        "client".into(),
    ];
    argv.extend(args.iter().cloned());
    argv
}

/// The executor's classpath, in the official entrypoint's order: `SPARK_CONF_DIR` (else
/// `SPARK_HOME/conf`), `HADOOP_CONF_DIR` (when set), `SPARK_CLASSPATH`, the jars,
/// `SPARK_EXTRA_CLASSPATH`, the working directory, then `SPARK_DIST_CLASSPATH` (`dist`: the
/// variable, or `hadoop classpath` when `HADOOP_HOME` is set and it is not).
pub fn executor_classpath(env: &BTreeMap<String, String>, cwd: &str, dist: &str) -> String {
    let mut cp = format!("{}:{}/jars/*", get(env, "SPARK_CLASSPATH"), spark_home(env));
    let extra = get(env, "SPARK_EXTRA_CLASSPATH");
    if !extra.is_empty() {
        cp = format!("{cp}:{extra}");
    }
    if let Some(hadoop_conf) = env.get("HADOOP_CONF_DIR") {
        cp = format!("{hadoop_conf}:{cp}");
    }
    match (env.get("SPARK_CONF_DIR"), env.get("SPARK_HOME")) {
        (Some(conf), _) => cp = format!("{conf}:{cp}"),
        (None, Some(home)) => cp = format!("{home}/conf:{cp}"),
        (None, None) => {}
    }
    format!("{cp}:{cwd}:{dist}")
}

/// `SPARK_JAVA_OPT_<n>` values ordered by n (names with a non-numeric suffix last, by name).
pub fn java_opts(env: &BTreeMap<String, String>) -> Vec<String> {
    let mut opts: Vec<(Option<u64>, &str, &str)> = env
        .iter()
        .filter_map(|(k, v)| {
            let suffix = k.strip_prefix("SPARK_JAVA_OPT_")?;
            Some((suffix.parse().ok(), k.as_str(), v.as_str()))
        })
        .collect();
    opts.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(b.1),
    });
    opts.into_iter().map(|(_, _, v)| v.to_string()).collect()
}

/// The executor's argv (`dist`: see [`executor_classpath`]).
pub fn executor_argv(env: &BTreeMap<String, String>, cwd: &str, dist: &str) -> Vec<String> {
    let java = match get(env, "JAVA_HOME") {
        "" => "java".to_string(),
        home => format!("{home}/bin/java"),
    };
    let memory = get(env, "SPARK_EXECUTOR_MEMORY");
    let mut argv = vec![java];
    argv.extend(java_opts(env));
    argv.push(format!("-Xms{memory}"));
    argv.push(format!("-Xmx{memory}"));
    argv.push("-cp".into());
    argv.push(executor_classpath(env, cwd, dist));
    argv.push(EXECUTOR_CLASS.into());
    for (flag, var) in [
        ("--driver-url", "SPARK_DRIVER_URL"),
        ("--executor-id", "SPARK_EXECUTOR_ID"),
        ("--cores", "SPARK_EXECUTOR_CORES"),
        ("--app-id", "SPARK_APPLICATION_ID"),
        ("--hostname", "SPARK_EXECUTOR_POD_IP"),
        ("--resourceProfileId", "SPARK_RESOURCE_PROFILE_ID"),
        ("--podName", "SPARK_EXECUTOR_POD_NAME"),
    ] {
        argv.push(flag.into());
        argv.push(get(env, var).into());
    }
    argv
}

/// `SPARK_DIST_CLASSPATH`, or `$HADOOP_HOME/bin/hadoop classpath` when `HADOOP_HOME` is set and it
/// is not (as the official entrypoint; a failing `hadoop` gives an empty classpath and a warning).
pub fn hadoop_classpath(env: &BTreeMap<String, String>) -> String {
    let dist = get(env, "SPARK_DIST_CLASSPATH");
    let hadoop_home = get(env, "HADOOP_HOME");
    if !dist.is_empty() || hadoop_home.is_empty() {
        return dist.to_string();
    }
    let hadoop = format!("{hadoop_home}/bin/hadoop");
    match std::process::Command::new(&hadoop)
        .arg("classpath")
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => {
            log::warn!(
                "{hadoop} classpath failed ({}): SPARK_DIST_CLASSPATH stays empty",
                out.status
            );
            String::new()
        }
        Err(e) => {
            log::warn!("cannot run {hadoop} classpath: {e}: SPARK_DIST_CLASSPATH stays empty");
            String::new()
        }
    }
}

/// A JVM memory size (`1g`, `512m`, `1024k`, bytes) in MiB, as Spark reads SPARK_EXECUTOR_MEMORY.
pub fn memory_mib(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().ok()?;
    match unit.trim_end_matches('b') {
        "" => Some(n / (1024 * 1024)),
        "k" => Some(n / 1024),
        "m" => Some(n),
        "g" => n.checked_mul(1024),
        "t" => n.checked_mul(1024 * 1024),
        _ => None,
    }
}

/// Warnings for an executor that will not fit its container: heap plus Spark's default overhead
/// (max(384 MiB, 10%)) above the cgroup memory limit, or more task slots than the CPU quota.
/// `resources` names the cgroup file each limit came from.
pub fn executor_fit_warnings(
    env: &BTreeMap<String, String>,
    resources: &crate::resources::Resources,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let source = |prefix: &str| {
        resources
            .sources
            .iter()
            .find(|s| s.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| prefix.to_string())
    };
    if let (Some(heap), Some(limit)) = (
        memory_mib(get(env, "SPARK_EXECUTOR_MEMORY")),
        resources.memory_limit,
    ) {
        let overhead = (heap / 10).max(384);
        let limit_mib = limit / (1024 * 1024);
        if heap + overhead > limit_mib {
            warnings.push(format!(
                "SPARK_EXECUTOR_MEMORY={} ({heap} MiB) plus overhead {overhead} MiB = {} MiB exceeds \
                 the container's memory limit of {limit_mib} MiB ({}): the executor JVM will be \
                 OOM-killed under load; lower spark.executor.memory or raise the pod's limit",
                get(env, "SPARK_EXECUTOR_MEMORY"),
                heap + overhead,
                source("memory limit")
            ));
        }
    }
    if let (Ok(cores), Some(quota)) = (
        get(env, "SPARK_EXECUTOR_CORES").parse::<f64>(),
        resources.cpu_quota,
    ) {
        if cores > quota {
            warnings.push(format!(
                "SPARK_EXECUTOR_CORES={cores} exceeds the container's CPU limit of {quota} cores \
                 ({}): tasks will be throttled",
                source("cpu quota")
            ));
        }
    }
    warnings
}

/// `sparkvisor pod-exec driver|executor [ARGS]`: the main command of the `driver`/`executor`
/// roles. Builds the official command line from this process's environment, warns when an
/// executor will not fit its cgroup limits, and replaces itself with it (so the JVM is the
/// agent's main process: signals, exit code and `decommission` reach it directly).
pub fn pod_exec(kind: &str, args: &[String]) -> Result<i32, crate::error::Fatal> {
    use std::os::unix::process::CommandExt;
    let env = crate::startup::node::process_env();
    let argv = match kind {
        "driver" => driver_argv(&env, args),
        "executor" => {
            if let Ok(resources) = crate::resources::detect() {
                for w in executor_fit_warnings(&env, &resources) {
                    crate::errln!("sparkvisor: warn: {w}");
                }
            }
            let cwd = std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            executor_argv(&env, &cwd, &hadoop_classpath(&env))
        }
        other => {
            return Err(crate::error::Fatal::Config(
                crate::error::Diagnostic::new(
                    "pod-exec",
                    format!("unknown pod kind {other:?}: driver or executor"),
                )
                .into(),
            ))
        }
    };
    let Some((program, rest)) = argv.split_first() else {
        return Ok(crate::error::exit_code::FAILURE);
    };
    let err = std::process::Command::new(program).args(rest).exec();
    crate::errln!("sparkvisor: cannot execute {program}: {err}");
    Ok(if err.kind() == std::io::ErrorKind::NotFound {
        crate::error::exit_code::NOT_FOUND
    } else {
        crate::error::exit_code::CANNOT_EXECUTE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// Env as BasicExecutorFeatureStep sets it → the official entrypoint's argv (derived by hand
    /// from entrypoint.sh.template for each row).
    #[test]
    fn executor_table() {
        let pod = [
            ("SPARK_HOME", "/opt/spark"),
            ("JAVA_HOME", "/usr/lib/jvm/java-17"),
            (
                "SPARK_DRIVER_URL",
                "spark://CoarseGrainedScheduler@10.0.0.5:7078",
            ),
            ("SPARK_EXECUTOR_CORES", "2"),
            ("SPARK_EXECUTOR_MEMORY", "1024m"),
            ("SPARK_APPLICATION_ID", "spark-app-1"),
            ("SPARK_CONF_DIR", "/opt/spark/conf"),
            ("SPARK_EXECUTOR_ID", "3"),
            ("SPARK_RESOURCE_PROFILE_ID", "0"),
            ("SPARK_EXECUTOR_POD_IP", "10.0.0.9"),
            ("SPARK_EXECUTOR_POD_NAME", "pi-exec-3"),
            ("SPARK_JAVA_OPT_0", "-Dspark.driver.port=7078"),
            ("SPARK_JAVA_OPT_1", "-Dspark.app.name=pi"),
        ];
        let tail = |cp: &str| {
            let mut v = s(&[
                "/usr/lib/jvm/java-17/bin/java",
                "-Dspark.driver.port=7078",
                "-Dspark.app.name=pi",
                "-Xms1024m",
                "-Xmx1024m",
                "-cp",
            ]);
            v.push(cp.into());
            v.extend(s(&[
                EXECUTOR_CLASS,
                "--driver-url",
                "spark://CoarseGrainedScheduler@10.0.0.5:7078",
                "--executor-id",
                "3",
                "--cores",
                "2",
                "--app-id",
                "spark-app-1",
                "--hostname",
                "10.0.0.9",
                "--resourceProfileId",
                "0",
                "--podName",
                "pi-exec-3",
            ]));
            v
        };
        type Row<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
        let rows: Vec<Row> = vec![
            (vec![], "", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:"),
            (
                vec![("SPARK_CLASSPATH", "/x.jar"), ("SPARK_EXTRA_CLASSPATH", "/e/*")],
                "",
                "/opt/spark/conf:/x.jar:/opt/spark/jars/*:/e/*:/opt/spark/work-dir:",
            ),
            (
                vec![("HADOOP_CONF_DIR", "/etc/hadoop")],
                "/h/a.jar:/h/b.jar",
                "/opt/spark/conf:/etc/hadoop::/opt/spark/jars/*:/opt/spark/work-dir:/h/a.jar:/h/b.jar",
            ),
        ];
        for (extra, dist, cp) in rows {
            let mut e = env(&pod);
            e.extend(env(&extra));
            assert_eq!(
                executor_argv(&e, "/opt/spark/work-dir", dist),
                tail(cp),
                "{extra:?}"
            );
        }
        // Without SPARK_CONF_DIR: SPARK_HOME/conf.
        let mut e = env(&pod);
        e.remove("SPARK_CONF_DIR");
        assert!(executor_classpath(&e, "/w", "").starts_with("/opt/spark/conf::"));
    }

    #[test]
    fn java_opts_in_numeric_order() {
        let e = env(&[
            ("SPARK_JAVA_OPT_10", "-Dk=10"),
            ("SPARK_JAVA_OPT_2", "-Dk=2"),
            ("SPARK_JAVA_OPT_0", "-Dk=0"),
            ("OTHER", "x"),
        ]);
        assert_eq!(java_opts(&e), s(&["-Dk=0", "-Dk=2", "-Dk=10"]));
    }

    /// env → argv, as the official entrypoint's `driver)` case builds it: SPARK_HOME's spark-submit,
    /// the bind address twice, client mode, then Spark's arguments untouched (spaces, `--` and all).
    #[test]
    fn driver_table() {
        let py = [
            "--properties-file",
            "/opt/spark/conf/spark.properties",
            "--class",
            "org.apache.spark.deploy.PythonRunner",
            "local:///opt/pi.py",
            "10",
        ];
        let jar = [
            "--properties-file",
            "/opt/spark/conf/spark.properties",
            "--class",
            "org.example.Main",
            "spark-internal",
            "two words",
            "--",
        ];
        // (environment, Spark's arguments, expected SPARK_HOME, expected bind address)
        type Row<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str, &'a str);
        let rows: &[Row] = &[
            (
                &[
                    ("SPARK_HOME", "/opt/spark"),
                    ("SPARK_DRIVER_BIND_ADDRESS", "10.0.0.5"),
                ],
                &py,
                "/opt/spark",
                "10.0.0.5",
            ),
            // SPARK_HOME unset: the image's /opt/spark.
            (
                &[("SPARK_DRIVER_BIND_ADDRESS", "fd00::17")],
                &jar,
                "/opt/spark",
                "fd00::17",
            ),
            (
                &[
                    ("SPARK_HOME", "/usr/lib/spark"),
                    ("SPARK_DRIVER_BIND_ADDRESS", "172.17.0.3"),
                ],
                &jar,
                "/usr/lib/spark",
                "172.17.0.3",
            ),
            // No bind address (not a pod spec Spark writes): passed on empty, as the script does.
            (&[("SPARK_HOME", "/opt/spark")], &py, "/opt/spark", ""),
        ];
        for (vars, args, home, bind) in rows {
            let mut want = vec![
                format!("{home}/bin/spark-submit"),
                "--conf".into(),
                format!("spark.driver.bindAddress={bind}"),
                "--conf".into(),
                format!("spark.executorEnv.SPARK_DRIVER_POD_IP={bind}"),
                "--deploy-mode".into(),
                "client".into(),
            ];
            want.extend(s(args));
            assert_eq!(driver_argv(&env(vars), &s(args)), want, "{vars:?}");
        }
    }

    #[test]
    fn memory_sizes_and_fit() {
        assert_eq!(memory_mib("1g"), Some(1024));
        assert_eq!(memory_mib("512m"), Some(512));
        assert_eq!(memory_mib("2048K"), Some(2));
        assert_eq!(memory_mib("lots"), None);
        let mut r = crate::resources::Resources {
            host_cpus: 8,
            visible_cpus: 8,
            cpu_quota: Some(1.0),
            host_memory: 16 << 30,
            memory_limit: Some(1024 * 1024 * 1024),
            sources: vec!["memory limit 1073741824 bytes: /sys/fs/cgroup/memory.max".into()],
            cgroup: "v2".into(),
            cpuset_cpus: None,
        };
        let e = env(&[
            ("SPARK_EXECUTOR_MEMORY", "1g"),
            ("SPARK_EXECUTOR_CORES", "2"),
        ]);
        let w = executor_fit_warnings(&e, &r);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("1408 MiB exceeds"), "{}", w[0]);
        assert!(w[0].contains("/sys/fs/cgroup/memory.max"), "{}", w[0]);
        r.memory_limit = Some(4 << 30);
        r.cpu_quota = None;
        assert!(executor_fit_warnings(&e, &r).is_empty());
    }
}
