//! Signal and capability names a role may use (pure tables: validation happens before any `sys` call).

/// Linux signal names without the `SIG` prefix (x86_64/aarch64 numbering is `sys`'s business).
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
];

/// Linux capability names without the `CAP_` prefix (capability.h, up to CAP_CHECKPOINT_RESTORE).
const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// True for a known signal name (`TERM`, `SIGTERM`, case-insensitive) or a number 1..=64.
pub fn signal_known(name: &str) -> bool {
    if let Ok(n) = name.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.contains(&bare) || realtime_signal(bare)
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`.
fn realtime_signal(bare: &str) -> bool {
    let offset_ok = |rest: &str| rest.parse::<u32>().is_ok_and(|n| n <= 30);
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        return rest.is_empty() || rest.strip_prefix('+').is_some_and(offset_ok);
    }
    if let Some(rest) = bare.strip_prefix("RTMAX") {
        return rest.is_empty() || rest.strip_prefix('-').is_some_and(offset_ok);
    }
    false
}

/// True for a known capability name (`NET_BIND_SERVICE`, `CAP_NET_BIND_SERVICE`, case-insensitive).
pub fn capability_known(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES.contains(&bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        for ok in [
            "TERM",
            "SIGTERM",
            "term",
            "PWR",
            "15",
            "RTMIN+3",
            "SIGRTMAX-1",
        ] {
            assert!(signal_known(ok), "{ok}");
        }
        for bad in ["TERMX", "SIG", "", "0", "65", "RTMIN+", "RTMIN-1"] {
            assert!(!signal_known(bad), "{bad}");
        }
    }

    #[test]
    fn capabilities() {
        assert!(capability_known("NET_BIND_SERVICE"));
        assert!(capability_known("cap_sys_admin"));
        assert!(!capability_known("NET_BIND"));
        assert!(!capability_known(""));
    }
}
