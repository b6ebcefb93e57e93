//! The container's real CPU and memory limits (cgroup v2, v1, hybrid; `SPARKVISOR_CGROUP_ROOT` for
//! fixtures) and the Spark sizing policy derived from them (a pure function, documented in
//! docs/sizing.md).

mod cgroup;
pub mod oom;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::units;
use crate::config::{ResolvedConfig, Source, Sourced};
use crate::error::{Diagnostic, Diagnostics};

use self::cgroup::{Controller, Hierarchy, Version};
pub use self::oom::OomCounter;

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
    /// Odd cgroup values that were ignored appear here as `warning: ...`.
    pub sources: Vec<String>,
    /// Which cgroup layout was read: `v2`, `v1`, `hybrid` (v1 controllers plus a v2 mount) or `none`.
    pub cgroup: String,
    /// CPUs in the cpuset, when one was found.
    pub cpuset_cpus: Option<u32>,
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
    /// The memory the policy divides: the cgroup limit, else the host's memory, in MiB.
    pub memory_mb: Sourced<u64>,
    /// The reserve kept for JVM overhead (non-heap of the daemon and the executors), in MiB.
    pub overhead_mb: Sourced<u64>,
    /// Remarks about the result (e.g. an explicit worker memory larger than the container allows).
    pub notes: Vec<String>,
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

impl HostFacts {
    /// Reads the running host: /sys/devices/system/cpu/online, the affinity mask, /proc/meminfo.
    /// Unreadable figures fall back to 1 CPU / the other figure, and are never an error.
    pub fn read() -> HostFacts {
        let online = crate::sys::procfs::read("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|t| cgroup::count_cpu_list(&t))
            .filter(|&n| n > 0);
        let affinity = crate::sys::host::affinity_cpus().filter(|&n| n > 0);
        let host_cpus = online.or(affinity).unwrap_or(1);
        let host_memory = crate::sys::procfs::read("/proc/meminfo")
            .ok()
            .and_then(|t| meminfo_total(&t))
            .unwrap_or(0);
        HostFacts {
            host_cpus,
            affinity_cpus: affinity.unwrap_or(host_cpus),
            host_memory,
        }
    }
}

/// `MemTotal:  24684084 kB` → bytes.
fn meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The pure core of [`detect`]: `root` is `SPARKVISOR_CGROUP_ROOT` when set (else the mounts found in
/// `mountinfo` are used), `proc_self_cgroup` the text of /proc/self/cgroup.
pub fn detect_from(
    root: Option<&Path>,
    proc_self_cgroup: &str,
    mountinfo: &str,
    host: HostFacts,
) -> Resources {
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let cpu = cgroup::locate(root, proc_self_cgroup, mountinfo, Controller::Cpu);
    let cpuset = cgroup::locate(root, proc_self_cgroup, mountinfo, Controller::Cpuset);
    let memory = cgroup::locate(root, proc_self_cgroup, mountinfo, Controller::Memory);

    let cpu_quota = cpu.as_ref().and_then(|h| {
        let reading = cgroup::cpu_quota(h);
        warnings.extend(reading.warnings);
        match reading.limit {
            Some(found) => {
                sources.push(format!("cpu quota {} cores: {}", found.value, found.source));
                Some(found.value)
            }
            None => {
                sources.push(format!("cpu quota: none up to {}", h.mount.display()));
                None
            }
        }
    });
    let cpuset_cpus = cpuset.as_ref().and_then(|h| {
        let reading = cgroup::cpuset(h);
        warnings.extend(reading.warnings);
        reading.limit.map(|found| {
            sources.push(format!("cpuset {} CPUs: {}", found.value, found.source));
            found.value
        })
    });
    let mut memory_limit = memory.as_ref().and_then(|h| {
        let reading = cgroup::memory_limit(h);
        warnings.extend(reading.warnings);
        match reading.limit {
            Some(found) => {
                sources.push(format!(
                    "memory limit {} bytes: {}",
                    found.value, found.source
                ));
                Some(found.value)
            }
            None => {
                sources.push(format!("memory limit: none up to {}", h.mount.display()));
                None
            }
        }
    });
    // A limit at or above the host's memory limits nothing (common with v1's per-level sentinels).
    if let Some(limit) = memory_limit {
        if host.host_memory > 0 && limit >= host.host_memory {
            sources.push(format!(
                "memory limit {limit} bytes is not below host memory {} bytes: treated as no limit",
                host.host_memory
            ));
            memory_limit = None;
        }
    }
    if cpu.is_none() && memory.is_none() && cpuset.is_none() {
        sources.push("no cgroup cpu, cpuset or memory controller found: host figures".into());
    }

    let affinity = host.affinity_cpus.max(1);
    sources.push(format!(
        "affinity mask {affinity} CPUs, host {} CPUs, host memory {} bytes",
        host.host_cpus, host.host_memory
    ));
    let visible_cpus = match cpuset_cpus {
        Some(n) => affinity.min(n),
        None => affinity,
    };
    sources.extend(warnings.into_iter().map(|w| format!("warning: {w}")));
    Resources {
        host_cpus: host.host_cpus,
        visible_cpus,
        cpu_quota,
        host_memory: host.host_memory,
        memory_limit,
        sources,
        cgroup: layout_name(root, mountinfo, [&cpu, &cpuset, &memory]),
        cpuset_cpus,
    }
}

fn layout_name(root: Option<&Path>, mountinfo: &str, found: [&Option<Hierarchy>; 3]) -> String {
    let versions: Vec<Version> = found
        .iter()
        .filter_map(|h| h.as_ref())
        .map(|h| h.version)
        .collect();
    let has_v1 = versions.contains(&Version::V1);
    let has_v2_mount = root.is_none()
        && crate::sys::mountinfo::parse(mountinfo)
            .iter()
            .any(|m| m.fs_type == "cgroup2");
    match (has_v1, versions.contains(&Version::V2)) {
        (true, _) if has_v2_mount => "hybrid",
        (true, _) => "v1",
        (false, true) => "v2",
        (false, false) => "none",
    }
    .to_string()
}

/// Reads the limits of the cgroup this process is in (or of `SPARKVISOR_CGROUP_ROOT`).
pub fn detect() -> Result<Resources, Diagnostics> {
    let root = std::env::var_os("SPARKVISOR_CGROUP_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(root) = &root {
        if !root.is_dir() {
            return Err(Diagnostic::new(
                "env SPARKVISOR_CGROUP_ROOT",
                format!("{} is not a directory", root.display()),
            )
            .into());
        }
    }
    let proc_self_cgroup = crate::sys::procfs::read("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = crate::sys::mountinfo::read_self();
    Ok(detect_from(
        root.as_deref(),
        &proc_self_cgroup,
        &mountinfo,
        HostFacts::read(),
    ))
}

/// Sizing knobs: the setting names live in [`crate::config::sizing`] (config validates them
/// without depending on this module); re-exported here under their old name.
pub use crate::config::sizing as knobs;

const MIB: u64 = 1024 * 1024;

/// The memory policy's parameters, read from the settings.
#[derive(Debug, Clone, Copy)]
struct MemoryPolicy {
    daemon_min: u64,
    daemon_max: u64,
    overhead_mb: u64,
    overhead_percent: u64,
}

impl MemoryPolicy {
    /// Derived daemon heap: one eighth of the memory, within [min, max].
    fn daemon(&self, memory_mb: u64) -> u64 {
        (memory_mb / 8).clamp(self.daemon_min, self.daemon_max.max(self.daemon_min))
    }
    /// JVM-overhead reserve: the larger of the fixed and the proportional part.
    fn overhead(&self, memory_mb: u64) -> u64 {
        self.overhead_mb
            .max(memory_mb.saturating_mul(self.overhead_percent) / 100)
    }
    /// Worker memory for a container of `memory_mb`, with a given daemon heap (None: derived).
    fn worker(&self, memory_mb: u64, daemon: Option<u64>) -> i128 {
        let daemon = daemon.unwrap_or_else(|| self.daemon(memory_mb));
        i128::from(memory_mb) - i128::from(daemon) - i128::from(self.overhead(memory_mb))
    }
    /// The smallest container (MiB) whose derived worker memory reaches `min_worker`.
    /// `worker` never decreases with the memory (percent ≤ 50), so a binary search finds it.
    fn smallest_memory_for(&self, min_worker: u64, daemon: Option<u64>) -> u64 {
        let (mut lo, mut hi) = (0u64, i32::MAX as u64);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.worker(mid, daemon) >= i128::from(min_worker) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}

/// Reads a setting through `parse`, or returns `default` when absent; a bad value is a Diagnostic.
fn knob<T>(
    config: &ResolvedConfig,
    key: &str,
    default: T,
    parse: fn(&str) -> Result<T, String>,
    problems: &mut Diagnostics,
) -> T {
    match config.settings.get(key) {
        Some(setting) => match parse(&setting.value) {
            Ok(v) => v,
            Err(message) => {
                problems.push(Diagnostic::new(
                    crate::config::model::source_location(&setting.source),
                    format!("{key}: {message}"),
                ));
                default
            }
        },
        None => default,
    }
}

/// Reads an explicit user value (a setting) through `parse`, keeping its source.
fn explicit<T>(
    config: &ResolvedConfig,
    key: &str,
    parse: fn(&str) -> Result<T, String>,
    problems: &mut Diagnostics,
) -> Option<Sourced<T>> {
    let setting = config.settings.get(key)?;
    match parse(&setting.value) {
        Ok(v) => Some(Sourced::new(v, setting.source.clone())),
        Err(message) => {
            problems.push(Diagnostic::new(
                crate::config::model::source_location(&setting.source),
                format!("{key}: {message}"),
            ));
            None
        }
    }
}

fn derived(from: String) -> Source {
    Source::Derived { from }
}

/// The sizing policy: a pure function of the resources and the resolved settings.
///
/// - `cpus` = min(visible CPUs, ceil(quota)) — what HotSpot computes — at least 1;
/// - `worker_cores` = max(1, floor(cpus × `sizing_policy.cpu_overcommit`)) unless
///   `spark.worker_cores` is set; with the default factor 1 it never exceeds the visible CPUs;
/// - memory M = the cgroup limit, else host memory (MiB); daemon heap = clamp(M / 8, 128, 1024)
///   unless `spark.daemon_memory` is set; reserve = max(384, 10 % of M);
///   `worker_memory` = M − daemon heap − reserve unless `spark.worker_memory` is set;
///   below `sizing_policy.min_worker_memory_mb` (256) that is an error for worker roles.
pub fn size(resources: &Resources, config: &ResolvedConfig) -> Result<Sizing, Diagnostics> {
    let mut problems = Diagnostics::default();
    let mut notes = Vec::new();

    // CPU.
    let visible = resources.visible_cpus.max(1);
    let cpus = match resources.cpu_quota {
        Some(quota) => {
            let ceil = quota.ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
            Sourced::new(
                visible.min(ceil),
                derived(format!(
                    "min(visible CPUs {visible}, ceil(cpu quota {quota}) = {ceil})"
                )),
            )
        }
        None => Sourced::new(
            visible,
            derived(format!("visible CPUs {visible}, no cpu quota")),
        ),
    };
    let overcommit = knob(
        config,
        knobs::CPU_OVERCOMMIT,
        knobs::DEFAULT_CPU_OVERCOMMIT,
        units::parse_factor,
        &mut problems,
    );
    let worker_cores = match explicit(
        config,
        "spark.worker_cores",
        units::parse_cores,
        &mut problems,
    ) {
        Some(v) => v,
        None => {
            let cores = (f64::from(cpus.value) * overcommit)
                .floor()
                .clamp(1.0, 65_535.0) as u32;
            Sourced::new(
                cores,
                derived(format!(
                    "max(1, floor(cpus {} × cpu_overcommit {overcommit}))",
                    cpus.value
                )),
            )
        }
    };

    // Memory.
    let (memory_bytes, memory_from) = match resources.memory_limit {
        Some(limit) => (limit, "cgroup memory limit"),
        None => (resources.host_memory, "host memory (no cgroup limit)"),
    };
    let memory_mb = Sourced::new(memory_bytes / MIB, derived(memory_from.to_string()));
    let policy = MemoryPolicy {
        daemon_min: knob(
            config,
            knobs::DAEMON_MEMORY_MIN_MB,
            knobs::DEFAULT_DAEMON_MEMORY_MIN_MB,
            units::parse_mib,
            &mut problems,
        ),
        daemon_max: knob(
            config,
            knobs::DAEMON_MEMORY_MAX_MB,
            knobs::DEFAULT_DAEMON_MEMORY_MAX_MB,
            units::parse_mib,
            &mut problems,
        ),
        overhead_mb: knob(
            config,
            knobs::OVERHEAD_MB,
            knobs::DEFAULT_OVERHEAD_MB,
            units::parse_mib,
            &mut problems,
        ),
        overhead_percent: knob(
            config,
            knobs::OVERHEAD_PERCENT,
            knobs::DEFAULT_OVERHEAD_PERCENT,
            units::parse_percent,
            &mut problems,
        ),
    };
    let min_worker = knob(
        config,
        knobs::MIN_WORKER_MEMORY_MB,
        knobs::DEFAULT_MIN_WORKER_MEMORY_MB,
        units::parse_mib,
        &mut problems,
    )
    .max(1);
    let require_worker = knob(
        config,
        knobs::REQUIRE_WORKER_MEMORY,
        config.role.value == "worker",
        units::parse_bool,
        &mut problems,
    );

    let m = memory_mb.value;
    let explicit_daemon = explicit(
        config,
        "spark.daemon_memory",
        units::parse_memory_mb,
        &mut problems,
    );
    let daemon_memory_mb = explicit_daemon.clone().unwrap_or_else(|| {
        Sourced::new(
            policy.daemon(m),
            derived(format!(
                "clamp(memory {m} MiB / 8, {}, {})",
                policy.daemon_min, policy.daemon_max
            )),
        )
    });
    let overhead_mb = Sourced::new(
        policy.overhead(m),
        derived(format!(
            "max({} MiB, {} % of memory {m} MiB)",
            policy.overhead_mb, policy.overhead_percent
        )),
    );
    let explicit_worker = explicit(
        config,
        "spark.worker_memory",
        units::parse_memory_mb,
        &mut problems,
    );
    let worker_memory_mb = match explicit_worker {
        Some(v) => {
            let room = policy.worker(m, Some(daemon_memory_mb.value));
            if i128::from(v.value) > room {
                notes.push(format!(
                    "explicit worker memory {} MiB is more than the {} MiB left after the daemon heap and the overhead reserve: executors may be OOM-killed",
                    v.value,
                    room.max(0)
                ));
            }
            v
        }
        None => {
            let worker = policy.worker(m, explicit_daemon.as_ref().map(|d| d.value));
            if worker >= i128::from(min_worker) {
                Sourced::new(
                    u64::try_from(worker).unwrap_or(min_worker),
                    derived(format!(
                        "memory {m} − daemon heap {} − overhead reserve {} MiB",
                        daemon_memory_mb.value, overhead_mb.value
                    )),
                )
            } else {
                let need = policy
                    .smallest_memory_for(min_worker, explicit_daemon.as_ref().map(|d| d.value));
                let message = format!(
                    "container memory {m} MiB is too small for a Spark worker: need at least {need} MiB (daemon heap {} + overhead reserve {} + worker memory {min_worker} MiB); raise the memory limit or set SPARK_WORKER_MEMORY",
                    daemon_memory_mb.value, overhead_mb.value
                );
                if require_worker {
                    problems.push(Diagnostic::new("sizing", message));
                } else {
                    notes.push(message);
                }
                Sourced::new(
                    min_worker,
                    derived(format!(
                        "{} (minimum; container too small for a worker)",
                        knobs::MIN_WORKER_MEMORY_MB
                    )),
                )
            }
        }
    };

    problems.into_result(Sizing {
        cpus,
        worker_cores,
        worker_memory_mb,
        daemon_memory_mb,
        memory_mb,
        overhead_mb,
        notes,
    })
}
