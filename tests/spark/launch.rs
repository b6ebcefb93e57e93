//! Direct JVM launch (`launch: java`, the default) against `spark-class` (`launch: spark-class`)
//! with the installed pyspark's real `bin/spark-class` and launcher: the agent runs the built-in
//! `worker` role once each way with the same environment, `JAVA_HOME` pointing at a JDK whose
//! `bin/java` runs the real java for the launcher (`org.apache.spark.launcher.Main`) and records
//! argv and environment of any other start (the daemon) instead of running it. The direct command
//! line must equal what `spark-class` execs, the variables Spark reads must be the same, and the
//! direct run must not have started the launcher JVM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{common, supervisor_support};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::free_port;
use supervisor_support::*;

/// A fake JDK: `bin/java` delegates the launcher to the real java, records everything else.
fn fake_jdk(dir: &Path) -> PathBuf {
    let real = std::fs::canonicalize(
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join("java"))
            .find(|p| p.is_file())
            .expect("java on PATH"),
    )
    .unwrap();
    let jdk = dir.join("jdk");
    std::fs::create_dir_all(jdk.join("bin")).unwrap();
    let script = format!(
        "#!/bin/sh\n\
         for a in \"$@\"; do\n\
           if [ \"$a\" = org.apache.spark.launcher.Main ]; then\n\
             echo launcher >> \"$SV_RECORD.calls\"; exec {real} \"$@\"\n\
           fi\n\
         done\n\
         echo daemon >> \"$SV_RECORD.calls\"\n\
         printf '%s\\0' \"$@\" > \"$SV_RECORD.argv.tmp\"\n\
         env > \"$SV_RECORD.env\"\n\
         mv \"$SV_RECORD.argv.tmp\" \"$SV_RECORD.argv\"\n\
         exec sleep 60\n",
        real = real.display()
    );
    let java = jdk.join("bin/java");
    std::fs::write(&java, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
    jdk
}

struct Recorded {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    calls: Vec<String>,
}

/// Runs the `worker` role (as given in `role_yaml`) under the agent and returns what the daemon's
/// `java` was started with.
fn run_worker(home: &Path, jdk: &Path, role_yaml: &str, tag: &str, ports: (u16, u16)) -> Recorded {
    let scene = Scene::new();
    scene.role("worker", role_yaml);
    let root = scene.path().display().to_string();
    let record = format!("{root}/{tag}");
    let cgroup = scene.path().join("cgroup");
    std::fs::create_dir_all(&cgroup).unwrap();
    for (file, text) in [
        ("cgroup.controllers", "cpuset cpu io memory pids\n"),
        ("cpu.max", "150000 100000\n"),
        ("memory.max", "2147483648\n"),
    ] {
        std::fs::write(cgroup.join(file), text).unwrap();
    }
    // Root services: the role files must be ones they cannot change (copies owned by nobody).
    let copies = common::copies_owned_by_nobody(
        &[
            &scene.path().join("roles"),
            &common::repo().join("templates"),
        ],
        scene.path(),
    );
    let mut cmd = scene.agent(false, &["run", "--role", "worker"]);
    cmd.env("SPARKVISOR_ROLES", &copies[0])
        .env("SPARKVISOR_TEMPLATES", &copies[1])
        .env("SPARKVISOR_CGROUP_ROOT", &cgroup)
        .env("SPARK_HOME", home)
        .env("JAVA_HOME", jdk)
        .env("SV_RECORD", &record)
        .env("SPARK_CONF_DIR", format!("{root}/conf"))
        .env("SPARK_WORKER_DIR", format!("{root}/work"))
        .env("SPARK_LOCAL_DIRS", format!("{root}/local"))
        .env("SPARK_LOG_DIR", format!("{root}/logs"))
        .env("SPARK_DAEMON_USER", "root")
        .env("SPARK_MASTER_URL", format!("spark://127.0.0.1:{}", ports.0))
        .env("SPARK_WORKER_WEBUI_PORT", ports.1.to_string())
        .env("SPARK_WORKER_OPTS", "-Dsv.a='x y' -Dsv.b=\"it's\"")
        .env("SPARK_DAEMON_CLASSPATH", format!("/nonexistent.jar:{root}"))
        .env(
            "SPARKVISOR_SETTINGS",
            "{spark.daemon_java_opts: '-Dsv.c=1 -Dsv.d=\"p q\"'}",
        );
    let mut agent = scene.start(&mut cmd);
    let argv_file = PathBuf::from(format!("{record}.argv"));
    agent.wait_for(Duration::from_secs(60), "the daemon's java started", || {
        argv_file.exists()
    });
    agent.signal(false, libc::SIGTERM);
    agent.wait(Duration::from_secs(30));
    let argv = std::fs::read_to_string(&argv_file).unwrap();
    let argv: Vec<String> = argv
        .trim_end_matches('\0')
        .split('\0')
        .map(str::to_string)
        .collect();
    let env = std::fs::read_to_string(format!("{record}.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let calls = std::fs::read_to_string(format!("{record}.calls"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    Recorded { argv, env, calls }
}

#[test]
fn direct_launch_equals_spark_class() {
    let Some(home) = common::require_spark() else {
        return;
    };
    if skip_unless(is_root(), "needs root (services run as root here)") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let jdk = fake_jdk(tmp.path());
    let role = std::fs::read_to_string(common::repo().join("roles/worker.yaml")).unwrap();
    // No master runs here: the worker's start-order gate (wait for an ALIVE master) is not what
    // this test is about, so it is taken out of both variants.
    let gate = "    wait_for:\n      http: [\"http://{{ spark.master_ui_endpoints }}/json/\"]\n      json: { status: ALIVE }\n      timeout: 180s\n";
    assert!(
        role.contains(gate),
        "the worker role's wait_for changed: update this test"
    );
    let role = role.replace(gate, "");
    assert!(
        !role.contains("launch:"),
        "the built-in worker role must use the default launch"
    );
    let script_role = role.replace(
        "    restart: always\n",
        "    restart: always\n    launch: spark-class\n",
    );
    assert_ne!(role, script_role);

    let ports = (free_port(), free_port());
    let direct = run_worker(&home, &jdk, &role, "direct", ports);
    let script = run_worker(&home, &jdk, &script_role, "script", ports);

    assert_eq!(
        script.calls,
        ["launcher", "daemon"],
        "spark-class ran as expected"
    );
    assert_eq!(
        direct.calls,
        ["daemon"],
        "the direct launch must not run the launcher JVM"
    );
    // The conf dirs differ between the two scenes: compare with each scene's root replaced.
    let norm = |r: &Recorded| -> Vec<String> {
        let conf = r.env["SPARK_CONF_DIR"]
            .trim_end_matches("/conf")
            .to_string();
        r.argv.iter().map(|a| a.replace(&conf, "@ROOT@")).collect()
    };
    assert_eq!(
        norm(&direct),
        norm(&script),
        "direct launch differs from spark-class"
    );
    assert!(
        direct.argv.iter().any(|a| a == "-Dsv.d=p q"),
        "{:?}",
        direct.argv
    );
    assert!(
        direct.argv.iter().any(|a| a == "-Dsv.b=it's"),
        "{:?}",
        direct.argv
    );
    for var in [
        "SPARK_WORKER_CORES",
        "SPARK_WORKER_MEMORY",
        "SPARK_DAEMON_MEMORY",
        "SPARK_DAEMON_JAVA_OPTS",
        "SPARK_ENV_LOADED",
        "SPARK_SCALA_VERSION",
        "SPARK_NO_DAEMONIZE",
        "SPARK_WORKER_OPTS",
        "SPARK_HOME",
    ] {
        assert_eq!(direct.env.get(var), script.env.get(var), "{var}");
        assert!(direct.env.contains_key(var), "{var} missing");
    }
}
