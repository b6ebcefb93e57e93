//! Signal and capability names a role may use (signals: `sys::signals`' table; capabilities: a pure
//! table, so validation needs no capability call).

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

/// True for a signal name or number sparkvisor can send (`TERM`, `SIGTERM`, `15`, `RTMIN+2`).
pub fn signal_known(name: &str) -> bool {
    crate::signal_names::signal_by_name(name).is_some()
}

/// True for a signal that asks the agent itself to act, which `agent_signals` may name: HUP
/// (reload), TERM or INT (stop), by name or number.
pub fn agent_signal_known(name: &str) -> bool {
    use crate::signal_names::signal_by_name;
    signal_by_name(name).is_some_and(|n| {
        ["HUP", "TERM", "INT"]
            .iter()
            .any(|s| signal_by_name(s) == Some(n))
    })
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
    fn agent_signals_are_only_stop_and_reload() {
        for ok in ["HUP", "SIGTERM", "int", "1"] {
            assert!(agent_signal_known(ok), "{ok}");
        }
        for bad in ["KILL", "USR1", "PWR", "nope", "9"] {
            assert!(!agent_signal_known(bad), "{bad}");
        }
    }

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
