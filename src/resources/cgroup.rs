//! Finding this process's cgroups (v2, v1, hybrid) and reading their limits.
//!
//! Plain file I/O over the cgroup filesystem: where each controller is mounted comes from
//! /proc/self/mountinfo (or from `SPARKVISOR_CGROUP_ROOT`), which cgroup the process is in from
//! /proc/self/cgroup. A limit may sit on any ancestor, so every level from the leaf up to the mount
//! root is read and the tightest value wins. Odd values (garbage, zero, negative, out of range) are
//! treated as "no limit" and recorded as a warning, never an error: a broken cgroup file must not
//! stop a container that would run fine with host-sized defaults.

use std::fs;
use std::path::{Path, PathBuf};

/// cgroup v1 reports "no memory limit" as the largest page-aligned i64 (9223372036854771712 with
/// 4 KiB pages, other values with larger pages); anything at or above 2^62 means unlimited.
const V1_UNLIMITED_MEMORY: u64 = 1 << 62;

/// A cgroup hierarchy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// The unified hierarchy.
    V2,
    /// A per-controller hierarchy.
    V1,
}

/// The controllers sparkvisor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Cpu,
    Cpuset,
    Memory,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
        }
    }
}

/// Where one controller's files are: the process's cgroup directory and the mount root above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub version: Version,
    pub mount: PathBuf,
    pub leaf: PathBuf,
}

impl Hierarchy {
    /// The directories from the leaf up to (and including) the mount root.
    fn levels(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut dir = self.leaf.as_path();
        loop {
            out.push(dir.to_path_buf());
            if dir == self.mount {
                break;
            }
            match dir.parent() {
                Some(parent) if parent.starts_with(&self.mount) => dir = parent,
                _ => break,
            }
        }
        out
    }
}

/// One mount of a cgroup filesystem, from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    version: Version,
    /// The cgroup path mounted here (field 4 of mountinfo).
    root: String,
    mount_point: PathBuf,
    /// v1 controllers from the super options (empty for v2).
    controllers: Vec<String>,
}

/// The cgroup filesystems among the mounts in `mountinfo`.
fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    crate::sys::mountinfo::parse(mountinfo)
        .into_iter()
        .filter_map(|m| {
            let version = match m.fs_type.as_str() {
                "cgroup2" => Version::V2,
                "cgroup" => Version::V1,
                _ => return None,
            };
            let controllers = match version {
                Version::V2 => Vec::new(),
                Version::V1 => m.super_options.split(',').map(str::to_string).collect(),
            };
            Some(CgroupMount {
                version,
                root: m.root,
                mount_point: m.mount_point,
                controllers,
            })
        })
        .collect()
}

/// The process's cgroup path for a controller: the v1 line naming it, or the v2 `0::` line.
fn cgroup_path(proc_self_cgroup: &str, version: Version, controller: Controller) -> Option<String> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        let matches = match version {
            Version::V2 => id == "0" && controllers.is_empty(),
            Version::V1 => controllers.split(',').any(|c| c == controller.name()),
        };
        matches.then(|| path.to_string())
    })
}

/// `mount/relative`, when that directory exists; else the mount itself (the process's path is not
/// visible in this mount namespace, e.g. a container without a cgroup namespace).
fn leaf_under(mount: &Path, relative: &str) -> PathBuf {
    let rel = relative.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return mount.to_path_buf();
    }
    let leaf = mount.join(rel);
    if leaf.is_dir() {
        leaf
    } else {
        mount.to_path_buf()
    }
}

fn v2_has_controller(mount: &Path, controller: Controller) -> bool {
    crate::config::limits::read_text(
        mount.join("cgroup.controllers"),
        crate::config::limits::InputKind::System,
    )
    .map(|text| text.split_whitespace().any(|c| c == controller.name()))
    .unwrap_or(false)
}

/// Where `controller` lives, if anywhere. With `root` (`SPARKVISOR_CGROUP_ROOT`): v2 when it holds
/// `cgroup.controllers`, else v1 with one directory per controller (`cpu` or `cpu,cpuacct`, ...).
pub(crate) fn locate(
    root: Option<&Path>,
    proc_self_cgroup: &str,
    mountinfo: &str,
    controller: Controller,
) -> Option<Hierarchy> {
    if let Some(root) = root {
        if root.join("cgroup.controllers").is_file() {
            if !v2_has_controller(root, controller) {
                return None;
            }
            let path = cgroup_path(proc_self_cgroup, Version::V2, controller).unwrap_or_default();
            return Some(Hierarchy {
                version: Version::V2,
                mount: root.to_path_buf(),
                leaf: leaf_under(root, &path),
            });
        }
        let mount = fs::read_dir(root)
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.is_dir())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.split(',').any(|c| c == controller.name()))
            })?;
        let path = cgroup_path(proc_self_cgroup, Version::V1, controller).unwrap_or_default();
        let leaf = leaf_under(&mount, &path);
        return Some(Hierarchy {
            version: Version::V1,
            mount,
            leaf,
        });
    }
    let mounts = cgroup_mounts(mountinfo);
    // A v1 hierarchy with the controller wins (hybrid hosts also mount an empty v2 tree).
    let v1 = mounts
        .iter()
        .find(|m| m.version == Version::V1 && m.controllers.iter().any(|c| c == controller.name()));
    let v2 = mounts
        .iter()
        .find(|m| m.version == Version::V2 && v2_has_controller(&m.mount_point, controller));
    let mount = v1.or(v2)?;
    let path = cgroup_path(proc_self_cgroup, mount.version, controller)?;
    // The mount shows the cgroup `mount.root`; the process's path is relative to the same root
    // (a cgroup namespace makes both `/`; without one, Docker mounts `/docker/<id>` at the mount point).
    let relative = match path.strip_prefix(mount.root.as_str()) {
        Some(rest) if mount.root != "/" => rest.to_string(),
        _ => path,
    };
    Some(Hierarchy {
        version: mount.version,
        mount: mount.mount_point.clone(),
        leaf: leaf_under(&mount.mount_point, &relative),
    })
}

/// A limit found on some level, with a human-readable account of where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found<T> {
    pub value: T,
    pub source: String,
}

/// What reading one controller found: the tightest limit (if any) and warnings about odd files.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Reading<T> {
    pub limit: Option<Found<T>>,
    pub warnings: Vec<String>,
}

impl<T: PartialOrd> Reading<T> {
    fn offer(&mut self, value: T, source: String) {
        let tighter = match &self.limit {
            Some(current) => value < current.value,
            None => true,
        };
        if tighter {
            self.limit = Some(Found { value, source });
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    crate::config::limits::read_text(path, crate::config::limits::InputKind::System)
        .ok()
        .map(|t| t.trim().to_string())
}

/// The CPU quota in cores: `cpu.max` (v2) or `cpu.cfs_quota_us`/`cpu.cfs_period_us` (v1).
pub(crate) fn cpu_quota(h: &Hierarchy) -> Reading<f64> {
    let mut reading = Reading::default();
    for dir in h.levels() {
        match h.version {
            Version::V2 => {
                let file = dir.join("cpu.max");
                let Some(text) = read_trimmed(&file) else {
                    continue;
                };
                let mut fields = text.split_whitespace();
                let quota = fields.next().unwrap_or("");
                let period = fields.next().unwrap_or("100000");
                if quota == "max" {
                    continue;
                }
                match quota_cores(quota, period) {
                    Some(cores) => {
                        reading.offer(cores, format!("{} = {text:?}", file.display()))
                    }
                    None => reading.warnings.push(format!(
                        "ignored {} = {text:?}: not \"max PERIOD\" or \"QUOTA PERIOD\" with positive integers; treated as no limit",
                        file.display()
                    )),
                }
            }
            Version::V1 => {
                let quota_file = dir.join("cpu.cfs_quota_us");
                let Some(quota) = read_trimmed(&quota_file) else {
                    continue;
                };
                if quota == "-1" {
                    continue;
                }
                let period_file = dir.join("cpu.cfs_period_us");
                let period = read_trimmed(&period_file).unwrap_or_else(|| "100000".into());
                match quota_cores(&quota, &period) {
                    Some(cores) => reading.offer(
                        cores,
                        format!(
                            "{} = {quota} / {} = {period}",
                            quota_file.display(),
                            period_file.display()
                        ),
                    ),
                    None => reading.warnings.push(format!(
                        "ignored {} = {quota:?} with period {period:?}: not -1 or positive integers; treated as no limit",
                        quota_file.display()
                    )),
                }
            }
        }
    }
    reading
}

fn quota_cores(quota: &str, period: &str) -> Option<f64> {
    let quota: u64 = quota.parse().ok()?;
    let period: u64 = period.parse().ok()?;
    if quota == 0 || period == 0 {
        return None;
    }
    let cores = quota as f64 / period as f64;
    cores.is_finite().then_some(cores)
}

/// The cpuset: the leaf-most non-empty `cpuset.cpus.effective` / `cpuset.effective_cpus` /
/// `cpuset.cpus` (a child's set is always within its parent's, and an empty v2 set means "inherit").
pub(crate) fn cpuset(h: &Hierarchy) -> Reading<u32> {
    let mut reading = Reading::default();
    let names: &[&str] = match h.version {
        Version::V2 => &["cpuset.cpus.effective", "cpuset.cpus"],
        Version::V1 => &["cpuset.effective_cpus", "cpuset.cpus"],
    };
    for dir in h.levels() {
        for name in names {
            let file = dir.join(name);
            let Some(text) = read_trimmed(&file) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            match count_cpu_list(&text) {
                Some(n) if n > 0 => {
                    reading.offer(n, format!("{} = {text:?}", file.display()));
                    return reading;
                }
                _ => reading.warnings.push(format!(
                    "ignored {} = {text:?}: not a CPU list like \"0-3,6\"",
                    file.display()
                )),
            }
        }
    }
    reading
}

/// Counts the CPUs in a list such as `0-3,6,8-9`.
pub(crate) fn count_cpu_list(text: &str) -> Option<u32> {
    let mut count: u32 = 0;
    for part in text.trim().split(',') {
        let part = part.trim();
        let n = match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().ok()?;
                let b: u32 = b.parse().ok()?;
                if b < a || b > 65_535 {
                    return None;
                }
                b - a + 1
            }
            None => {
                let cpu: u32 = part.parse().ok()?;
                if cpu > 65_535 {
                    return None;
                }
                1
            }
        };
        count = count.checked_add(n)?;
    }
    Some(count)
}

/// The memory limit in bytes: `memory.max` (v2) or `memory.limit_in_bytes` (v1, with its
/// "unlimited" sentinel).
pub(crate) fn memory_limit(h: &Hierarchy) -> Reading<u64> {
    let mut reading = Reading::default();
    let name = match h.version {
        Version::V2 => "memory.max",
        Version::V1 => "memory.limit_in_bytes",
    };
    for dir in h.levels() {
        let file = dir.join(name);
        let Some(text) = read_trimmed(&file) else {
            continue;
        };
        if text == "max" && h.version == Version::V2 {
            continue;
        }
        match text.parse::<u64>() {
            Ok(bytes) if bytes >= V1_UNLIMITED_MEMORY => {}
            Ok(bytes) if bytes > 0 => {
                reading.offer(bytes, format!("{} = {text}", file.display()));
            }
            _ => reading.warnings.push(format!(
                "ignored {} = {text:?}: not \"max\" or a positive number of bytes; treated as no limit",
                file.display()
            )),
        }
    }
    reading
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-3,6"), Some(5));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1,3-4\n"), Some(4));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("a"), None);
        assert_eq!(count_cpu_list(""), None);
    }

    #[test]
    fn mountinfo_escapes_and_kinds() {
        let info = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    41 31 0:38 /docker/abc /sys/fs/cgroup\\040x rw shared:1 - cgroup2 cgroup2 rw\n\
                    12 1 0:1 / / rw - ext4 /dev/sda rw\n";
        let mounts = cgroup_mounts(info);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].controllers, vec!["rw", "cpu", "cpuacct"]);
        assert_eq!(mounts[1].mount_point, PathBuf::from("/sys/fs/cgroup x"));
        assert_eq!(mounts[1].root, "/docker/abc");
        assert_eq!(mounts[1].version, Version::V2);
    }

    #[test]
    fn proc_self_cgroup_lines() {
        let text = "4:memory:/a/b\n3:cpu,cpuacct:/c\n0::/d\n";
        assert_eq!(
            cgroup_path(text, Version::V1, Controller::Cpu).as_deref(),
            Some("/c")
        );
        assert_eq!(
            cgroup_path(text, Version::V1, Controller::Memory).as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            cgroup_path(text, Version::V2, Controller::Cpu).as_deref(),
            Some("/d")
        );
        assert_eq!(cgroup_path(text, Version::V1, Controller::Cpuset), None);
    }
}
