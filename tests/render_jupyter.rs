#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The notebook role's rendered Jupyter config and PySpark kernel spec are accepted by a real
//! Jupyter: it listens where the config says, requires the token from the secrets, and lists the
//! `pyspark` kernel wired to the master URL.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, has_command, http_get, require, KillOnDrop};
use sparkvisor::config::role::load_role;
use sparkvisor::config::{Secret, Source, Sourced};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, render_role, write_files};

/// (status line, body)
#[test]
fn jupyter_accepts_the_rendered_config_and_kernel() {
    if !require(has_command("jupyter"), "jupyter not found") {
        return;
    }
    let repo = common::repo();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let role = load_role(&repo.join("roles"), "notebook").unwrap();
    let mut config = sample_config(&role);
    let d = |p: &str| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(&path).unwrap();
        path.display().to_string()
    };
    for (k, v) in [
        ("spark.conf_dir", d("conf")),
        ("notebook.config_dir", d("jupyter")),
        ("notebook.state_dir", d("state")),
        ("notebook.root_dir", d("notebooks")),
        ("notebook.ip", "127.0.0.1".to_string()),
        ("notebook.port", port.to_string()),
        ("spark.master_url", "spark://m1:7077,m2:7077".to_string()),
    ] {
        config
            .settings
            .insert(k.into(), Sourced::new(v, Source::Default));
    }
    let token = "tok-\"quoted\"-'and'-\\-é";
    config.secrets.insert(
        "notebook.token".into(),
        Secret::new(token.into(), Source::Default),
    );
    let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
    let files: Vec<_> = render_role(&role, &ctx, &repo.join("templates"))
        .unwrap()
        .into_iter()
        .map(|mut f| {
            f.owner = None;
            f
        })
        .collect();
    let server_config = files
        .iter()
        .find(|f| f.template.ends_with("jupyter_server_config.json"))
        .unwrap();
    assert!(server_config.secret, "holds the token: must be 0600");
    write_files(&files, None).unwrap();
    let services = expand_services(&role, &ctx).unwrap();
    let notebook = &services["spark-notebook"];
    let log = std::fs::File::create(dir.path().join("jupyter.log")).unwrap();
    // The test runs as root; in the image the service runs as the spark user.
    let _jupyter = KillOnDrop(
        Command::new(&notebook.command[0])
            .args(&notebook.command[1..])
            .arg("--allow-root")
            .envs(&notebook.environment)
            .current_dir(notebook.working_dir.as_deref().unwrap())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let encoded: String = token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let specs = loop {
        if let Some((status, body)) = http_get(port, &format!("/api/kernelspecs?token={encoded}")) {
            if status.contains(" 200") {
                break body;
            }
        }
        if Instant::now() > deadline {
            panic!(
                "jupyter did not answer\n{}",
                std::fs::read_to_string(dir.path().join("jupyter.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Without the token: refused.
    let (status, _) = http_get(port, "/api/kernelspecs").unwrap();
    assert!(status.contains(" 403"), "{status}");
    let specs: serde_json::Value = serde_json::from_str(&specs).unwrap();
    let pyspark = &specs["kernelspecs"]["pyspark"]["spec"];
    assert_eq!(pyspark["display_name"], "PySpark (spark://m1:7077,m2:7077)");
    assert_eq!(
        pyspark["env"]["PYSPARK_SUBMIT_ARGS"],
        "--master spark://m1:7077,m2:7077 pyspark-shell"
    );
}
