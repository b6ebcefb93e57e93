//! Signal and capability names a role may use (signals: `sys::signals`' table; capabilities: the
//! one parser in `sys::caps`, which a service's capability set is built with too, so a name that
//! passes validation is a name the spawn keeps).

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

/// True for a known capability name (`NET_BIND_SERVICE`, `CAP_NET_BIND_SERVICE`, case-insensitive,
/// surrounding whitespace ignored): [`crate::sys::caps::parse_capability`] knows it.
pub fn capability_known(name: &str) -> bool {
    crate::sys::caps::parse_capability(name).is_some()
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

    /// Validation and the service's capability set agree on every spelling: what `check` accepts
    /// is what the spawn keeps, and what it refuses the definition refuses too.
    #[test]
    fn validation_and_the_capability_set_agree() {
        use crate::sys::caps::CapabilitySet;
        let table = [
            ("NET_BIND_SERVICE", Some(1u64 << 10)),
            ("cap_net_bind_service", Some(1 << 10)),
            ("Cap_Chown", Some(1)),
            (" KILL ", Some(1 << 5)),
            ("\tSYS_ADMIN\n", Some(1 << 21)),
            ("BPF", Some(1 << 39)),
            ("CHECKPOINT_RESTORE", Some(1 << 40)),
            ("NET BIND SERVICE", None),
            ("CAP_", None),
            ("CAPCHOWN", None),
            ("", None),
            ("  ", None),
        ];
        for (name, mask) in table {
            assert_eq!(capability_known(name), mask.is_some(), "{name:?}");
            let set = CapabilitySet::parse(&[name]).ok().map(CapabilitySet::mask);
            assert_eq!(set, mask, "{name:?}");
        }
    }
}
