#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A real OOM kill: the agent runs in a fresh cgroup v1 memory cgroup limited to 64 MiB, a service
//! allocates 200 MiB, the kernel's OOM killer kills it, and `sparkvisor status --json` shows it as
//! an OOM kill of that service (and in the container-wide counter).

use crate::{common, supervisor_support};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use supervisor_support::*;

const LONG: Duration = Duration::from_secs(30);
const MEMORY_V1: &str = "/sys/fs/cgroup/memory";
const LIMIT: &str = "67108864"; // 64 MiB

/// The v1 memory hierarchy, when it is mounted and counts OOM kills (kernel ≥ 4.13).
fn v1_memory_with_oom_counter() -> bool {
    fs::read_to_string(Path::new(MEMORY_V1).join("memory.oom_control"))
        .is_ok_and(|t| t.lines().any(|l| l.starts_with("oom_kill ")))
}

/// A child memory cgroup, emptied and removed on drop (also when the test fails).
struct MemoryCgroup {
    dir: PathBuf,
}

impl MemoryCgroup {
    fn create() -> Self {
        let dir = Path::new(MEMORY_V1).join(format!(
            "sparkvisor-oom-test-{}-{}",
            std::process::id(),
            now_nanos()
        ));
        fs::create_dir(&dir).unwrap();
        let cg = Self { dir };
        // The plain limit first: memsw must never be below it. With memsw also limited, swap (if
        // any) cannot absorb the allocation; there is no swap on the test machine anyway.
        fs::write(cg.dir.join("memory.limit_in_bytes"), LIMIT).unwrap();
        let memsw = cg.dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            fs::write(memsw, LIMIT).unwrap();
        }
        let _ = fs::write(cg.dir.join("memory.swappiness"), "0");
        cg
    }

    fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn oom_kills(&self) -> u64 {
        fs::read_to_string(self.dir.join("memory.oom_control"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Whatever is left (the test failed half-way): kill it, wait until the cgroup is empty.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Err(e) = fs::remove_dir(&self.dir) {
            eprintln!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// `cmd` (the agent, as [`Scene::agent`] builds it) started through a shell that first moves
/// itself into `cgroup`, then execs the agent: the agent and every service run in the cgroup.
fn in_cgroup(cmd: &Command, cgroup: &Path) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped
        .arg("-c")
        .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
        .arg(cgroup)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    wrapped.stdin(std::process::Stdio::null());
    wrapped
}

/// `sparkvisor status --json` against the scene's socket, parsed (None while it does not answer).
fn status_json(socket: &Path) -> Option<Value> {
    let out = Command::new(common::bin())
        .args(["status", "--json"])
        .env("SPARKVISOR_SOCKET", socket)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

/// Root, a v1 memory hierarchy with a counter, and python3 (the allocating process); false (after
/// skipping, or failing under CI) when one is missing.
fn prerequisites() -> bool {
    !(skip_unless(is_root(), "needs root to create a memory cgroup")
        || skip_unless(
            v1_memory_with_oom_counter(),
            "needs a cgroup v1 memory hierarchy with an oom_kill counter at /sys/fs/cgroup/memory",
        )
        || skip_unless(
            Command::new("python3").arg("-V").output().is_ok(),
            "needs python3 (the allocating service)",
        ))
}

/// A python3 one-liner that allocates 200 MiB, far over the cgroup's 64 MiB.
const HOG: &str = "python3 -c 'b = b\"x\" * (200 << 20)'";

#[test]
fn a_real_oom_kill_shows_on_the_status_socket_for_that_service() {
    if !prerequisites() {
        return;
    }
    let s = Scene::new();
    s.role(
        "oom",
        r#"
services:
  hog:
    command: ["sh", "-c", "touch @WORK@/hog.started; exec python3 -c 'b = b\"x\" * (200 << 20)'"]
    restart: never
    critical: false
  calm:
    command: ["sleep", "1000"]
"#,
    );
    let cgroup = MemoryCgroup::create();
    let socket = s.path().join("agent.sock");
    let mut agent = s.start(&mut in_cgroup(
        &s.agent(false, &["run", "--role", "oom"]),
        &cgroup.dir,
    ));
    let mut last = None;
    agent.wait_for(LONG, "the status socket to show hog's OOM kill", || {
        last = status_json(&socket);
        last.as_ref()
            .is_some_and(|st| service(st, "hog")["oom_kills"].as_u64() >= Some(1))
    });
    let status = last.unwrap();
    assert!(s.exists("hog.started"));
    assert!(
        cgroup.pids().contains(&(agent.child.id() as i32)),
        "the agent runs in the test cgroup"
    );
    let hog = service(&status, "hog");
    assert_eq!(hog["oom_kills"], 1, "{status:#}");
    assert_eq!(hog["last_exit"]["signal"], 9, "{status:#}");
    assert_eq!(service(&status, "calm")["oom_kills"], 0, "{status:#}");
    let total = status["agent"]["oom_kills_total"].as_u64().unwrap();
    assert_eq!(total, cgroup.oom_kills(), "the cgroup's own counter");
    assert!(total >= 1);
    // The Prometheus view of the same figure.
    let metrics = get(&socket, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sparkvisor_service_oom_kills_total{")
                && l.contains("\"hog\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("sparkvisor_cgroup_oom_kills_total {total}")),
        "{metrics}"
    );
    agent.signal(false, libc::SIGTERM);
    let code = Agent::code(agent.wait(LONG));
    assert_eq!(code, 0, "{}", agent.stderr());
    assert!(
        agent.stderr().contains("OOM killer"),
        "the kill is logged: {}",
        agent.stderr()
    );
}

/// Kills a service's process with SIGKILL as someone other than the agent would (`kill -9` from a
/// shell in the container), and waits until the status shows it ended so.
fn kill_9(socket: &Path, agent: &mut Agent, name: &str) -> Value {
    let pid = service(&status_json(socket).unwrap(), name)["pid"]
        .as_i64()
        .unwrap();
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let mut last = None;
    agent.wait_for(LONG, &format!("{name} to end by SIGKILL"), || {
        last = status_json(socket);
        last.as_ref()
            .is_some_and(|st| service(st, name)["last_exit"]["signal"] == 9)
    });
    last.unwrap()
}

/// The OOM killer kills a process that is not a service (a service's child that the service reaps
/// itself, as a worker reaps its executors; and an orphan the agent reaps), then an operator's
/// `kill -9` ends a service: the service is not charged the other processes' kills, while the
/// container-wide counter shows them.
#[test]
fn oom_kills_of_other_processes_are_not_charged_to_a_service() {
    if !prerequisites() {
        return;
    }
    let s = Scene::new();
    s.role(
        "oom",
        &format!(
            r#"
services:
  parent:
    command: ["sh", "-c", "{hog}; touch @WORK@/child.ended; exec sleep 1000"]
    restart: never
    critical: false
  orphaner:
    command: ["sh", "-c", "while [ ! -e @WORK@/go ]; do sleep 0.05; done; ({hog} &); exec sleep 1000"]
    restart: never
    critical: false
"#,
            hog = HOG.replace('"', "\\\""),
        ),
    );
    let cgroup = MemoryCgroup::create();
    let socket = s.path().join("agent.sock");
    let mut agent = s.start(&mut in_cgroup(
        &s.agent(false, &["run", "--role", "oom"]),
        &cgroup.dir,
    ));
    // 1. parent's child is OOM-killed and reaped by parent (sh), which goes on.
    agent.wait_for(LONG, "parent's child to be OOM-killed", || {
        s.exists("child.ended")
    });
    assert_eq!(cgroup.oom_kills(), 1);
    agent.wait_for(LONG, "the status socket", || status_json(&socket).is_some());
    let status = kill_9(&socket, &mut agent, "parent");
    assert_eq!(service(&status, "parent")["oom_kills"], 0, "{status:#}");
    // 2. An orphan (its parent subshell exits at once) is OOM-killed and reaped by the agent.
    std::fs::write(s.work("go"), "").unwrap();
    agent.wait_for(LONG, "the orphan's OOM kill", || cgroup.oom_kills() == 2);
    agent.wait_for(LONG, "the orphan reaped", || {
        s.stderr().contains("reaped orphan")
    });
    let status = kill_9(&socket, &mut agent, "orphaner");
    assert_eq!(service(&status, "orphaner")["oom_kills"], 0, "{status:#}");
    assert_eq!(service(&status, "parent")["oom_kills"], 0, "{status:#}");
    assert_eq!(status["agent"]["oom_kills_total"], 2, "{status:#}");
    assert!(
        !agent.stderr().contains("OOM killer"),
        "no OOM kill charged: {}",
        agent.stderr()
    );
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}
