//! The container's real CPU and memory limits (cgroup v2, v1, hybrid; `SPARKVISOR_CGROUP_ROOT` for
//! fixtures) and the Spark sizing policy derived from them (a pure function, documented in the README).

use serde::Serialize;

use crate::config::{ResolvedConfig, Sourced};
use crate::error::{Diagnostic, Diagnostics};

/// What the container may use, with the files each figure came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resources {
    /// CPUs the host has (online).
    pub host_cpus: u32,
    /// CPUs this process may run on (affinity mask ∩ cpuset).
    pub visible_cpus: u32,
    /// CPU quota in cores (`cpu.max` / `cfs_quota_us`), tightest on the path to the root; None = unlimited.
    pub cpu_quota: Option<f64>,
    /// Host memory in bytes.
    pub host_memory: u64,
    /// Memory limit in bytes, tightest on the path to the root; None = unlimited.
    pub memory_limit: Option<u64>,
    /// Human-readable provenance: `cpu.max=/sys/fs/cgroup/x/cpu.max`, ...
    pub sources: Vec<String>,
}

/// Spark sizing derived from [`Resources`] and the settings (explicit user values win).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sizing {
    /// CPU count the JVMs are told (`-XX:ActiveProcessorCount`).
    pub cpus: Sourced<u32>,
    /// `SPARK_WORKER_CORES`: an integer ≥ 1.
    pub worker_cores: Sourced<u32>,
    /// `SPARK_WORKER_MEMORY` in MiB.
    pub worker_memory_mb: Sourced<u64>,
    /// `SPARK_DAEMON_MEMORY` (daemon heap) in MiB.
    pub daemon_memory_mb: Sourced<u64>,
}

/// Host facts that need system calls or /proc, passed in so [`detect_from`] is pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    /// Online CPUs.
    pub host_cpus: u32,
    /// CPUs in this process's affinity mask.
    pub affinity_cpus: u32,
    /// Physical memory in bytes.
    pub host_memory: u64,
}

/// The pure core of [`detect`]: `root` is `SPARKVISOR_CGROUP_ROOT` when set (else the mounts found in
/// `mountinfo` are used), `proc_self_cgroup` the text of /proc/self/cgroup.
pub fn detect_from(
    root: Option<&std::path::Path>,
    proc_self_cgroup: &str,
    mountinfo: &str,
    host: HostFacts,
) -> Resources {
    let _ = (root, proc_self_cgroup, mountinfo);
    Resources {
        host_cpus: host.host_cpus,
        visible_cpus: host.affinity_cpus,
        cpu_quota: None,
        host_memory: host.host_memory,
        memory_limit: None,
        sources: Vec::new(),
    }
}

/// Reads the limits of the cgroup this process is in (or of `SPARKVISOR_CGROUP_ROOT`).
pub fn detect() -> Result<Resources, Diagnostics> {
    Err(Diagnostic::new("cgroups", "resource detection is not implemented yet").into())
}

/// The sizing policy: a pure function of the resources and the resolved settings.
pub fn size(_resources: &Resources, _config: &ResolvedConfig) -> Result<Sizing, Diagnostics> {
    Err(Diagnostic::new("sizing", "sizing is not implemented yet").into())
}
