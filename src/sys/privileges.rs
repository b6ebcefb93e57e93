//! The privilege drop of a service, planned before fork; [`super::child`] applies it in the child
//! before exec.
//!
//! Order (youki's, which the kernel's rules require):
//! 1. drop from the bounding set every capability the service does not keep (needs CAP_SETPCAP,
//!    which is why this happens while the child still has the agent's ids);
//! 2. `PR_SET_KEEPCAPS` on, so the permitted set survives the uid change;
//! 3. `setgroups`, `setresgid`, `setresuid` (raw syscalls: they change only the calling thread, which
//!    is the whole child; glibc's wrappers would try to broadcast to the agent's other threads);
//! 4. effective = permitted = inheritable = the kept set, then the ambient set = the kept set, so a
//!    non-root program keeps exactly those capabilities across `execve`;
//! 5. `PR_SET_KEEPCAPS` off; 6. `PR_SET_NO_NEW_PRIVS` when asked.
//!
//! So user 0 with `capabilities: []` is root with empty bounding, permitted, effective, inheritable
//! and ambient sets: root only by name.

use std::io;

use super::caps;
use crate::users::UserIds;

/// Why a privilege plan cannot be made (found before fork, so nothing was started).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The agent itself lacks a capability the service should keep.
    #[error("the agent does not hold {0} (not in its permitted or bounding set), so a service cannot keep it")]
    Unavailable(String),
    /// Reading the agent's ids or capabilities failed.
    #[error("cannot read the agent's credentials: {0}")]
    Credentials(#[source] io::Error),
}

/// Everything the child needs to drop privileges, computed before fork.
#[derive(Debug, Clone)]
pub(crate) struct PrivilegePlan {
    /// `(uid, gid, groups)` to switch to; `None` keeps the agent's ids.
    pub(super) ids: Option<(libc::uid_t, libc::gid_t, Vec<libc::gid_t>)>,
    /// Capabilities kept in every set (bit mask).
    pub(super) keep: u64,
    /// The kernel's highest capability number.
    pub(super) last_cap: u8,
    /// The agent holds CAP_SETPCAP, so the bounding set can be reduced.
    pub(super) drop_bounding: bool,
    /// Set `PR_SET_NO_NEW_PRIVS`.
    pub(super) no_new_privs: bool,
}

impl PrivilegePlan {
    /// Plans the drop to `user` (or the agent's ids) keeping exactly `capabilities` (typed when
    /// the service's definition was built; here only checked against what the agent holds).
    pub(crate) fn new(
        user: Option<&UserIds>,
        capabilities: caps::CapabilitySet,
        no_new_privs: bool,
    ) -> Result<Self, PlanError> {
        let keep = capabilities.mask();
        let agent = caps::current_sets().map_err(PlanError::Credentials)?;
        let available = agent.permitted & caps::bounding_mask();
        let missing = keep & !available;
        if missing != 0 {
            let names: Vec<String> = caps::caps_of(missing)
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(PlanError::Unavailable(names.join(", ")));
        }
        let ids = match user {
            Some(user) if !already_running_as(user) => {
                Some((user.uid, user.gid, user.groups.clone()))
            }
            _ => None,
        };
        Ok(Self {
            ids,
            keep,
            last_cap: caps::last_cap(),
            drop_bounding: agent.effective & caps::mask_of(&[::caps::Capability::CAP_SETPCAP]) != 0,
            no_new_privs,
        })
    }
}

/// True when the agent already runs with exactly these ids and groups, so no id change (and no
/// CAP_SETUID/CAP_SETGID) is needed: a rootless agent can run services as itself.
fn already_running_as(user: &UserIds) -> bool {
    let (uid, gid) = (nix::unistd::getresuid(), nix::unistd::getresgid());
    let same_ids = uid.is_ok_and(|u| {
        [u.real, u.effective, u.saved]
            .iter()
            .all(|x| x.as_raw() == user.uid)
    }) && gid.is_ok_and(|g| {
        [g.real, g.effective, g.saved]
            .iter()
            .all(|x| x.as_raw() == user.gid)
    });
    same_ids
        && nix::unistd::getgroups().is_ok_and(|groups| {
            let mut have: Vec<u32> = groups.iter().map(|g| g.as_raw()).collect();
            let mut want = user.groups.clone();
            have.sort_unstable();
            have.dedup();
            want.sort_unstable();
            want.dedup();
            have == want
        })
}
