#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The rendered Spark files work with real Spark: a master and a worker started with the built-in
//! roles' expanded commands read spark-env.sh (cores, memory from the sizing) and spark-defaults.conf
//! (RPC authentication with a secret full of special characters), and the worker registers.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_get, require_spark, KillOnDrop};
use sparkvisor::config::role::load_role;
use sparkvisor::config::{Secret, Source, Sourced};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, render_role, write_files};

fn start(service: &sparkvisor::config::ServiceSpec, log: &Path) -> KillOnDrop {
    let log = std::fs::File::create(log).unwrap();
    KillOnDrop(
        Command::new(&service.command[0])
            .args(&service.command[1..])
            .envs(&service.environment)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn master_and_worker_run_on_the_rendered_files() {
    let Some(home) = require_spark() else {
        return;
    };
    let repo = common::repo();
    let dir = tempfile::tempdir().unwrap();
    let (master_port, master_ui, worker_ui) = (free_port(), free_port(), free_port());
    let role = load_role(&repo.join("roles"), "all-in-one").unwrap();
    let mut config = sample_config(&role);
    let set = |c: &mut sparkvisor::config::ResolvedConfig, k: &str, v: String| {
        c.settings
            .insert(k.into(), Sourced::new(v, Source::Default));
    };
    let d = |p: &str| dir.path().join(p).display().to_string();
    set(&mut config, "spark.home", home.display().to_string());
    set(&mut config, "spark.conf_dir", d("conf"));
    set(&mut config, "spark.master_host", "127.0.0.1".into());
    set(&mut config, "spark.local_hostname", "127.0.0.1".into());
    set(&mut config, "spark.public_dns", "127.0.0.1".into());
    set(&mut config, "spark.master_port", master_port.to_string());
    set(
        &mut config,
        "spark.master_webui_port",
        master_ui.to_string(),
    );
    set(
        &mut config,
        "spark.worker_webui_port",
        worker_ui.to_string(),
    );
    set(
        &mut config,
        "spark.master_url",
        format!("spark://127.0.0.1:{master_port}"),
    );
    set(&mut config, "spark.work_dir", d("work"));
    set(&mut config, "spark.local_dirs", d("local"));
    set(&mut config, "spark.log_dir", d("logs"));
    config.spark_conf.insert(
        "spark.authenticate".into(),
        Sourced::new("true".into(), Source::Default),
    );
    config.secrets.insert(
        "spark.authenticate.secret".into(),
        Secret::new("s3cr=t: #!\\ 'q\" $(x) é".into(), Source::Default),
    );
    let sizing = sample_sizing(); // 2 cores, 2560 MiB for executors, 512 MiB daemon heap
    let ctx = build_context(&config, &sample_resources(), Some(&sizing));
    let files = render_role(&role, &ctx, &repo.join("templates")).unwrap();
    // Only Spark's own files (the Jupyter ones render under the conf dir's jupyter/).
    let spark_files: Vec<_> = files
        .into_iter()
        .filter(|f| {
            f.path.starts_with(dir.path()) && !f.path.to_string_lossy().contains("/jupyter/")
        })
        .map(|mut f| {
            f.owner = None; // run as whoever runs the test
            f
        })
        .collect();
    assert_eq!(spark_files.len(), 3);
    write_files(&spark_files, None).unwrap();
    let services = expand_services(&role, &ctx).unwrap();

    let _master = start(&services["spark-master"], &dir.path().join("master.log"));
    let _worker = start(&services["spark-worker"], &dir.path().join("worker.log"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((_, body)) = http_get("127.0.0.1", master_ui, "/json/") {
            if let Ok(state) = serde_json::from_str::<serde_json::Value>(&body) {
                let alive: Vec<&serde_json::Value> = state["workers"]
                    .as_array()
                    .map(|w| w.iter().filter(|w| w["state"] == "ALIVE").collect())
                    .unwrap_or_default();
                if state["status"] == "ALIVE" && alive.len() == 1 {
                    assert_eq!(alive[0]["cores"], 2, "SPARK_WORKER_CORES from the sizing");
                    assert_eq!(
                        alive[0]["memory"], 2560,
                        "SPARK_WORKER_MEMORY from the sizing"
                    );
                    assert_eq!(alive[0]["host"], "127.0.0.1", "SPARK_LOCAL_HOSTNAME");
                    break;
                }
            }
        }
        if Instant::now() > deadline {
            let log = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap_or_default();
            panic!(
                "worker did not register\n--- master\n{}\n--- worker\n{}",
                log("master.log"),
                log("worker.log")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // log4j2.properties sends Spark's log to the console (our captured stdout/stderr).
    let master_log = std::fs::read_to_string(dir.path().join("master.log")).unwrap();
    assert!(
        master_log.contains("Master: Starting Spark master"),
        "{master_log}"
    );
}
