//! The OOM-kill counter of the memory cgroup this process is in.
//!
//! The kernel counts every process its OOM killer kills in a cgroup: cgroup v2 `memory.events`
//! (`oom_kill N`, hierarchical), cgroup v1 `memory.oom_control` (`oom_kill N`, kernel ≥ 4.13). It
//! raises the counter before it sends the SIGKILL, so whoever reaps the victim already sees the new
//! value. The file is found once ([`OomCounter::locate`]); each later [`OomCounter::read`] is one
//! small file read, done only when a service ends by an unexplained SIGKILL or when an operator
//! asks for the status (never on a timer).

use std::path::{Path, PathBuf};

use super::cgroup::{self, Controller, Version};

/// The value of the `oom_kill N` line of `memory.events` (v2) or `memory.oom_control` (v1);
/// None when there is no such line (e.g. a v1 kernel older than 4.13) or it is not a number.
pub fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some("oom_kill"), Some(n), None) => n.parse().ok(),
            _ => None,
        }
    })
}

/// Reads the OOM-kill counter of this process's memory cgroup from a file found once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OomCounter {
    /// `memory.events` or `memory.oom_control` of the cgroup; None when there is no counter.
    file: Option<PathBuf>,
}

impl OomCounter {
    /// Finds the counter of the memory cgroup this process is in, the way
    /// [`detect`](super::detect) finds its limits (`SPARKVISOR_CGROUP_ROOT` honoured).
    pub fn locate() -> Self {
        let root = std::env::var_os("SPARKVISOR_CGROUP_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if root.as_deref().is_some_and(|r| !r.is_dir()) {
            return Self::default();
        }
        let proc_self_cgroup = crate::sys::procfs::read("/proc/self/cgroup").unwrap_or_default();
        let mountinfo = crate::sys::procfs::self_mountinfo().to_string();
        Self::locate_from(root.as_deref(), &proc_self_cgroup, &mountinfo)
    }

    /// The pure-input core of [`OomCounter::locate`]: `root` is `SPARKVISOR_CGROUP_ROOT` when set.
    /// The counter counts only when its file exists now and holds an `oom_kill` line.
    pub fn locate_from(root: Option<&Path>, proc_self_cgroup: &str, mountinfo: &str) -> Self {
        let file = cgroup::locate(root, proc_self_cgroup, mountinfo, Controller::Memory)
            .map(|h| match h.version {
                Version::V2 => h.leaf.join("memory.events"),
                Version::V1 => h.leaf.join("memory.oom_control"),
            })
            .filter(|file| read_counter(file).is_some());
        Self { file }
    }

    /// A counter read from `file` (tests, tools).
    pub fn at(file: impl Into<PathBuf>) -> Self {
        Self {
            file: Some(file.into()),
        }
    }

    /// The file the counter is read from, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// OOM kills in the cgroup so far; None when there is no counter or it cannot be read now.
    pub fn read(&self) -> Option<u64> {
        self.file.as_deref().and_then(read_counter)
    }
}

fn read_counter(file: &Path) -> Option<u64> {
    crate::config::limits::read_text(file, crate::config::limits::InputKind::System)
        .ok()
        .and_then(|text| parse_oom_kill(&text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use std::fs;

    const V2_EVENTS: &str = "low 0\nhigh 12\nmax 40\noom 3\noom_kill 2\noom_group_kill 0\n";
    const V1_OOM_CONTROL: &str = "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n";
    /// v1 before kernel 4.13 has no counter.
    const V1_OLD_KERNEL: &str = "oom_kill_disable 0\nunder_oom 0\n";

    #[test]
    fn parses_the_oom_kill_line_of_v2_memory_events_not_oom_or_oom_group_kill() {
        assert_eq!(parse_oom_kill(V2_EVENTS), Some(2));
    }

    #[test]
    fn parses_the_oom_kill_line_of_v1_memory_oom_control() {
        assert_eq!(parse_oom_kill(V1_OOM_CONTROL), Some(7));
    }

    #[test]
    fn no_counter_without_an_oom_kill_line_or_with_garbage() {
        assert_eq!(parse_oom_kill(V1_OLD_KERNEL), None);
        assert_eq!(parse_oom_kill(""), None);
        assert_eq!(parse_oom_kill("oom_kill lots\n"), None);
        assert_eq!(parse_oom_kill("oom_kill -1\n"), None);
        assert_eq!(parse_oom_kill("oom_kill 1 2\n"), None);
        assert_eq!(parse_oom_kill("oom_kill\n"), None);
    }

    #[test]
    fn parses_large_values_and_tolerates_extra_whitespace() {
        assert_eq!(
            parse_oom_kill("oom_kill_disable 1\n  oom_kill\t18446744073709551615  \n"),
            Some(u64::MAX)
        );
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sparkvisor-oom-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn finds_the_v2_counter_of_the_process_cgroup_under_a_cgroup_root() {
        let root = temp_dir("v2");
        fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::create_dir_all(root.join("kubepods/pod1")).unwrap();
        let events = root.join("kubepods/pod1/memory.events");
        fs::write(&events, V2_EVENTS).unwrap();
        let counter = OomCounter::locate_from(Some(&root), "0::/kubepods/pod1\n", "");
        assert_eq!(counter.path(), Some(events.as_path()));
        assert_eq!(counter.read(), Some(2));
        // Each read sees the file as it is now.
        fs::write(&events, "oom 5\noom_kill 4\n").unwrap();
        assert_eq!(counter.read(), Some(4));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn finds_the_v1_counter_in_the_memory_hierarchy() {
        let root = temp_dir("v1");
        fs::create_dir_all(root.join("cpu,cpuacct")).unwrap();
        fs::create_dir_all(root.join("memory/docker/abc")).unwrap();
        let control = root.join("memory/docker/abc/memory.oom_control");
        fs::write(&control, V1_OOM_CONTROL).unwrap();
        let counter = OomCounter::locate_from(
            Some(&root),
            "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n",
            "",
        );
        assert_eq!(counter.path(), Some(control.as_path()));
        assert_eq!(counter.read(), Some(7));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_counter_on_an_old_v1_kernel_or_without_a_memory_controller() {
        let root = temp_dir("none");
        fs::create_dir_all(root.join("memory")).unwrap();
        fs::write(root.join("memory/memory.oom_control"), V1_OLD_KERNEL).unwrap();
        let counter = OomCounter::locate_from(Some(&root), "4:memory:/\n", "");
        assert_eq!((counter.path(), counter.read()), (None, None));
        fs::remove_dir_all(root.join("memory")).unwrap();
        let counter = OomCounter::locate_from(Some(&root), "4:memory:/\n", "");
        assert_eq!((counter.path(), counter.read()), (None, None));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_counter_whose_file_vanished_reads_none() {
        let root = temp_dir("gone");
        let file = root.join("memory.events");
        fs::write(&file, V2_EVENTS).unwrap();
        let counter = OomCounter::at(&file);
        assert_eq!(counter.read(), Some(2));
        fs::remove_file(&file).unwrap();
        assert_eq!(counter.read(), None);
        fs::remove_dir_all(&root).unwrap();
    }
}
