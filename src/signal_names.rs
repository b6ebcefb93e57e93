//! Signal names and numbers: `TERM` ↔ 15, `SIGRTMIN+2` ↔ 36 with glibc. Pure (no system call), so
//! that role validation, the state machine and the status wire types share one table without
//! depending on `sys`.
//!
//! The standard signals come from nix's [`Signal`] (its `FromStr` and `as_str`: a table of names,
//! nothing here calls into the kernel); this module adds what nix does not cover: numbers,
//! case-insensitive names with or without `SIG`, the aliases Linux's `kill -l` accepts, and the
//! real-time signals relative to the C library's `SIGRTMIN`/`SIGRTMAX`.

use std::str::FromStr;

use nix::sys::signal::Signal;

/// Aliases accepted by [`signal_by_name`] but never printed (nix knows only the canonical names).
const ALIASES: [(&str, i32); 4] = [
    ("IOT", libc::SIGABRT),
    ("POLL", libc::SIGIO),
    ("CLD", libc::SIGCHLD),
    ("UNUSED", libc::SIGSYS),
];

/// SIGRTMIN of the C library this binary is built with (34 with glibc, 35 with musl).
pub fn rt_min() -> i32 {
    libc::SIGRTMIN()
}

fn rt_max() -> i32 {
    libc::SIGRTMAX()
}

/// The name of a standard (non-real-time) signal without `SIG`: `15` → `TERM`.
pub fn standard_signal_name(signo: i32) -> Option<&'static str> {
    let name = Signal::try_from(signo).ok()?.as_str();
    Some(name.strip_prefix("SIG").unwrap_or(name))
}

/// Parses a signal given by name or number: `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+2`, `SIGRTMAX-1`.
/// Returns `None` for anything that is not a valid signal number.
pub fn signal_by_name(name: &str) -> Option<i32> {
    let trimmed = name.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return (1..=rt_max()).contains(&number).then_some(number);
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(signal) = Signal::from_str(&format!("SIG{bare}")) {
        return Some(signal as i32);
    }
    if let Some(&(_, signo)) = ALIASES.iter().find(|(n, _)| *n == bare) {
        return Some(signo);
    }
    let (base, offset) = if let Some(rest) = bare.strip_prefix("RTMIN") {
        (rt_min(), parse_offset(rest, '+')?)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        (rt_max(), -parse_offset(rest, '-')?)
    } else {
        return None;
    };
    let signo = base + offset;
    (rt_min()..=rt_max()).contains(&signo).then_some(signo)
}

/// `""` → 0, `"+3"` (with `sign` `+`) → 3.
fn parse_offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
}

/// The name without `SIG`: `TERM`, `RTMIN+2`, `RTMAX`; None for numbers without a name.
pub fn short_signal_name(signo: i32) -> Option<String> {
    if let Some(name) = standard_signal_name(signo) {
        return Some(name.to_string());
    }
    if !(rt_min()..=rt_max()).contains(&signo) {
        return None;
    }
    Some(match signo - rt_min() {
        0 => "RTMIN".to_string(),
        _ if signo == rt_max() => "RTMAX".to_string(),
        offset => format!("RTMIN+{offset}"),
    })
}

/// The conventional name of a signal: `SIGTERM`, `SIGRTMIN+2`; unknown numbers print as `SIG<n>`.
pub fn signal_name(signo: i32) -> String {
    if let Some(name) = standard_signal_name(signo) {
        return format!("SIG{name}");
    }
    if (rt_min()..=rt_max()).contains(&signo) {
        let offset = signo - rt_min();
        return if offset == 0 {
            "SIGRTMIN".to_string()
        } else {
            format!("SIGRTMIN+{offset}")
        };
    }
    format!("SIG{signo}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        assert_eq!(signal_by_name("TERM"), Some(libc::SIGTERM));
        assert_eq!(signal_by_name("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_by_name("sigterm"), Some(libc::SIGTERM));
        assert_eq!(signal_by_name("15"), Some(15));
        assert_eq!(signal_by_name("PWR"), Some(libc::SIGPWR));
        assert_eq!(signal_by_name("IOT"), Some(libc::SIGABRT));
        assert_eq!(signal_by_name("RTMIN"), Some(libc::SIGRTMIN()));
        assert_eq!(signal_by_name("RTMIN+2"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(signal_by_name("SIGRTMAX-1"), Some(libc::SIGRTMAX() - 1));
        for signo in 1..=libc::SIGRTMAX() {
            let name = signal_name(signo);
            // 32 and 33 are reserved by glibc below SIGRTMIN and have no name.
            if !name.starts_with("SIG3") {
                assert_eq!(signal_by_name(&name), Some(signo), "{name}");
            }
        }
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }

    /// nix's names are the ones sparkvisor has always printed (`IO`, not `POLL`; `CHLD`, not `CLD`).
    #[test]
    fn standard_names_by_number() {
        let names: Vec<&str> = (1..=31).filter_map(standard_signal_name).collect();
        assert_eq!(
            names,
            [
                "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
                "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN",
                "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
            ]
        );
        assert_eq!(standard_signal_name(0), None);
        assert_eq!(standard_signal_name(libc::SIGRTMIN()), None);
        for (alias, signo) in ALIASES {
            assert_eq!(signal_by_name(alias), Some(signo), "{alias}");
            assert_eq!(
                signal_by_name(&format!("sig{alias}")),
                Some(signo),
                "{alias}"
            );
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "0", "-1", "65", "FOO", "SIG", "RTMIN+99", "RTMIN-1", "RTMAX+1", "RTMIN+x",
        ] {
            assert_eq!(signal_by_name(bad), None, "{bad}");
        }
    }
}
