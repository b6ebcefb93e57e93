//! Facts about the host that need system calls: the affinity mask and the kernel hostname.

use nix::sched::{sched_getaffinity, CpuSet};
use nix::unistd::{gethostname, Pid};

/// CPUs in this process's affinity mask, or None when it cannot be read.
pub fn affinity_cpus() -> Option<u32> {
    let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let count = (0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .count();
    u32::try_from(count).ok()
}

/// The kernel hostname (`uname -n`), or None when it is not valid UTF-8 or cannot be read.
pub fn hostname() -> Option<String> {
    gethostname().ok()?.into_string().ok()
}
