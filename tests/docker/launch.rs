//! The image's master and worker daemons are started by the agent as direct JVMs (the built-in
//! roles' default `launch: java`): a master and a worker container on a private network, the
//! worker ALIVE; in each container no zombie exists, the daemon's JVM is a child of the agent
//! (PID 1) with no bash and no launcher JVM around it, and its command line equals what the
//! image's own Spark launcher (`org.apache.spark.launcher.Main`, what `spark-class` runs) prints
//! for the daemon's environment.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{common, docker_support};

use std::time::Duration;

use docker_support::*;
use serde_json::Value;

/// Runs in the container: every process's state/parent/argv, the daemon JVM, and the launcher's
/// command for the JVM's own environment and arguments.
const INSPECT: &str = r#"
import json, os, subprocess
procs = {}
for p in os.listdir('/proc'):
    if not p.isdigit():
        continue
    try:
        stat = open(f'/proc/{p}/stat').read()
        rest = stat.rsplit(')', 1)[1].split()
        argv = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\0')[:-1]
        procs[int(p)] = {'state': rest[0], 'ppid': int(rest[1]),
                         'comm': stat[stat.index('(') + 1:stat.rindex(')')],
                         'argv': [a.decode() for a in argv]}
    except OSError:
        pass
me = os.getpid()
daemons = [(pid, p) for pid, p in procs.items()
           if p['comm'] == 'java' and any(a.startswith('org.apache.spark.deploy.') for a in p['argv'])]
pid, jvm = daemons[0]
env = dict(e.split('=', 1) for e in open(f'/proc/{pid}/environ', 'rb').read().decode().split('\0') if '=' in e)
i = next(i for i, a in enumerate(jvm['argv']) if a.startswith('org.apache.spark.deploy.'))
out = subprocess.run([jvm['argv'][0], '-Xmx128m', '-cp', env['SPARK_HOME'] + '/jars/*',
                      'org.apache.spark.launcher.Main'] + jvm['argv'][i:], env=env, capture_output=True)
print(json.dumps({
    'zombies': [p for p in procs.values() if p['state'] == 'Z'],
    'others': [p['comm'] for q, p in procs.items()
               if q not in (1, pid, me) and p['ppid'] not in (0, me)],
    'jvm_ppid': jvm['ppid'],
    'argv': jvm['argv'],
    # The command follows the launcher's "\0\n" marker, each argument NUL-terminated.
    'launcher': out.stdout.decode().partition('\0\n')[2].split('\0')[:-1],
    'launcher_err': out.stderr.decode(),
}))
"#;

fn check_daemon(container: &Container, class: &str) {
    // As the services' user: reading another user's /proc/PID/environ needs CAP_SYS_PTRACE.
    // (`docker exec -u`: the image's default user is 185 already, and setpriv would need root.)
    let output = run(std::process::Command::new("docker").args([
        "exec",
        "-u",
        "185:185",
        &container.name,
        "python3",
        "-c",
        INSPECT,
    ]));
    let (code, out, err) = (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    );
    assert_eq!(code, 0, "inspect script failed: {err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["zombies"],
        Value::Array(vec![]),
        "zombies in {class}: {v}"
    );
    assert_eq!(v["jvm_ppid"], 1, "the JVM is not the agent's child: {v}");
    assert_eq!(
        v["others"],
        Value::Array(vec![]),
        "processes besides the agent and the JVM (bash, launcher JVM): {v}"
    );
    let argv: Vec<&str> = v["argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(argv[0].ends_with("/bin/java"), "{argv:?}");
    assert!(argv.contains(&class), "{argv:?}");
    let launcher: Vec<&str> = v["launcher"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        argv, launcher,
        "the direct command differs from the launcher's: {}",
        v["launcher_err"]
    );
}

#[test]
fn daemons_run_as_direct_jvms_without_zombies() {
    if !prerequisites("docker_launch") {
        return;
    }
    let image = image();
    let net = Network::new("perfnet");
    let master = Container::run(
        "perfmaster",
        &[
            "--network",
            &net.0,
            "--network-alias",
            "spark-master",
            "--hostname",
            "spark-master",
            "--cpus",
            "1",
            "--memory",
            "1g",
            "-e",
            "SPARK_MODE=master",
        ],
        &image,
        &[],
    );
    let ip = container_ip(&master.name);
    wait_for("master ALIVE", Duration::from_secs(240), || {
        let j = http_json(&ip, 8080, "/json/")?;
        (j["status"] == "ALIVE")
            .then_some(())
            .ok_or_else(|| j.to_string())
    });
    let worker = Container::run(
        "perfworker",
        &[
            "--network",
            &net.0,
            "--hostname",
            "perf-worker",
            "--cpus",
            "1",
            "--memory",
            "1g",
            "-e",
            "SPARK_MODE=worker",
            "-e",
            "SPARK_MASTER_URL=spark://spark-master:7077",
            "-e",
            "SPARK_WORKER_OPTS=-Dsv.test='a b'",
        ],
        &image,
        &[],
    );
    wait_for("worker ALIVE", Duration::from_secs(240), || {
        let j = http_json(&ip, 8080, "/json/")?;
        (alive_workers(&j).len() == 1)
            .then_some(())
            .ok_or_else(|| j.to_string())
    });
    check_daemon(&master, "org.apache.spark.deploy.master.Master");
    check_daemon(&worker, "org.apache.spark.deploy.worker.Worker");
}

/// The Spark release the Dockerfile pins (`ARG PYSPARK_VERSION=`), the default build's.
fn dockerfile_pyspark_version() -> String {
    let dockerfile = std::fs::read_to_string(common::repo().join("docker/Dockerfile")).unwrap();
    dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG PYSPARK_VERSION="))
        .expect("docker/Dockerfile has ARG PYSPARK_VERSION=")
        .trim()
        .to_string()
}

#[test]
fn the_image_runs_the_pinned_spark_release_with_a_working_connect_client() {
    if !prerequisites("the_image_runs_the_pinned_spark_release_with_a_working_connect_client") {
        return;
    }
    let want = dockerfile_pyspark_version();
    let image = image();
    // Importing the Connect session runs pyspark's own dependency check (grpcio, protobuf,
    // zstandard, pandas, pyarrow at the versions this release needs); a protobuf runtime that does
    // not fit the generated code warns (UserWarning), made an error here.
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        &image,
        "-W",
        "error::UserWarning",
        "-c",
        "import glob, os, pyspark, pyspark.sql.connect.session\n\
         print(pyspark.__version__)\n\
         print(' '.join(sorted(os.path.basename(j) for j in \
             glob.glob(os.environ['SPARK_HOME'] + '/jars/spark-core_*.jar'))))",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(want.as_str()), "{out}");
    assert_eq!(
        lines.next(),
        Some(format!("spark-core_2.13-{want}.jar").as_str()),
        "{out}"
    );
    // The host tests run the same Spark (scripts/lib/prereqs.sh installs the image's release).
    if let Ok(host) = std::process::Command::new("python3")
        .args(["-c", "import pyspark; print(pyspark.__version__)"])
        .output()
    {
        if host.status.success() {
            assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), want);
        }
    }
}
