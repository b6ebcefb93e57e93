//! Helpers for the supervisor integration tests: a test role in a temp dir, the agent started as a
//! real PID 1 (`unshare --pid --fork --mount-proc`) or as a plain child (then it is a subreaper),
//! and waiting on conditions with deadlines (never sleeps as synchronisation).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::KillOnDrop;
#[allow(unused_imports)] // each test file uses a different subset
pub use crate::common::{is_root, require_pid_namespace, skip_unless, wait_until};

/// A temp dir with `roles/`, `templates/` and `work/` (where services write their files).
pub struct Scene {
    pub dir: tempfile::TempDir,
}

impl Scene {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sv-sup-")
            .tempdir()
            .unwrap();
        for sub in ["roles", "templates", "work"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Self { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// `work/NAME`.
    pub fn work(&self, name: &str) -> PathBuf {
        self.path().join("work").join(name)
    }
    /// Writes `roles/NAME.yaml`; `@WORK@` in the text becomes the work directory.
    pub fn role(&self, name: &str, yaml: &str) {
        let text = yaml.replace("@WORK@", &self.work("").display().to_string());
        fs::write(self.path().join("roles").join(format!("{name}.yaml")), text).unwrap();
    }
    pub fn template(&self, name: &str, text: &str) {
        fs::write(self.path().join("templates").join(name), text).unwrap();
    }
    pub fn read(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.work(name)).ok()
    }
    pub fn exists(&self, name: &str) -> bool {
        self.work(name).exists()
    }
    /// The agent's stderr so far (`err.log`): usable in an [`Agent::wait_for`] condition, which
    /// holds the agent.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.path().join("err.log")).unwrap_or_default()
    }
    /// A command for the agent with this scene's roles, templates, socket and no cgroup surprises.
    pub fn agent(&self, pid1: bool, args: &[&str]) -> Command {
        let mut cmd = crate::common::sparkvisor(pid1);
        cmd.args(args)
            .env("SPARKVISOR_ROLES", self.path().join("roles"))
            .env("SPARKVISOR_TEMPLATES", self.path().join("templates"))
            .env("SPARKVISOR_SOCKET", self.path().join("agent.sock"))
            .env_remove("SPARKVISOR_CONFIGMETA")
            .env("SPARKVISOR_LOG", "debug")
            .env("SPARK_HOME", self.path().join("spark-home"))
            .env_remove("SPARKVISOR_ROLE")
            .env_remove("SPARK_MODE")
            .env_remove("SPARKVISOR_CONFIG")
            .stdin(Stdio::null());
        cmd
    }
    /// Starts the agent with stdout/stderr in `out.log`/`err.log`.
    pub fn start(&self, cmd: &mut Command) -> Agent {
        let out = fs::File::create(self.path().join("out.log")).unwrap();
        let err = fs::File::create(self.path().join("err.log")).unwrap();
        let child = cmd.stdout(out).stderr(err).spawn().unwrap();
        Agent {
            child,
            dir: self.path().to_path_buf(),
        }
    }
}

/// A running agent.
pub struct Agent {
    pub child: Child,
    dir: PathBuf,
}

impl Agent {
    /// The agent's pid as this (outer) namespace sees it: unshare's only child, or the child itself.
    pub fn host_pid(&self, pid1: bool) -> i32 {
        let pid = self.child.id() as i32;
        if !pid1 {
            return pid;
        }
        let mut found = None;
        wait_until(Duration::from_secs(10), "unshare's child", || {
            found = children(pid).first().copied();
            found.is_some()
        });
        found.unwrap()
    }
    pub fn signal(&self, pid1: bool, sig: i32) {
        let pid = self.host_pid(pid1);
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill {pid} {sig}");
    }
    /// Waits for the agent to exit (bounded).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "agent still running after {limit:?}\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    /// Like [`wait_until`], but fails at once when the agent ended, and shows its stderr.
    pub fn wait_for(&mut self, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            let ended = self.child.try_wait().unwrap();
            if ended.is_some() || Instant::now() > deadline {
                panic!(
                    "waiting for {what}: agent {ended:?}\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    pub fn stdout(&self) -> String {
        fs::read_to_string(self.dir.join("out.log")).unwrap_or_default()
    }
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("err.log")).unwrap_or_default()
    }
    /// The exit code (128+signal when killed, as a shell shows it).
    pub fn code(status: ExitStatus) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Direct children of `pid` (from /proc/PID/task/*/children).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    out
}

/// State letter and parent pid of `pid` from /proc/PID/stat.
pub fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True while a process with this pid exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(state_and_parent(pid), Some((s, _)) if s != 'Z')
}

/// Nanoseconds since the epoch written by `date +%s%N` in a file.
pub fn nanos(text: &str) -> u128 {
    text.trim().parse().unwrap()
}

pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// One HTTP GET over the agent's Unix socket; returns the body.
pub fn get(socket: &Path, path: &str) -> String {
    request(socket, "GET", path)
}

/// One HTTP request without a body over the agent's Unix socket; returns the body.
pub fn request(socket: &Path, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Whether [`python_as_nobody`] can run: root, `setpriv` and `/usr/bin/python3`.
pub fn can_run_as_nobody() -> bool {
    is_root() && crate::common::has_command("setpriv") && Path::new("/usr/bin/python3").exists()
}

/// `/usr/bin/python3 -c SCRIPT ARGS...` as uid/gid 65534 without groups (a client of another uid),
/// returned once it printed its `ready` line; killed when dropped.
pub fn python_as_nobody<S: AsRef<OsStr>>(script: &str, args: &[S]) -> KillOnDrop {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["/usr/bin/python3", "-c", script])
        .args(args);
    python_ready(cmd)
}

/// `/usr/bin/python3 -c SCRIPT ARGS...` as this process's uid (the agent's, when the test started
/// it), returned once it printed its `ready` line; killed when dropped.
pub fn python_as_self<S: AsRef<OsStr>>(script: &str, args: &[S]) -> KillOnDrop {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", script]).args(args);
    python_ready(cmd)
}

/// Starts `cmd` and waits for its first stdout line, which must be `ready`.
fn python_ready(mut cmd: Command) -> KillOnDrop {
    let mut child = KillOnDrop(cmd.stdout(Stdio::piped()).spawn().unwrap());
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

/// `sparkvisor health` against the agent socket `socket`.
pub fn health(socket: &Path) -> Output {
    Command::new(crate::common::bin())
        .env("SPARKVISOR_SOCKET", socket)
        .arg("health")
        .output()
        .unwrap()
}
