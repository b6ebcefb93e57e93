#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The notebook role's rendered Jupyter config and PySpark kernel spec are accepted by a real
//! Jupyter: it listens where the config says, requires the token from the secrets, and lists the
//! `pyspark` kernel wired to the master URL. An empty `notebook.token` secret must not turn
//! Jupyter's authentication off: an empty secret is unset, conditions test raw values, and a real
//! Jupyter started on the rendered config refuses unauthenticated API calls.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, has_command, http_get, require, KillOnDrop};
use sparkvisor::config::role::{load_role, LoadedRole};
use sparkvisor::config::{Secret, Source, Sourced};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, render_role, write_files, RenderedFile};

/// The notebook role rendered into a temp dir, its Jupyter listening on `port` of 127.0.0.1.
struct Notebook {
    dir: tempfile::TempDir,
    port: u16,
    role: LoadedRole,
    context: serde_json::Value,
    files: Vec<RenderedFile>,
}

impl Notebook {
    /// Renders the role with the sample config, `settings` on top and `token` as the secret.
    fn render(settings: &[(&str, &str)], token: &str) -> Notebook {
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
        let paths = [
            ("spark.conf_dir", d("conf")),
            ("notebook.state_dir", d("state")),
            ("notebook.root_dir", d("notebooks")),
            ("notebook.ip", "127.0.0.1".to_string()),
            ("notebook.port", port.to_string()),
        ];
        let settings = settings.iter().map(|&(k, v)| (k, v.to_string()));
        for (k, v) in paths.into_iter().chain(settings) {
            config
                .settings
                .insert(k.into(), Sourced::new(v, Source::Default));
        }
        config.secrets.insert(
            "notebook.token".into(),
            Secret::new(token.into(), Source::Default),
        );
        let context = build_context(&config, &sample_resources(), Some(&sample_sizing()));
        let files = render_role(&role, &context, &repo.join("templates"))
            .unwrap()
            .into_iter()
            .map(|mut f| {
                f.owner = None;
                f
            })
            .collect();
        Notebook {
            dir,
            port,
            role,
            context,
            files,
        }
    }

    /// The rendered file from the template ending in `name`.
    fn file(&self, name: &str) -> &RenderedFile {
        self.files
            .iter()
            .find(|f| f.template.ends_with(name))
            .unwrap()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("jupyter.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Writes the files and starts the role's `spark-notebook` command, output in the log.
    fn start(&self) -> KillOnDrop {
        write_files(&self.files, None).unwrap();
        let services = expand_services(&self.role, &self.context).unwrap();
        let notebook = &services["spark-notebook"];
        let log = std::fs::File::create(self.log_path()).unwrap();
        // The test runs as root; in the image the service runs as the spark user.
        KillOnDrop(
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
        )
    }

    /// The body of the first `200` answer to GET `path`, within 90 s.
    fn wait_ok(&self, path: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok((status, body)) = http_get("127.0.0.1", self.port, path) {
                if status == 200 {
                    return body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "jupyter did not answer\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn jupyter_accepts_the_rendered_config_and_kernel() {
    if !require(has_command("jupyter"), "jupyter not found") {
        return;
    }
    let token = "tok-\"quoted\"-'and'-\\-é";
    let nb = Notebook::render(&[("spark.master_url", "spark://m1:7077,m2:7077")], token);
    assert!(
        nb.file("jupyter_server_config.json").secret,
        "holds the token: must be 0600"
    );
    let _jupyter = nb.start();
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
    let specs = nb.wait_ok(&format!("/api/kernelspecs?token={encoded}"));
    // Without the token: refused.
    let (status, _) = http_get("127.0.0.1", nb.port, "/api/kernelspecs").unwrap();
    assert_eq!(status, 403);
    let specs: serde_json::Value = serde_json::from_str(&specs).unwrap();
    let pyspark = &specs["kernelspecs"]["pyspark"]["spec"];
    assert_eq!(pyspark["display_name"], "PySpark (spark://m1:7077,m2:7077)");
    assert_eq!(
        pyspark["env"]["PYSPARK_SUBMIT_ARGS"],
        "--master spark://m1:7077,m2:7077 pyspark-shell"
    );
}

#[test]
fn an_empty_token_keeps_jupyter_authenticated() {
    // An empty optional setting is not "set" either (it rendered a stray value before).
    let nb = Notebook::render(&[("spark.daemon_java_opts", "")], "");
    let server_config = nb.file("jupyter_server_config.json");
    assert!(
        !server_config.contents.contains("\"token\""),
        "an empty token must not be rendered:\n{}",
        server_config.contents
    );
    let env_sh = nb.file("spark-env.sh");
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
    let _jupyter = nb.start();
    // `/api` (the version) answers without authentication once the server is up.
    nb.wait_ok("/api");
    for path in ["/api/contents", "/api/kernels", "/api/terminals"] {
        let (status, _) = http_get("127.0.0.1", nb.port, path).unwrap();
        assert!(
            status == 403,
            "{path} must refuse an unauthenticated call, got {status}\n{}",
            nb.log()
        );
    }
    let log = nb.log();
    assert!(!log.contains("All authentication is disabled"), "{log}");
}

/// `render --role notebook` with `notebook.authentication` set to `value` (unset when None):
/// its stderr.
fn render_warnings(value: Option<&str>) -> String {
    let repo = common::repo();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(common::bin());
    cmd.args(["render", "--role", "notebook", "--out"])
        .arg(out.path())
        .env("SPARKVISOR_ROLES", repo.join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo.join("templates"))
        .env_remove("SPARKVISOR_CONFIG")
        .env_remove("SPARKVISOR_CONFIGMETA")
        .env_remove("SPARKVISOR_SETTINGS");
    if let Some(v) = value {
        cmd.env(
            "SPARKVISOR_SETTINGS",
            format!("{{notebook.authentication: {v}}}"),
        );
    }
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{value:?}: {stderr}");
    stderr
}

/// Only `notebook.authentication: none` turns Jupyter's authentication off, and then every
/// rendering of the role warns; any other value keeps the token (and warns that it is unknown).
/// A real Jupyter on the `none` config answers unauthenticated API calls and says so itself.
#[test]
fn authentication_is_off_only_when_a_setting_says_so_and_it_warns() {
    assert!(!render_warnings(None).contains("warning"));
    let none = render_warnings(Some("none"));
    assert!(
        none.contains("warning: role notebook: notebook.authentication is \"none\"")
            && none.contains("answers anyone"),
        "{none}"
    );
    let typo = render_warnings(Some("off"));
    assert!(typo.contains("neither \"token\" nor \"none\""), "{typo}");
    let kept = Notebook::render(&[("notebook.authentication", "off")], "t0k");
    let kept = &kept.file("jupyter_server_config.json").contents;
    assert!(kept.contains("\"token\": \"t0k\""), "{kept}");

    let nb = Notebook::render(&[("notebook.authentication", "none")], "t0k");
    let open = &nb.file("jupyter_server_config.json").contents;
    assert!(
        open.contains("\"token\": \"\"") && !open.contains("t0k"),
        "{open}"
    );
    if !require(has_command("jupyter"), "jupyter not found") {
        return;
    }
    let _jupyter = nb.start();
    nb.wait_ok("/api");
    let (status, _) = http_get("127.0.0.1", nb.port, "/api/contents").unwrap();
    assert_eq!(status, 200, "{}", nb.log());
    let log = nb.log();
    assert!(log.contains("All authentication is disabled"), "{log}");
}
