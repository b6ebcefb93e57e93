//! `sparkvisor decommission`: what the official image's `/opt/decom.sh` preStop hook does, without
//! `ps`, `killall` or a shell: SIGPWR to the executor JVM (Spark's executor decommissions on it:
//! stops taking tasks and migrates its blocks when `spark.storage.decommission.*` allow), then wait
//! until it has exited, so Kubernetes sends SIGTERM only after the blocks moved.
//!
//! The executor is found among PID 1's children (the agent's main command or a service, or the
//! command of tini/pass-through mode) by its main class; this command runs as a client in the same
//! container (`lifecycle.preStop.exec.command: ["sparkvisor", "decommission"]`).

use std::time::{Duration, Instant};

use crate::error::{exit_code, Fatal};

/// Main classes of a Spark executor JVM.
const EXECUTOR_CLASSES: &[&str] = &[
    "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
    "org.apache.spark.executor.CoarseGrainedExecutorBackend",
];

/// Children of `pid` (every thread's list).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<i32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// True when `cmdline` (NUL-separated) runs one of the executor classes.
pub fn is_executor(cmdline: &[u8]) -> bool {
    cmdline
        .split(|b| *b == 0)
        .any(|arg| EXECUTOR_CLASSES.iter().any(|c| arg == c.as_bytes()))
}

/// The executor JVMs among PID 1's children and grandchildren (a service's JVM may run under
/// `spark-class`'s shell).
fn executors() -> Vec<i32> {
    let mut found = Vec::new();
    let mut queue = children_of(1);
    let mut depth = 0;
    while !queue.is_empty() && depth < 3 {
        let mut next = Vec::new();
        for pid in queue {
            match std::fs::read(format!("/proc/{pid}/cmdline")) {
                Ok(c) if is_executor(&c) => found.push(pid),
                _ => next.extend(children_of(pid)),
            }
        }
        queue = next;
        depth += 1;
    }
    found
}

/// Still running: exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `pid (comm) S ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends SIGPWR to every executor JVM and waits up to `timeout_secs` for them to exit.
pub fn run(timeout_secs: u64) -> Result<i32, Fatal> {
    let pids = executors();
    if pids.is_empty() {
        crate::errln!("sparkvisor: decommission: no Spark executor JVM among PID 1's children");
        return Ok(exit_code::FAILURE);
    }
    let pwr = crate::signal_names::signal_by_name("PWR").unwrap_or(30);
    for pid in &pids {
        match crate::sys::process::send_signal(*pid, pwr) {
            Ok(()) => crate::outln!("decommission: SIGPWR sent to executor pid {pid}"),
            Err(e) => {
                return Err(Fatal::Sys {
                    context: format!("sending SIGPWR to executor pid {pid}"),
                    source: e,
                })
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    // A client command, not the agent: a short poll is the simple way to wait for a process we
    // are not the parent of.
    while pids.iter().any(|p| alive(*p)) {
        if Instant::now() >= deadline {
            crate::errln!(
                "sparkvisor: decommission: executor still running after {timeout_secs} s"
            );
            return Ok(exit_code::FAILURE);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    crate::outln!("decommission: executor exited");
    Ok(exit_code::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_executor_command_lines() {
        let jvm = b"/usr/bin/java\0-Xmx1g\0-cp\0/x\0org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend\0--driver-url\0u\0";
        assert!(is_executor(jvm));
        assert!(!is_executor(
            b"/usr/bin/java\0org.apache.spark.deploy.worker.Worker\0"
        ));
        assert!(!is_executor(b"grep\0KubernetesExecutorBackend\0"));
    }
}
