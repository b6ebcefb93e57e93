//! Linux capabilities: names, the agent's own bounding set, and the raw `capget`/`capset`/`prctl`
//! calls the spawn code makes between fork and exec.
//!
//! Capability sets are plain `u64` bit masks (bit N = capability N), so the child side needs no
//! allocation. The `caps` crate supplies the [`caps::Capability`] names; the kernel's own highest
//! capability number comes from `/proc/sys/kernel/cap_last_cap`, so capabilities newer than the
//! `caps` crate are still dropped.
//!
//! Capability sets, including the bounding set, belong to a thread: call
//! [`reduce_agent_bounding_set`] early, before the agent starts other threads, so that every thread
//! (and every process forked from one) inherits the reduced set.

use std::io;
use std::sync::OnceLock;

/// The capabilities the agent itself keeps in its bounding set, whatever its services need:
/// switching ids and dropping capabilities in children (SETUID, SETGID, SETPCAP), signalling services
/// of any user (KILL), writing rendered files and sockets owned by service users (CHOWN, FOWNER,
/// DAC_OVERRIDE, DAC_READ_SEARCH, FSETID).
pub const AGENT_CAPABILITIES: &[caps::Capability] = &[
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_DAC_READ_SEARCH,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_FSETID,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_SETGID,
    caps::Capability::CAP_SETUID,
    caps::Capability::CAP_SETPCAP,
];

/// Errors of the agent's own capability changes.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A capability name that Linux does not know.
    #[error("unknown capability `{0}`")]
    Unknown(String),
    /// Reading the current capability sets failed.
    #[error("cannot read the capability sets: {0}")]
    Read(#[source] io::Error),
    /// Dropping a capability from the bounding set failed (usually: no CAP_SETPCAP).
    #[error("cannot drop {capability} from the bounding set: {source}")]
    DropBounding {
        /// The capability being dropped (`CAP_...` or its number).
        capability: String,
        /// The OS error.
        source: io::Error,
    },
}

/// Parses `NET_BIND_SERVICE`, `CAP_NET_BIND_SERVICE` or `net_bind_service`, ignoring surrounding
/// whitespace. The one capability-name parser: role validation (`config::role::capability_known`)
/// and a service's [`CapabilitySet`] both use it, so they cannot disagree.
pub fn parse_capability(name: &str) -> Option<caps::Capability> {
    caps::to_canonical(name.trim()).parse().ok()
}

/// Parses every name; the error lists all unknown names at once.
pub fn parse_capabilities<S: AsRef<str>>(names: &[S]) -> Result<Vec<caps::Capability>, CapsError> {
    let mut known = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for name in names {
        match parse_capability(name.as_ref()) {
            Some(cap) if !known.contains(&cap) => known.push(cap),
            Some(_) => {}
            None => unknown.push(name.as_ref().to_string()),
        }
    }
    if unknown.is_empty() {
        Ok(known)
    } else {
        Err(CapsError::Unknown(unknown.join("`, `")))
    }
}

/// A set of capabilities as a bit mask (bit N = capability N): what a service keeps, parsed from
/// its names once when its definition is built, so a spawn only copies the mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapabilitySet(u64);

impl CapabilitySet {
    /// No capabilities.
    pub const EMPTY: Self = Self(0);

    /// The set of these names ([`parse_capability`]); the error lists every unknown name.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, CapsError> {
        parse_capabilities(names).map(|caps| Self(mask_of(&caps)))
    }

    /// The set of these capabilities.
    pub fn of(caps: &[caps::Capability]) -> Self {
        Self(mask_of(caps))
    }

    /// Its bit mask.
    pub const fn mask(self) -> u64 {
        self.0
    }

    /// True when it holds no capability.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Every capability of either set.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Its capabilities, by number.
    pub fn capabilities(self) -> Vec<caps::Capability> {
        caps_of(self.0)
    }
}

/// What the agent keeps in its bounding set for a role: [`AGENT_CAPABILITIES`] plus every
/// capability a service keeps (`services`: the union of their sets). Pass it to
/// [`reduce_agent_bounding_set`].
pub fn agent_keep_set(services: CapabilitySet) -> Vec<caps::Capability> {
    let mut keep = AGENT_CAPABILITIES.to_vec();
    for cap in services.capabilities() {
        if !keep.contains(&cap) {
            keep.push(cap);
        }
    }
    keep
}

/// The bit mask of a list of capabilities.
pub fn mask_of(caps: &[caps::Capability]) -> u64 {
    caps.iter().fold(0, |mask, cap| mask | cap.bitmask())
}

/// The capabilities of a bit mask that the `caps` crate can name.
pub fn caps_of(mask: u64) -> Vec<caps::Capability> {
    let mut all: Vec<_> = caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .collect();
    all.sort_by_key(|c| c.index());
    all
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`; without procfs,
/// found by probing the bounding set). Read once.
pub fn last_cap() -> u8 {
    static LAST_CAP: OnceLock<u8> = OnceLock::new();
    *LAST_CAP.get_or_init(read_last_cap)
}

fn read_last_cap() -> u8 {
    if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap") {
        if let Ok(n) = text.trim().parse::<u8>() {
            return n.min(63);
        }
    }
    let mut last = 0;
    for cap in 0..64u8 {
        if bounding_has(cap).is_err() {
            break;
        }
        last = cap;
    }
    last
}

/// Every capability number this kernel knows, as a mask.
pub fn all_mask() -> u64 {
    match last_cap() {
        63 => u64::MAX,
        n => (1u64 << (u32::from(n) + 1)) - 1,
    }
}

/// The calling thread's effective, permitted and inheritable sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Reads the calling thread's capability sets (`capget`). Async-signal-safe.
pub fn current_sets() -> io::Result<CapSets> {
    let mut header = CapUserHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapUserData::default(); 2];
    // SAFETY: header and data are valid for the kernel's version-3 layout (two data words).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapUserHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let [low, high] = data;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(CapSets {
        effective: join(low.effective, high.effective),
        permitted: join(low.permitted, high.permitted),
        inheritable: join(low.inheritable, high.inheritable),
    })
}

/// Sets the calling thread's capability sets (`capset`). Async-signal-safe: no allocation.
pub fn set_sets(sets: CapSets) -> io::Result<()> {
    let mut header = CapUserHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // Truncation is the point: each word holds 32 capability bits.
    let word = |mask: u64, shift: u32| (mask >> shift) as u32;
    let data = [
        CapUserData {
            effective: word(sets.effective, 0),
            permitted: word(sets.permitted, 0),
            inheritable: word(sets.inheritable, 0),
        },
        CapUserData {
            effective: word(sets.effective, 32),
            permitted: word(sets.permitted, 32),
            inheritable: word(sets.inheritable, 32),
        },
    ];
    // SAFETY: header and data match the version-3 layout; the kernel only reads `data`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapUserHeader,
            data.as_ptr(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `prctl` with every argument widened to `c_ulong`, as the variadic call needs (plain int literals
/// gave EINVAL). Async-signal-safe.
pub(crate) fn prctl(option: libc::c_int, arg2: u64, arg3: u64) -> io::Result<libc::c_int> {
    let ulong = |v: u64| v as libc::c_ulong;
    // SAFETY: prctl with integer arguments only; no pointers are passed.
    let rc = unsafe { libc::prctl(option, ulong(arg2), ulong(arg3), ulong(0), ulong(0)) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Whether capability number `cap` is in the calling thread's bounding set (EINVAL: unknown number).
pub fn bounding_has(cap: u8) -> io::Result<bool> {
    prctl(libc::PR_CAPBSET_READ, u64::from(cap), 0).map(|rc| rc == 1)
}

/// The calling thread's bounding set as a mask.
pub fn bounding_mask() -> u64 {
    (0..=last_cap())
        .filter(|&cap| matches!(bounding_has(cap), Ok(true)))
        .fold(0, |mask, cap| mask | (1u64 << cap))
}

/// Drops capability number `cap` from the calling thread's bounding set. Async-signal-safe.
pub(crate) fn bounding_drop(cap: u8) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, u64::from(cap), 0).map(drop)
}

/// Drops from the agent's own bounding set (the calling thread's) every capability not in `keep`.
/// `keep` should be the union of what the services need and [`AGENT_CAPABILITIES`]. Returns what was
/// dropped (capabilities newer than the `caps` crate are dropped too but not listed). Needs
/// CAP_SETPCAP; call it before other threads start.
pub fn reduce_agent_bounding_set(
    keep: &[caps::Capability],
) -> Result<Vec<caps::Capability>, CapsError> {
    let keep = mask_of(keep);
    let mut dropped = 0u64;
    for cap in 0..=last_cap() {
        let bit = 1u64 << cap;
        if keep & bit != 0 || !bounding_has(cap).map_err(CapsError::Read)? {
            continue;
        }
        bounding_drop(cap).map_err(|source| CapsError::DropBounding {
            capability: caps_of(bit)
                .first()
                .map_or_else(|| cap.to_string(), ToString::to_string),
            source,
        })?;
        dropped |= bit;
    }
    Ok(caps_of(dropped))
}

/// Shrinks the agent's own (calling thread's) sets after its bounding set: the effective set to
/// [`AGENT_CAPABILITIES`], the permitted and inheritable sets to `keep` (what the agent and its
/// services need). A service's capabilities are raised from the permitted set in the child, so
/// they need not be effective in the agent. Call it before other threads start (threads inherit).
pub fn reduce_agent_sets(keep: &[caps::Capability]) -> io::Result<CapSets> {
    let current = current_sets()?;
    let keep = mask_of(keep);
    let sets = CapSets {
        effective: current.effective & mask_of(AGENT_CAPABILITIES),
        permitted: current.permitted & keep,
        inheritable: current.inheritable & keep,
    };
    set_sets(sets)?;
    Ok(sets)
}

/// True when the agent runs with every capability the kernel knows in its effective set (a
/// `--privileged` container or a root process on the host): the caller warns loudly.
pub fn looks_privileged() -> bool {
    let all = all_mask();
    current_sets().is_ok_and(|sets| sets.effective & all == all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use caps::Capability;

    #[test]
    fn parses_names_in_every_spelling() {
        for name in [
            "NET_BIND_SERVICE",
            "CAP_NET_BIND_SERVICE",
            "net_bind_service",
            "cap_net_bind_service",
            " Net_Bind_Service ",
        ] {
            assert_eq!(
                parse_capability(name),
                Some(Capability::CAP_NET_BIND_SERVICE),
                "{name}"
            );
        }
        assert_eq!(parse_capability("NET_BIND"), None);
        assert_eq!(parse_capability(""), None);
    }

    #[test]
    fn parse_capabilities_reports_every_unknown_name() {
        let err = parse_capabilities(&["CHOWN", "BOGUS", "KILL", "NOPE"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability `BOGUS`, `NOPE`");
        let ok = parse_capabilities(&["KILL", "cap_kill", "CHOWN"]).unwrap();
        assert_eq!(ok, [Capability::CAP_KILL, Capability::CAP_CHOWN]);
    }

    #[test]
    fn agent_keep_set_adds_service_capabilities() {
        let keep = agent_keep_set(CapabilitySet::parse(&["NET_BIND_SERVICE", "kill"]).unwrap());
        assert_eq!(keep.len(), AGENT_CAPABILITIES.len() + 1);
        assert!(keep.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(keep.contains(&Capability::CAP_SETPCAP));
        assert!(CapabilitySet::parse(&["NOPE"]).is_err());
    }

    #[test]
    fn capability_sets_parse_once_into_a_mask() {
        let table: [(&[&str], Result<u64, &str>); 6] = [
            (&[], Ok(0)),
            (
                &["CHOWN", "cap_kill", " Net_Bind_Service "],
                Ok(1 | 1 << 5 | 1 << 10),
            ),
            (&["KILL", "kill", "CAP_KILL"], Ok(1 << 5)),
            (&["checkpoint_restore"], Ok(1 << 40)),
            (
                &["NET_BIND", "CHOWN", "BOGUS"],
                Err("unknown capability `NET_BIND`, `BOGUS`"),
            ),
            (&["CAP_"], Err("unknown capability `CAP_`")),
        ];
        for (names, want) in table {
            let got = CapabilitySet::parse(names)
                .map(CapabilitySet::mask)
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{names:?}");
        }
        let set = CapabilitySet::parse(&["KILL"]).unwrap();
        assert!(CapabilitySet::EMPTY.is_empty() && !set.is_empty());
        assert_eq!(
            set.union(CapabilitySet::of(&[Capability::CAP_CHOWN]))
                .mask(),
            1 | 1 << 5
        );
        assert_eq!(set.capabilities(), [Capability::CAP_KILL]);
    }

    #[test]
    fn masks_round_trip() {
        let caps = [Capability::CAP_CHOWN, Capability::CAP_NET_BIND_SERVICE];
        let mask = mask_of(&caps);
        assert_eq!(mask, 1 | (1 << 10));
        assert_eq!(caps_of(mask), caps);
    }

    #[test]
    fn last_cap_matches_the_kernel() {
        // Linux 5.9+ knows CAP_CHECKPOINT_RESTORE (40).
        assert!(last_cap() >= 40, "{}", last_cap());
        assert_eq!(all_mask().count_ones(), u32::from(last_cap()) + 1);
    }

    #[test]
    fn current_sets_match_proc_status() {
        let sets = current_sets().unwrap();
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(sets.effective, field("CapEff:"));
        assert_eq!(sets.permitted, field("CapPrm:"));
        assert_eq!(sets.inheritable, field("CapInh:"));
        assert_eq!(bounding_mask(), field("CapBnd:"));
    }
}
