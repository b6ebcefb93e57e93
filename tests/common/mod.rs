//! Support shared by every integration-test binary (each `tests/<area>/main.rs` declares it):
//! prerequisite checks with the CI=true fail-instead-of-skip rule, waiting on conditions with
//! deadlines, the binary under test, free ports, the Spark prerequisites, and the lock that lets a
//! test hold the test process alone. Area helpers (`*_support`, `<area>/support.rs`) build on these.
#![allow(dead_code)] // each area uses a different subset

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// True when `CI=true`: a missing prerequisite is then a failure, never a skip.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Returns true when the prerequisite holds. Otherwise fails the test under `CI=true`, or prints a
/// "skipped: WHY" line and returns false (the caller returns).
pub fn require(ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!ci(), "prerequisite missing under CI=true: {why}");
    println!("skipped: {why}");
    false
}

/// Skips (returns true) or, under `CI=true`, fails when a prerequisite is missing: [`require`] for
/// callers that return on `true`.
pub fn skip_unless(ok: bool, what: &str) -> bool {
    !require(ok, what)
}

/// True when running as root; otherwise prints why `what` is skipped (fails under `CI=true`).
pub fn require_root(what: &str) -> bool {
    require(is_root(), &format!("{what} needs root"))
}

/// True when the test may create PID namespaces (root and `unshare` present). Otherwise prints why
/// `what` is skipped and returns false, or fails when `CI=true` (CI must run every test).
pub fn require_pid_namespace(what: &str) -> bool {
    let root = is_root();
    let why = if root {
        "unshare(1) not found"
    } else {
        "needs root for PID namespaces"
    };
    require(root && has_command("unshare"), &format!("{what}: {why}"))
}

/// True when the JRE's `keytool` is installed; otherwise skips (fails under `CI=true`).
pub fn require_keytool() -> bool {
    require(has_command("keytool"), "keytool (a JRE) is not installed")
}

/// True when the effective uid is 0 (third field of `Uid:` in /proc/self/status).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                == Some("0")
        })
        .unwrap_or(false)
}

/// True when `name` is an executable on PATH.
pub fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Calls `probe` every `every` until it yields a value or `limit` passes (then one last time).
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return probe();
        }
        std::thread::sleep(every);
    }
}

/// Polls `cond` every 5 ms until it holds; fails the test naming `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let held = poll(limit, Duration::from_millis(5), || cond().then_some(()));
    assert!(held.is_some(), "timed out waiting for {what}");
}

/// The sparkvisor binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sparkvisor")
}

/// A command running the binary under test: as PID 1 of a fresh PID namespace with its own /proc
/// (`--kill-child`: the namespace dies with the test if it fails half-way), or as a plain child.
pub fn sparkvisor(pid1: bool) -> Command {
    if pid1 {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", bin()]);
        cmd
    } else {
        Command::new(bin())
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET to `ip:port` + `path`: (status, body). Errors as text (for `wait_for`).
pub fn http_get(ip: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    let addr: SocketAddr = format!("{ip}:{port}")
        .parse()
        .map_err(|e| format!("{ip}:{port}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(|e| format!("write {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line from {addr}: {head:?}"))?;
    Ok((status, body.to_string()))
}

/// GET and parse a JSON body (status 200 required).
pub fn http_json(ip: &str, port: u16, path: &str) -> Result<Value, String> {
    let (status, body) = http_get(ip, port, path)?;
    if status != 200 {
        return Err(format!("GET {ip}:{port}{path}: status {status}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET {ip}:{port}{path}: bad JSON: {e}"))
}

/// A Spark master's `/json/` from its web UI at `ip:port`.
pub fn master_json(ip: &str, port: u16) -> Result<Value, String> {
    http_json(ip, port, "/json/")
}

/// The master's `/json/` workers that are ALIVE.
pub fn alive_workers(master_json: &Value) -> Vec<Value> {
    master_json["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .filter(|w| w["state"] == "ALIVE")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The text of a `/proc/PID/status` as field → value (both trimmed).
pub fn status_fields(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `/proc/PID/status` of a process of this host, as field → value.
pub fn proc_status(pid: impl std::fmt::Display) -> HashMap<String, String> {
    status_fields(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap())
}

/// A `Cap*` field of a status map as a number.
pub fn cap_field(status: &HashMap<String, String>, field: &str) -> u64 {
    u64::from_str_radix(&status[field], 16).unwrap()
}

/// A child process killed and reaped when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SPARK_HOME = the installed pyspark package directory (it carries the jars and `bin/`).
pub fn spark_home() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .ok()?;
    let home = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && home.join("bin/spark-class").is_file()).then_some(home)
}

/// True when `java -version` runs.
pub fn has_java() -> bool {
    Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SPARK_HOME when pyspark and Java are both there; otherwise skips (or fails under `CI=true`).
pub fn require_spark() -> Option<PathBuf> {
    let home = spark_home();
    (require(home.is_some(), "pyspark (Spark) not found") && require(has_java(), "java not found"))
        .then_some(home)
        .flatten()
}

/// A unique directory under the system temp dir (tagged for debugging), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/sparkvisor-test-TAG-PID-NANOS`.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "sparkvisor-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    /// Writes `NAME` in the directory; returns its path as a string (for environment values).
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `dirs` (roles, templates) under `into` and gives the copies to uid/gid 65534 (nobody),
/// 0755/0644: a root agent refuses role and template files that one of its services could change
/// (docs/reliability.md), and a test whose services run as root (`SPARK_DAEMON_USER=root`, since
/// pyspark lives under /root here) must not configure them with root-owned files. Returns the copies.
pub fn copies_owned_by_nobody(dirs: &[&Path], into: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let name = format!("nobody-{}", dir.file_name().unwrap().to_string_lossy());
        let copy = into.join(name);
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(dir)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "cp -r {}", dir.display());
        let status = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "chown {}", copy.display());
        let status = std::process::Command::new("chmod")
            .args(["-R", "go-w"])
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "chmod {}", copy.display());
        out.push(copy);
    }
    out
}

/// The `*.yaml` files directly under the repo's `dir`, sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every non-empty YAML document of a file, as JSON values; panics naming the file.
pub fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            serde_json::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Runs the JRE's `keytool` with `args`; panics with its stderr when it fails.
pub fn keytool(args: &[&str]) {
    let out = Command::new("keytool")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("keytool: {e}"));
    assert!(
        out.status.success(),
        "keytool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Java stores made by the JRE's `keytool` in `dir`, as a Spark cluster's operator makes them: a
/// JKS keystore (`keystore.jks`: one self-signed RSA key, alias `spark`) and a JKS truststore
/// (`truststore.jks`) holding its certificate, both with `password`. Returns their paths.
pub fn keytool_stores(dir: &Path, password: &str) -> (PathBuf, PathBuf) {
    keytool_stores_of(dir, password, Some("JKS"))
}

/// The same stores as [`keytool_stores`] in keytool's default store type (PKCS#12 since Java 9:
/// `keystore.p12` and `truststore.p12`), written with the JRE's default protection. The
/// exported certificate (DER) is left in `dir/spark.crt`.
pub fn keytool_default_stores(dir: &Path, password: &str) -> (PathBuf, PathBuf) {
    keytool_stores_of(dir, password, None)
}

fn keytool_stores_of(dir: &Path, password: &str, storetype: Option<&str>) -> (PathBuf, PathBuf) {
    let ext = storetype.map_or("p12".to_string(), str::to_lowercase);
    let keystore = dir.join(format!("keystore.{ext}"));
    let truststore = dir.join(format!("truststore.{ext}"));
    let cert = dir.join("spark.crt");
    let (ks, ts, crt) = (
        keystore.to_str().unwrap(),
        truststore.to_str().unwrap(),
        cert.to_str().unwrap(),
    );
    let storetype: &[&str] = match &storetype {
        Some(t) => &["-storetype", t],
        None => &[],
    };
    let genkeypair = [
        "-genkeypair",
        "-alias",
        "spark",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        "7",
        "-dname",
        "CN=spark-cluster",
    ];
    let store = ["-storepass", password, "-noprompt"];
    keytool(
        &[
            &genkeypair[..],
            storetype,
            &["-keystore", ks, "-keypass", password],
            &store,
        ]
        .concat(),
    );
    keytool(&[
        "-exportcert",
        "-alias",
        "spark",
        "-keystore",
        ks,
        "-storepass",
        password,
        "-file",
        crt,
    ]);
    let importcert = [
        "-importcert",
        "-alias",
        "spark",
        "-file",
        crt,
        "-keystore",
        ts,
    ];
    keytool(&[&importcert[..], storetype, &store].concat());
    (keystore, truststore)
}

/// The tests of one binary are threads of one process. A test that inspects the whole process (its
/// threads) holds it alone; a test that adds to what such a test inspects (an in-process status
/// server and its threads) shares it. Everything else needs neither.
static PROCESS: RwLock<()> = RwLock::new(());

thread_local! {
    /// True on the thread of a test holding the process alone: its own shares are no-ops.
    static ALONE: Cell<bool> = const { Cell::new(false) };
}

/// Held by a test that must be the only one using the process; see [`process_alone`].
pub struct ProcessAlone {
    _guard: RwLockWriteGuard<'static, ()>,
}

impl Drop for ProcessAlone {
    fn drop(&mut self) {
        ALONE.with(|alone| alone.set(false));
    }
}

/// Waits until no other test of this binary shares the process, and keeps them out until dropped.
pub fn process_alone() -> ProcessAlone {
    let guard = PROCESS.write().unwrap_or_else(PoisonError::into_inner);
    ALONE.with(|alone| alone.set(true));
    ProcessAlone { _guard: guard }
}

/// A share of the process, held while a test adds threads a [`process_alone`] test would count;
/// `None` on the thread that already holds the process alone.
pub fn process_shared() -> Option<RwLockReadGuard<'static, ()>> {
    if ALONE.with(Cell::get) {
        return None;
    }
    Some(PROCESS.read().unwrap_or_else(PoisonError::into_inner))
}
