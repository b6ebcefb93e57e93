//! Shared harness for the Docker tests: prerequisites, one image build per run (cached by content hash
//! in `docker/build-image.sh`), compose projects with unique names that are always torn down, waiting
//! on conditions with deadlines, and small HTTP/JSON helpers that talk to container IPs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

#[allow(unused_imports)] // each test file uses a different subset
pub use crate::common::{alive_workers, http_get, http_json, master_json, repo};

/// Checks root and a reachable Docker engine. Missing: panics under `CI=true`, else prints a
/// "skipped" line and returns false.
pub fn prerequisites(test: &str) -> bool {
    let missing = if !crate::common::is_root() {
        Some("needs root")
    } else if !Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        Some("needs a running Docker engine")
    } else if compose_command().is_none() {
        Some("needs docker compose (v2 plugin) or docker-compose (v1)")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) => crate::common::require(false, &format!("{test}: {why}")),
    }
}

/// The image every test uses, built once per test binary by `docker/build-image.sh`.
pub fn image() -> String {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let out = Command::new(repo().join("docker/build-image.sh"))
                .current_dir(repo())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("docker/build-image.sh: {e}"))?;
            if !out.status.success() {
                return Err(format!("docker/build-image.sh failed: {}", out.status));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The ZooKeeper image built from the Spark image under test (docker/build-zookeeper-image.sh).
pub fn zookeeper_image(spark_image: &str) -> String {
    let out = Command::new(repo().join("docker/build-zookeeper-image.sh"))
        .arg(spark_image)
        .current_dir(repo())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("docker/build-zookeeper-image.sh: {e}"));
    assert!(out.status.success(), "build-zookeeper-image.sh failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker compose` (v2) when available, else `docker-compose --compatibility` (v1 honours the
/// file's `deploy.resources.limits` only in compatibility mode).
pub fn compose_command() -> Option<Vec<String>> {
    static CMD: OnceLock<Option<Vec<String>>> = OnceLock::new();
    CMD.get_or_init(|| {
        let ok = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if ok(&["docker", "compose", "version"]) {
            Some(vec!["docker".into(), "compose".into()])
        } else if ok(&["docker-compose", "version"]) {
            Some(vec!["docker-compose".into(), "--compatibility".into()])
        } else {
            None
        }
    })
    .clone()
}

/// A Docker network (created by the test) removed when dropped: declare it before the containers
/// on it, so that they are dropped (removed) first.
pub struct Network(pub String);

impl Network {
    /// Creates a bridge network with a [`unique`] name.
    pub fn new(what: &str) -> Network {
        let network = Network(unique(what));
        docker(&["network", "create", &network.0]);
        network
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A unique name for this process and call: `svt-<pid>-<n>-<what>`.
pub fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "svt{}x{}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        what
    )
}

/// Runs a command, returning its output (never panics on a non-zero exit).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `docker ARGS` and returns stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = run(Command::new("docker").args(args));
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker exec CONTAINER ARGS`: (exit code, stdout, stderr).
pub fn exec(container: &str, args: &[&str]) -> (i32, String, String) {
    let out = run(Command::new("docker").arg("exec").arg(container).args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Polls `probe` every 250 ms until it yields a value or `timeout` passes; panics naming `what`
/// with the last observation.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let mut last = String::new();
    let found = crate::common::poll(timeout, Duration::from_millis(250), || {
        probe().map_err(|e| last = e).ok()
    });
    found.unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}; last: {last}"))
}

/// A container's IP on its (first) network.
pub fn container_ip(container: &str) -> String {
    docker(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        container,
    ])
    .split_whitespace()
    .next()
    .unwrap_or_default()
    .to_string()
}

/// `sparkvisor status --json` inside a container.
pub fn agent_status(container: &str) -> Result<Value, String> {
    let (code, out, err) = exec(container, &["sparkvisor", "status", "--json"]);
    if code != 0 {
        return Err(format!(
            "sparkvisor status in {container}: exit {code}: {err}"
        ));
    }
    serde_json::from_str(&out).map_err(|e| format!("status JSON from {container}: {e}: {out}"))
}

/// The service entry named `name` in a status document.
pub fn service<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

/// Pids (in the container's PID namespace) of processes whose command line contains `pattern`.
pub fn pids_matching(container: &str, pattern: &str) -> Vec<u32> {
    let (_, out, _) = exec(container, &["pgrep", "-f", pattern]);
    out.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// `/proc/<pid>/status` of a process in the container, as field → value.
pub fn proc_status_in(container: &str, pid: u32) -> HashMap<String, String> {
    let (_, out, _) = exec(container, &["cat", &format!("/proc/{pid}/status")]);
    crate::common::status_fields(&out)
}

/// One field of [`proc_status_in`] (empty when missing).
pub fn proc_field(status: &HashMap<String, String>, field: &str) -> String {
    status.get(field).cloned().unwrap_or_default()
}

/// The master's `/json/` read inside its container (`curl` there), for addresses the host cannot
/// reach (a Swarm overlay network).
pub fn master_json_in(master: &str) -> Result<Value, String> {
    let (code, out, err) = exec(master, &["curl", "-sf", "http://127.0.0.1:8080/json/"]);
    if code != 0 {
        return Err(format!("curl in the master: {code}: {err}"));
    }
    serde_json::from_str(&out).map_err(|e| format!("master /json/: {e}: {out}"))
}

/// A compose project from `docker/compose.yaml` with a unique name, torn down (containers, network,
/// volumes) when dropped, also when the test panics.
pub struct Project {
    /// The project name.
    pub name: String,
    image: String,
    /// `-f` files, in order.
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

// `up` and `down` of different projects are serialised: they are short next to the tests, and it
// keeps two tests from competing for the 2 cores while both pull up JVMs at once.
static COMPOSE_LOCK: Mutex<()> = Mutex::new(());

impl Project {
    /// Brings the project up (`up -d`) with `image`; host ports are random (tests use container IPs).
    /// The agents start as root (tests/fixtures/compose-as-root.yaml): the cluster tests check the
    /// per-service privilege drop of a root agent.
    pub fn up(what: &str, image: &str) -> Project {
        let files = ["docker/compose.yaml", "tests/fixtures/compose-as-root.yaml"];
        Project::up_files(what, image, &files, &[])
    }

    /// Brings up the compose file `file` (relative to the repo) as a user does, with `image` and
    /// extra environment for compose's variable substitution (e.g. `SPARKVISOR_ZK_IMAGE`).
    pub fn up_file(what: &str, image: &str, file: &str, env: &[(&str, &str)]) -> Project {
        Project::up_files(what, image, &[file], env)
    }

    /// Brings up the compose files `files` (relative to the repo, later ones override earlier
    /// ones) with `image` and extra environment for compose's variable substitution.
    pub fn up_files(what: &str, image: &str, files: &[&str], env: &[(&str, &str)]) -> Project {
        let project = Project {
            name: unique(what),
            image: image.to_string(),
            files: files.iter().map(|f| repo().join(f)).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let out = {
            let _guard = COMPOSE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            run(project.compose().args(["up", "-d", "--no-build"]))
        };
        assert!(
            out.status.success(),
            "compose up {} failed: {}",
            project.name,
            String::from_utf8_lossy(&out.stderr)
        );
        project
    }

    /// A compose command for this project (file, name, image and random host ports set).
    pub fn compose(&self) -> Command {
        let cmd_line = compose_command().unwrap_or_default();
        let mut cmd = Command::new(&cmd_line[0]);
        cmd.args(&cmd_line[1..]).arg("-p").arg(&self.name);
        for file in &self.files {
            cmd.arg("-f").arg(file);
        }
        cmd.env("SPARKVISOR_IMAGE", &self.image)
            .env("SPARK_MASTER_UI_PORT", "0")
            .env("NOTEBOOK_PORT", "0")
            .env("SPARK_HISTORY_UI_PORT", "0")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// The container id of a compose service.
    pub fn container(&self, service: &str) -> String {
        let out = run(self.compose().args(["ps", "-q", service]));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            !id.is_empty(),
            "no container for service {service} in {}",
            self.name
        );
        id
    }

    /// Logs of a compose service (for failure messages).
    pub fn logs(&self, service: &str) -> String {
        let out = run(self
            .compose()
            .args(["logs", "--no-color", "--tail", "80", service]));
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = run(self.compose().args(["config", "--services"]));
            for s in String::from_utf8_lossy(&out.stdout).lines() {
                eprintln!("---- logs of {s} ({}):\n{}", self.name, self.logs(s));
            }
        }
        let _guard = COMPOSE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .compose()
            .args(["down", "-v", "--remove-orphans", "-t", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A single `docker run -d` container removed (forcibly) when dropped.
pub struct Container {
    /// Container name.
    pub name: String,
}

impl Container {
    /// `docker run -d --name <unique> ARGS IMAGE CMD...`.
    pub fn run(what: &str, args: &[&str], image: &str, cmd: &[&str]) -> Container {
        let name = unique(what);
        let mut all = vec!["run", "-d", "--name", name.as_str()];
        all.extend_from_slice(args);
        all.push(image);
        all.extend_from_slice(cmd);
        docker(&all);
        Container { name }
    }

    /// `docker run -d --name NAME ARGS IMAGE CMD...` with a name chosen by the caller (e.g. one
    /// that other containers on a network resolve); make it unique with [`unique`].
    pub fn run_named(name: &str, args: &[&str], image: &str, cmd: &[&str]) -> Container {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(args);
        all.push(image);
        all.extend_from_slice(cmd);
        docker(&all);
        Container {
            name: name.to_string(),
        }
    }

    /// `docker inspect --format FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "--format", format, &self.name])
    }

    /// Combined stdout+stderr of the container.
    pub fn logs(&self) -> String {
        let out = run(Command::new("docker").args(["logs", &self.name]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- logs of {}:\n{}", self.name, self.logs());
        }
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes `text` to a fresh file under a unique temp dir and returns its path.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("files"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// `docker ARGS`: (exit code, stdout, stderr), whatever the exit code.
pub fn run_capture(args: &[&str]) -> (i32, String, String) {
    let out = run(Command::new("docker").args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
