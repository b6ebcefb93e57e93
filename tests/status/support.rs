#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Shared helpers of the status socket tests: an in-memory [`Backend`] (a unit of the server, not of
//! supervision), a server on a unique temp socket, and a curl wrapper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sparkvisor::status::wire::*;
use sparkvisor::status::{serve, Backend, Server, ServerOptions};

/// Services kept in memory; control actions change them the way a supervisor would.
pub struct FakeBackend {
    pub services: Mutex<Vec<ServiceStatus>>,
    pub followers: Mutex<Vec<Sender<LogLine>>>,
    pub log: Mutex<Vec<LogLine>>,
    pub next_pid: Mutex<u32>,
}

pub fn service(name: &str, pid: u32) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        state: ServiceState::Ready,
        pid: Some(pid),
        started_at: Some(1_700_000_000),
        uptime_secs: Some(65),
        restarts: 0,
        last_exit: None,
        ready: true,
        healthy: None,
        critical: true,
        required: true,
        oom_kills: Some(0),
    }
}

impl FakeBackend {
    pub fn new(names: &[&str]) -> Arc<Self> {
        let services = names
            .iter()
            .enumerate()
            .map(|(i, n)| service(n, 100 + i as u32))
            .collect();
        Arc::new(Self {
            services: Mutex::new(services),
            followers: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            next_pid: Mutex::new(1000),
        })
    }

    /// Appends a line and sends it to every follower.
    pub fn emit(&self, service: &str, message: &str) {
        let line = LogLine {
            time: 1.5,
            service: service.into(),
            stream: Stream::Stdout,
            message: message.into(),
        };
        self.log.lock().unwrap().push(line.clone());
        self.followers
            .lock()
            .unwrap()
            .retain(|tx| tx.send(line.clone()).is_ok());
    }

    /// Changes one service in place.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut ServiceStatus)) {
        let mut services = self.services.lock().unwrap();
        f(services.iter_mut().find(|s| s.name == name).unwrap());
    }

    /// Closes every follow stream (as the supervisor does at shutdown).
    pub fn end_follows(&self) {
        self.followers.lock().unwrap().clear();
    }
}

impl Backend for FakeBackend {
    fn status(&self) -> Result<Status, ApiError> {
        Ok(Status {
            version: "test".into(),
            node: Node {
                hostname: "node1".into(),
                fqdn: "node1.cluster.local".into(),
                role: "worker".into(),
            },
            resources: serde_json::json!({"host_cpus": 2, "memory_limit": 1073741824u64}),
            sizing: serde_json::json!({"worker_cores": {"value": 2, "source": {"kind": "default"}}}),
            services: self.services.lock().unwrap().clone(),
            agent: Agent {
                pid: std::process::id(),
                rss_bytes: 2 << 20,
                zombies_reaped: 7,
                started_at: 1_700_000_000,
                oom_kills_total: Some(0),
                last_reload: None,
            },
        })
    }

    fn control(&self, name: &str, action: Action) -> Result<ServiceStatus, ApiError> {
        let mut services = self.services.lock().unwrap();
        let s = services
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| ApiError::unknown_service(name))?;
        let mut next_pid = self.next_pid.lock().unwrap();
        match action {
            Action::Stop => {
                s.state = ServiceState::Stopped;
                s.pid = None;
                s.ready = false;
                s.required = false;
            }
            Action::Start | Action::Restart => {
                *next_pid += 1;
                s.pid = Some(*next_pid);
                s.state = ServiceState::Ready;
                s.ready = true;
                s.required = true;
                if action == Action::Restart {
                    s.restarts += 1;
                }
            }
            Action::Signal(n) => {
                if s.pid.is_none() {
                    return Err(ApiError::conflict(format!("{name} is not running")));
                }
                s.last_exit = Some(LastExit {
                    code: None,
                    signal: Some(n),
                });
            }
        }
        Ok(s.clone())
    }

    fn logs(&self, service: Option<&str>, lines: usize) -> Result<Vec<LogLine>, ApiError> {
        let all: Vec<LogLine> = self
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| service.is_none_or(|s| s == l.service))
            .cloned()
            .collect();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }

    fn follow(&self, _service: Option<&str>) -> Result<Receiver<LogLine>, ApiError> {
        let (tx, rx) = mpsc::channel();
        self.followers.lock().unwrap().push(tx);
        Ok(rx)
    }
}

/// A server on a socket in its own temp dir (world-traversable so other uids can reach it).
/// Fields drop in order: the server (removing its socket) before the directory, and the share of
/// the test process (its threads are counted by `idle`) last.
pub struct TestServer {
    pub server: Option<Server>,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
    pub process: Option<std::sync::RwLockReadGuard<'static, ()>>,
}

pub fn start(backend: Arc<dyn Backend>, tweak: impl FnOnce(&mut ServerOptions)) -> TestServer {
    let process = crate::common::process_shared();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let socket = dir.path().join("run").join("sparkvisor.sock");
    let mut opts = ServerOptions::new(&socket);
    tweak(&mut opts);
    let server = serve(backend, opts).unwrap();
    TestServer {
        server: Some(server),
        socket,
        dir,
        process,
    }
}

/// `curl --unix-socket SOCKET -s -o - -w '\n%{http_code}' ARGS... http://localhost/PATH`:
/// returns (HTTP status, body).
pub fn curl(socket: &Path, args: &[&str], path: &str) -> (u16, String) {
    curl_as(None, socket, args, path)
}

/// As [`curl`], run as another uid/gid through `setpriv` when `uid` is given.
pub fn curl_as(uid: Option<u32>, socket: &Path, args: &[&str], path: &str) -> (u16, String) {
    let mut cmd = match uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
                "curl".into(),
            ]);
            c
        }
        None => Command::new("curl"),
    };
    let out = cmd
        .arg("--unix-socket")
        .arg(socket)
        .args([
            "-s",
            "-S",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .arg(format!("http://localhost{path}"))
        .output()
        .unwrap();
    parse_curl(&out)
}

fn parse_curl(out: &Output) -> (u16, String) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl gave no status: {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, body.to_string())
}

/// The sparkvisor binary, run with `SPARKVISOR_SOCKET` pointing at `socket`.
pub fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(crate::common::bin())
        .env("SPARKVISOR_SOCKET", socket)
        .env_remove("NO_COLOR")
        .args(args)
        .output()
        .unwrap()
}

#[allow(unused_imports)] // each test file uses a different subset
pub use crate::common::{has_command, is_root, require};

/// Polls `cond` every 5 ms until it holds (true) or `timeout` passes (false).
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    crate::common::poll(timeout, Duration::from_millis(5), || cond().then_some(())).is_some()
}

/// A real agent (`sparkvisor run --role R`) with a role written into a temp dir, its socket in
/// that dir (made world-traversable so other uids can reach the socket).
pub struct RealAgent {
    pub child: std::process::Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl RealAgent {
    /// Starts the agent with `role_yaml` as role `r`; `@WORK@` in it becomes a work directory.
    /// With `pid1`, the agent is PID 1 of a new PID namespace (`unshare`, root only).
    pub fn start(role_yaml: &str, pid1: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sv-status-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        for sub in ["roles", "templates", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let work = dir.path().join("work");
        std::fs::write(
            dir.path().join("roles").join("r.yaml"),
            role_yaml.replace("@WORK@", &work.display().to_string()),
        )
        .unwrap();
        let socket = dir.path().join("agent.sock");
        let mut cmd = crate::common::sparkvisor(pid1);
        cmd.args(["run", "--role", "r"])
            .env("SPARKVISOR_ROLES", dir.path().join("roles"))
            .env("SPARKVISOR_TEMPLATES", dir.path().join("templates"))
            .env("SPARKVISOR_SOCKET", &socket)
            .env("SPARK_HOME", dir.path().join("spark-home"))
            .env_remove("SPARKVISOR_ROLE")
            .env_remove("SPARK_MODE")
            .env_remove("SPARKVISOR_CONFIG")
            .env_remove("SPARKVISOR_CONFIGMETA")
            .env_remove("SPARKVISOR_METRICS_ADDR")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("out.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err.log")).unwrap());
        let child = cmd.spawn().unwrap();
        let agent = Self { child, socket, dir };
        agent.wait(Duration::from_secs(30), "the status socket", || {
            agent.socket.exists() && curl(&agent.socket, &[], "/v1/health").0 == 200
        });
        agent
    }

    pub fn work(&self, name: &str) -> PathBuf {
        self.dir.path().join("work").join(name)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default()
    }

    /// Polls `cond` until it holds; panics with the agent's stderr after `limit`.
    pub fn wait(&self, limit: Duration, what: &str, cond: impl FnMut() -> bool) {
        assert!(
            wait_for(limit, cond),
            "timed out waiting for {what}\nagent stderr:\n{}",
            self.stderr()
        );
    }

    /// GET a JSON document.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = curl(&self.socket, &[], path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The pid of the agent process itself as this namespace sees it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RealAgent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM first, so the agent stops its services and removes its socket.
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            if !wait_for(Duration::from_secs(10), || {
                matches!(self.child.try_wait(), Ok(Some(_)))
            }) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Threads of a process (`Threads:` in /proc/PID/status).
pub fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
