#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The agent's own capabilities: reducing its bounding set (in a forked child, so the harness keeps
//! its own) and recognising a privileged container.

use crate::support;

use caps::Capability;
use sparkvisor::sys::caps::{
    all_mask, current_sets, looks_privileged, mask_of, reduce_agent_bounding_set, set_sets,
    CapabilitySet, AGENT_CAPABILITIES,
};
use sparkvisor::sys::spawn::{spawn, SpawnError};
use support::*;

fn thread_cap(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn agent_bounding_set_keeps_only_what_is_needed() {
    if !require_root("agent_bounding_set_keeps_only_what_is_needed") {
        return;
    }
    in_forked_child(|| {
        let before = thread_cap("CapBnd:");
        let mut keep = AGENT_CAPABILITIES.to_vec();
        keep.push(Capability::CAP_NET_BIND_SERVICE);
        let dropped = reduce_agent_bounding_set(&keep).map_err(|e| e.to_string())?;
        let after = thread_cap("CapBnd:");
        let expected = before & mask_of(&keep);
        if after != expected {
            return Err(format!("CapBnd {after:x}, expected {expected:x}"));
        }
        if mask_of(&dropped) != before & !mask_of(&keep) {
            return Err(format!("reported dropped {dropped:?}"));
        }
        if !dropped.contains(&Capability::CAP_SYS_ADMIN)
            || !dropped.contains(&Capability::CAP_NET_RAW)
        {
            return Err(format!("SYS_ADMIN/NET_RAW not dropped: {dropped:?}"));
        }
        // Idempotent: nothing left to drop.
        let again = reduce_agent_bounding_set(&keep).map_err(|e| e.to_string())?;
        if !again.is_empty() {
            return Err(format!("second reduction dropped {again:?}"));
        }

        // A service cannot ask for what the agent gave up; it can keep what the agent kept.
        let mut raw = spec(&["sleep", "30"]);
        raw.privileges = plan(None, CapabilitySet::parse(&["NET_RAW"]).unwrap(), true);
        match spawn(&raw) {
            Err(SpawnError::Privileges { source, .. }) => {
                if !source.to_string().contains("CAP_NET_RAW") {
                    return Err(format!("error does not name the capability: {source}"));
                }
            }
            other => return Err(format!("NET_RAW service: {other:?}")),
        }
        let mut bind = spec(&["sleep", "30"]);
        let nobody = sparkvisor::sys::users::resolve_user(
            "65534",
            None,
            None,
            &sparkvisor::sys::users::UserDb::default(),
        )
        .map_err(|e| e.to_string())?;
        bind.privileges = plan(
            Some(nobody),
            CapabilitySet::parse(&["NET_BIND_SERVICE"]).unwrap(),
            true,
        );
        let child = Running::start(&bind);
        let sets = cap_sets(&child.status());
        if sets != [1 << 10; 5] {
            return Err(format!("service sets {sets:x?}"));
        }
        Ok(())
    });
    // The harness itself is untouched.
    assert_ne!(
        thread_cap("CapBnd:") & (1 << 21),
        0,
        "CAP_SYS_ADMIN left the test's bounding set"
    );
}

#[test]
fn privileged_means_every_capability_is_effective() {
    let full = current_sets().unwrap().effective & all_mask() == all_mask();
    assert_eq!(looks_privileged(), full);
    if !require_root("privileged_means_every_capability_is_effective") {
        return;
    }
    in_forked_child(|| {
        let mut sets = current_sets().map_err(|e| e.to_string())?;
        sets.effective &= !(1 << 21); // CAP_SYS_ADMIN out of the effective set
        set_sets(sets).map_err(|e| e.to_string())?;
        if looks_privileged() {
            return Err("privileged without CAP_SYS_ADMIN".into());
        }
        Ok(())
    });
}

#[test]
fn bounding_reduction_without_setpcap_is_an_error() {
    if !require_root("bounding_reduction_without_setpcap_is_an_error") {
        return;
    }
    in_forked_child(|| {
        let mut sets = current_sets().map_err(|e| e.to_string())?;
        sets.effective &= !mask_of(&[Capability::CAP_SETPCAP]);
        set_sets(sets).map_err(|e| e.to_string())?;
        match reduce_agent_bounding_set(&[]) {
            Err(e) if e.to_string().contains("cannot drop") => Ok(()),
            other => Err(format!("expected an error, got {other:?}")),
        }
    });
}
