//! Reading the kernel's small text files (`/proc`, `/sys/fs/cgroup`, `/sys/devices`) in one
//! `read(2)`: they report a size of 0, so `std::fs::read_to_string` starts with a 32-byte probe
//! and doubles from there (strace showed `/proc/self/mountinfo` read in nine steps, `/proc/meminfo`
//! in eight). `/proc/self/mountinfo` is also read once per process and kept: the agent's mounts do
//! not change while it runs (a container's mounts are fixed at its creation), and config, cgroup
//! detection, the OOM counter and the renderer all need it at start.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

/// Room for every file read this way in one go (mountinfo of a busy host is ~5 KiB).
const INITIAL: usize = 16 * 1024;

/// The whole file as UTF-8, read with a buffer large enough that a small kernel file takes one
/// `read` plus the one that sees its end.
pub fn read(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(INITIAL);
    file.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Where the kernel lists this process's mounts (parsed by [`crate::sys::mountinfo`], which reads it
/// through [`self_mountinfo`]; the path lives here so the two modules do not import each other).
pub const SELF_MOUNTINFO: &str = "/proc/self/mountinfo";

/// `/proc/self/mountinfo`, read on first use and kept for the life of the process (empty when it
/// cannot be read).
pub fn self_mountinfo() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| read(SELF_MOUNTINFO).unwrap_or_default())
}

/// True when process `pid` is on its way out: a zombie, exiting (`PF_EXITING`), or with a SIGKILL
/// pending. False when it is gone or running on. The OOM killer's victim is in one of these states
/// from the moment the kernel counts the kill until it is reaped.
pub fn dying(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    const SIGKILL_BIT: u64 = 1 << 8;
    let Ok(stat) = read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the parenthesised name (which may hold spaces): state is the 1st, flags the 7th.
    let rest = stat
        .rfind(')')
        .and_then(|at| stat.get(at + 1..))
        .unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().copied().unwrap_or("");
    let flags = fields
        .get(6)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0);
    if matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0 {
        return true;
    }
    let status = read(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().any(|line| {
        let pending = line
            .strip_prefix("SigPnd:")
            .or_else(|| line.strip_prefix("ShdPnd:"));
        pending
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|mask| mask & SIGKILL_BIT != 0)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn a_running_process_is_not_dying_a_zombie_is() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(!super::dying(pid));
        child.kill().unwrap();
        // Not reaped yet: SIGKILL pending, exiting, then a zombie until wait().
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !super::dying(pid) {
            assert!(std::time::Instant::now() < deadline, "never seen dying");
        }
        child.wait().unwrap();
        assert!(!super::dying(pid), "gone");
    }

    #[test]
    fn reads_proc_files_whole() {
        let ours = super::read("/proc/self/status").unwrap();
        assert!(ours.starts_with("Name:"), "{ours}");
        assert!(
            ours.contains("\nVmRSS:") || ours.contains("\nThreads:"),
            "{ours}"
        );
        let mounts = super::self_mountinfo();
        assert_eq!(
            mounts,
            std::fs::read_to_string("/proc/self/mountinfo").unwrap()
        );
        assert!(std::ptr::eq(mounts, super::self_mountinfo()), "read once");
    }
}
