#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! An empty `notebook.token` secret must not turn Jupyter's authentication off: an empty secret is
//! unset, conditions test raw values, and a real Jupyter started on the rendered config refuses
//! unauthenticated API calls.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, has_command, http_get, require, KillOnDrop};
use sparkvisor::config::role::load_role;
use sparkvisor::config::{Secret, Source, Sourced};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, render_role, write_files};

#[test]
fn an_empty_token_keeps_jupyter_authenticated() {
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
        // An empty optional setting is not "set" either (it rendered a stray value before).
        ("spark.daemon_java_opts", String::new()),
    ] {
        config
            .settings
            .insert(k.into(), Sourced::new(v, Source::Default));
    }
    config.secrets.insert(
        "notebook.token".into(),
        Secret::new(String::new(), Source::Default),
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
    assert!(
        !server_config.contents.contains("\"token\""),
        "an empty token must not be rendered:\n{}",
        server_config.contents
    );
    let env_sh = files
        .iter()
        .find(|f| f.template.ends_with("spark-env.sh"))
        .unwrap();
    assert!(
        env_sh
            .contents
            .contains("SPARK_DAEMON_JAVA_OPTS='-XX:ActiveProcessorCount=2'\n"),
        "an empty spark.daemon_java_opts must add nothing:\n{}",
        env_sh.contents
    );
    if !require(has_command("jupyter"), "jupyter not found") {
        return;
    }
    write_files(&files, None).unwrap();
    let services = expand_services(&role, &ctx).unwrap();
    let notebook = &services["spark-notebook"];
    let log_path = dir.path().join("jupyter.log");
    let log = std::fs::File::create(&log_path).unwrap();
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
    // `/api` (the version) answers without authentication once the server is up.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some((status, _)) = http_get(port, "/api") {
            if status.contains(" 200") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "jupyter did not answer\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for path in ["/api/contents", "/api/kernels", "/api/terminals"] {
        let (status, _) = http_get(port, path).unwrap();
        assert!(
            status.contains(" 403"),
            "{path} must refuse an unauthenticated call, got {status}\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(!log.contains("All authentication is disabled"), "{log}");
}
