#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The user's conf files win and nothing is lost (docs/conf-files.md), the way users bring them:
//! a derived Dockerfile (`FROM` the image, `RUN echo ... >>` into spark-defaults.conf and
//! spark-env.sh, `COPY` a hive-site.xml, a core-site.xml, a log4j2.properties and a conf.default),
//! a spark-defaults.conf bind-mounted read-only, and an empty conf dir mounted and seeded from
//! conf.default. One master and one worker (two JVMs) serve every check:
//! - the worker (conf in place): its appended spark-env.sh lines run after the agent's (the master
//!   lists it with the user's 3 cores and 777 MiB), a spark-submit job in it sees the appended
//!   property next to the agent's `spark.master` (it runs on the cluster) and the copied XML
//!   files' properties; restarted twice, its conf files come back identical (no duplicates, no
//!   loss) and the worker re-registers with the user's sizes;
//! - the master (the mounted file): the host file is never written, the master honours it (its
//!   REST server on 6066) and the agent's own properties for that file reach it too (the
//!   Prometheus servlet that `SPARK_METRICS_ENABLED` asks for), through the overlay; it logs with
//!   the user's whole log4j2.properties, linked there;
//! - a third container (no JVM of its own but the job's): a mounted empty conf dir is seeded from
//!   conf.default and the seeded property reaches a job;
//! - `sparkvisor inspect` attributes each value to its file and line.
//!
//! Needs root and Docker (CI=true: mandatory).

use crate::docker_support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use docker_support::*;

/// The job users would `spark-submit`: what Spark's conf holds, as one JSON line.
const JOB: &str = r#"import json
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("conf-files-test")
         .config("spark.executor.memory", "480m").getOrCreate())
sc = spark.sparkContext
hadoop = spark._jsparkSession.sessionState().newHadoopConf()
print("CONFTEST " + json.dumps({
    "marker": spark.conf.get("spark.conftest.marker", None),
    "seeded": spark.conf.get("spark.conftest.seeded", None),
    "master": sc.master,
    "core_site": hadoop.get("conftest.core.key"),
    "hive_site": hadoop.get("conftest.hive.key"),
    "sum": sc.parallelize(range(1, 101), 2).sum(),
}))
spark.stop()
"#;

const HIVE_SITE: &str = "<?xml version=\"1.0\"?>\n<configuration>\n  <property>\n    <name>conftest.hive.key</name>\n    <value>from-hive-site</value>\n  </property>\n</configuration>\n";
const CORE_SITE: &str = "<?xml version=\"1.0\"?>\n<configuration>\n  <property><name>conftest.core.key</name><value>from-core-site</value></property>\n</configuration>\n";
const LOG4J: &str = "rootLogger.level = info\nrootLogger.appenderRef.stdout.ref = console\nappender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_OUT\nappender.console.layout.type = PatternLayout\nappender.console.layout.pattern = CONFTEST-LOG %p %c{1}: %m%n\n";
const MOUNTED: &str =
    "# mounted read-only by the test\nspark.master.rest.enabled true\nspark.conftest.mounted yes\n";

/// A derived image built here, removed when dropped.
struct DerivedImage(String);

impl DerivedImage {
    fn build(base: &str) -> DerivedImage {
        let tag = format!("{}:test", unique("confimage").to_lowercase());
        let dir = std::env::temp_dir().join(unique("confctx"));
        std::fs::create_dir_all(dir.join("conf.default")).unwrap();
        let files = [
            (
                "Dockerfile",
                format!(
                    "FROM {base}\n\
                     RUN echo 'spark.conftest.marker from-derived-image' >> /opt/spark/conf/spark-defaults.conf \\\n \
                     && printf '%s\\n' 'SPARK_WORKER_CORES=3' 'export SPARK_WORKER_MEMORY=777m' >> /opt/spark/conf/spark-env.sh\n\
                     COPY hive-site.xml core-site.xml log4j2.properties /opt/spark/conf/\n\
                     COPY conf.default/ /opt/spark/conf.default/\n\
                     COPY conftest_job.py /opt/spark/work-dir/\n"
                ),
            ),
            ("hive-site.xml", HIVE_SITE.into()),
            ("core-site.xml", CORE_SITE.into()),
            ("log4j2.properties", LOG4J.into()),
            ("conftest_job.py", JOB.into()),
            (
                "conf.default/spark-defaults.conf",
                "spark.conftest.seeded from-conf-default\n".into(),
            ),
            (
                "conf.default/fairscheduler.xml",
                "<allocations/>\n".into(),
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let out = run(Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(&dir)
            .stderr(Stdio::inherit()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "building the derived image failed");
        DerivedImage(tag)
    }
}

impl Drop for DerivedImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn cat(container: &str, path: &str) -> String {
    let (code, out, err) = exec(container, &["cat", path]);
    assert_eq!(code, 0, "cat {path} in {container}: {err}");
    out
}

/// Runs the job with `spark-submit ARGS conftest_job.py` in `container`; its JSON line.
fn submit(container: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["spark-submit"];
    all.extend_from_slice(args);
    all.push("/opt/spark/work-dir/conftest_job.py");
    let (code, out, err) = exec(container, &all);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("CONFTEST "))
        .unwrap_or_else(|| panic!("job in {container} (exit {code}): {out}\n{err}"));
    serde_json::from_str(line).unwrap()
}

/// The master's one ALIVE worker, once it has the user's sizes (a worker of an earlier start
/// stays listed, DEAD).
fn wait_worker_with_users_sizes(master_ip: &str, what: &str) {
    wait_for(what, Duration::from_secs(240), || {
        let json = http_json(master_ip, 8080, "/json/")?;
        match alive_workers(&json).as_slice() {
            [w] if w["cores"] == 3 && w["memory"] == 777 => Ok(()),
            other => Err(format!("alive workers: {other:?}")),
        }
    });
}

fn inspect(container: &str) -> String {
    let (code, out, err) = exec(container, &["sparkvisor", "inspect"]);
    assert_eq!(code, 0, "inspect in {container}: {err}");
    out
}

/// The line of inspect's conf files section that starts (after indentation) with `key` and a
/// blank (the section above it lists the agent's spark_conf, without files).
fn row<'a>(text: &'a str, key: &str) -> &'a str {
    let conf = text.split_once("\nconf files (").map_or(text, |(_, c)| c);
    conf.lines()
        .find(|l| l.trim_start().starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no row {key} in:\n{text}"))
}

#[test]
fn users_conf_files_are_merged_kept_and_win() {
    if !prerequisites("users_conf_files_are_merged_kept_and_win") {
        return;
    }
    let derived = DerivedImage::build(&image());
    let image = derived.0.as_str();
    let network = Network::new("confnet");
    let net = format!("--network={}", network.0);

    // The master: a spark-defaults.conf of the user's mounted read-only over the image's.
    let mounted = temp_file("spark-defaults.conf", MOUNTED);
    let mount = format!(
        "{}:/opt/spark/conf/spark-defaults.conf:ro",
        mounted.display()
    );
    let master_name = unique("confmaster");
    let master = Container::run_named(
        &master_name,
        &[
            &net,
            "--hostname",
            &master_name,
            "-e",
            "SPARK_MODE=master",
            "-e",
            "SPARK_METRICS_ENABLED=true",
            "-v",
            &mount,
        ],
        image,
        &[],
    );
    // The worker: the derived image's appended and copied files, in place.
    let master_url = format!("SPARK_MASTER_URL=spark://{master_name}:7077");
    let worker_name = unique("confworker");
    let worker = Container::run_named(
        &worker_name,
        &[
            &net,
            "--hostname",
            &worker_name,
            "-e",
            "SPARK_MODE=worker",
            "-e",
            &master_url,
        ],
        image,
        &[],
    );
    let master_ip = container_ip(&master.name);
    wait_worker_with_users_sizes(
        &master_ip,
        "the worker with the cores and memory of the user's spark-env.sh",
    );

    // The worker's files: the agent's block first, the user's lines after it, once.
    let defaults = cat(&worker.name, "/opt/spark/conf/spark-defaults.conf");
    let env = cat(&worker.name, "/opt/spark/conf/spark-env.sh");
    for (text, mine) in [
        (&defaults, "spark.conftest.marker from-derived-image\n"),
        (
            &env,
            "SPARK_WORKER_CORES=3\nexport SPARK_WORKER_MEMORY=777m\n",
        ),
    ] {
        assert!(text.starts_with("# >>> sparkvisor"), "{text}");
        assert!(text.ends_with(mine), "{text}");
        assert_eq!(text.matches(">>> sparkvisor").count(), 1, "{text}");
    }
    assert_eq!(
        cat(&worker.name, "/opt/spark/conf/log4j2.properties"),
        LOG4J
    );

    // A job as users submit it, in the worker's container: Spark sees the user's appended property
    // and the agent's spark.master from the same file, and the copied XML files' properties.
    let job = submit(&worker.name, &[]);
    assert_eq!(job["marker"], "from-derived-image", "{job}");
    assert_eq!(
        job["master"],
        format!("spark://{master_name}:7077"),
        "{job}"
    );
    assert_eq!(job["core_site"], "from-core-site", "{job}");
    assert_eq!(job["hive_site"], "from-hive-site", "{job}");
    assert_eq!(job["sum"], 5050, "{job}");

    // inspect says whose each value is.
    let text = inspect(&worker.name);
    assert!(
        row(&text, "spark.conftest.marker")
            .contains("(yours: /opt/spark/conf/spark-defaults.conf:"),
        "{text}"
    );
    assert!(
        row(&text, "spark.master").contains("(sparkvisor: "),
        "{text}"
    );
    let cores = row(&text, "SPARK_WORKER_CORES");
    assert!(
        cores.contains(" 3  (yours: /opt/spark/conf/spark-env.sh:")
            && cores.contains("replaces sparkvisor's"),
        "{text}"
    );
    assert!(
        text.contains(
            "log4j2.properties: your /opt/spark/conf/log4j2.properties, whole: sparkvisor's spark/log4j2.properties is not written"
        ),
        "{text}"
    );
    assert!(
        row(&text, "conftest.hive.key").contains("(yours: /opt/spark/conf/hive-site.xml:3)"),
        "{text}"
    );

    // The master: its mounted file untouched, honoured, and the agent's properties still there.
    assert_eq!(std::fs::read_to_string(&mounted).unwrap(), MOUNTED);
    wait_for(
        "the master's REST server (the mounted file's spark.master.rest.enabled)",
        Duration::from_secs(60),
        || http_get(&master_ip, 6066, "/").map(|_| ()),
    );
    let (status, body) = http_get(&master_ip, 8080, "/metrics/master/prometheus/").unwrap();
    assert!(
        status == 200 && body.contains("master_"),
        "the agent's Prometheus properties for the mounted file did not reach the master: {status} {body}"
    );
    assert!(
        master.logs().contains("CONFTEST-LOG INFO Master:"),
        "the master does not log with the user's log4j2.properties:\n{}",
        master.logs()
    );
    let text = inspect(&master.name);
    assert!(
        text.contains(
            "written to this overlay because /opt/spark/conf/spark-defaults.conf is mounted"
        ),
        "{text}"
    );
    assert!(
        row(&text, "spark.master.rest.enabled")
            .contains("(yours: /tmp/spark/conf/spark-defaults.conf:"),
        "{text}"
    );
    assert!(
        row(&text, "spark.metrics.conf.*.sink.prometheusServlet.class")
            .contains("(sparkvisor: derived env SPARK_METRICS_ENABLED"),
        "{text}"
    );
    assert!(
        master.logs().contains("is mounted (a file you mount is read, never written): rendering the config into SPARK_CONF_DIR=/tmp/spark/conf"),
        "{}",
        master.logs()
    );

    // Restarted twice, the worker's conf files come back the same: no duplicates, no loss.
    for n in 1..=2 {
        docker(&["restart", "-t", "20", &worker.name]);
        wait_worker_with_users_sizes(&master_ip, &format!("the worker after restart {n}"));
        assert_eq!(
            cat(&worker.name, "/opt/spark/conf/spark-defaults.conf"),
            defaults,
            "restart {n}"
        );
        assert_eq!(
            cat(&worker.name, "/opt/spark/conf/spark-env.sh"),
            env,
            "restart {n}"
        );
    }
    drop(worker);

    // A conf dir mounted empty, seeded from conf.default as bitnami's image did.
    let seeded_dir = empty_dir_for_anyone();
    let seed_mount = format!("{}:/opt/spark/conf", seeded_dir.display());
    let seeded = Container::run(
        "confseed",
        &[
            &net,
            "-e",
            "SPARK_MODE=worker",
            "-e",
            "SPARK_MASTER_URL=spark://nowhere.invalid:7077",
            "-v",
            &seed_mount,
        ],
        image,
        &[],
    );
    wait_for("the seeded conf dir", Duration::from_secs(60), || {
        std::fs::read_to_string(seeded_dir.join("spark-defaults.conf"))
            .ok()
            .filter(|t| t.contains("<<< sparkvisor"))
            .ok_or_else(|| "not written yet".to_string())
    });
    let text = std::fs::read_to_string(seeded_dir.join("spark-defaults.conf")).unwrap();
    assert!(
        text.ends_with("spark.conftest.seeded from-conf-default\n"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(seeded_dir.join("fairscheduler.xml")).unwrap(),
        "<allocations/>\n"
    );
    let job = submit(&seeded.name, &["--master", "local[1]"]);
    assert_eq!(job["seeded"], "from-conf-default", "{job}");
    drop(seeded);
    let _ = std::fs::remove_dir_all(&seeded_dir);
}

/// An empty host directory any container user can write (the image's uid 185 writes its conf).
fn empty_dir_for_anyone() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(unique("confdir"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}
