//! The privilege drop of a service, planned once with its definition (at start and by each
//! reload) against the agent's credentials of that moment ([`AgentCredentials`]); a spawn only
//! hands the plan to [`super::child`], which applies it in the child before exec.
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
use crate::sys::users::UserIds;

/// Why a spawn cannot drop privileges as planned (found before fork, so nothing was started).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The agent itself lacks a capability the service should keep.
    #[error("the agent does not hold {0} (not in its permitted or bounding set), so a service cannot keep it")]
    Unavailable(String),
}

/// The agent's own credentials, read when its services' plans are made (at start and by each
/// reload), so a spawn reads nothing of the agent's state. They do not change under a plan: the
/// agent's ids never change, and its one capability reduction at start keeps SETPCAP effective
/// and every capability a service of its role keeps, so a plan made before it equals one made
/// after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCredentials {
    /// Real, effective and saved uid.
    uids: [libc::uid_t; 3],
    /// Real, effective and saved gid.
    gids: [libc::gid_t; 3],
    /// Supplementary groups, sorted, without duplicates.
    groups: Vec<libc::gid_t>,
    /// Capabilities it can hand on: in its permitted and its bounding set.
    available: u64,
    /// It holds CAP_SETPCAP (effective), so a child can reduce its bounding set.
    setpcap: bool,
    /// The kernel's highest capability number.
    last_cap: u8,
}

impl AgentCredentials {
    /// The calling thread's credentials (the agent's: its threads share them).
    pub fn current() -> io::Result<Self> {
        let sets = caps::current_sets()?;
        let uid = nix::unistd::getresuid()?;
        let gid = nix::unistd::getresgid()?;
        let mut groups: Vec<libc::gid_t> = nix::unistd::getgroups()?
            .iter()
            .map(|g| g.as_raw())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        Ok(Self {
            uids: [uid.real, uid.effective, uid.saved].map(|u| u.as_raw()),
            gids: [gid.real, gid.effective, gid.saved].map(|g| g.as_raw()),
            groups,
            available: sets.permitted & caps::bounding_mask(),
            setpcap: sets.effective & caps::mask_of(&[::caps::Capability::CAP_SETPCAP]) != 0,
            last_cap: caps::last_cap(),
        })
    }

    /// Its effective uid is 0: it can run services as other users and hand them capabilities.
    pub fn is_root(&self) -> bool {
        self.uids[1] == 0
    }

    /// True when it already runs with exactly `user`'s ids and groups, so no id change (and no
    /// CAP_SETUID/CAP_SETGID) is needed: a rootless agent can run services as itself.
    fn runs_as(&self, user: &UserIds) -> bool {
        let mut want = user.groups.clone();
        want.sort_unstable();
        want.dedup();
        self.uids.iter().all(|&u| u == user.uid)
            && self.gids.iter().all(|&g| g == user.gid)
            && self.groups == want
    }
}

/// Everything the child needs to drop privileges, planned once per service (with its
/// definition) against the agent's credentials; [`super::spawn`] only checks
/// [`PrivilegePlan::unavailable`] and hands it to the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegePlan {
    /// The user the child runs as (its `HOME`, `USER` and `LOGNAME` too); `None`: the agent's.
    pub(super) user: Option<UserIds>,
    /// `(uid, gid, groups)` to switch to; `None` keeps the agent's ids.
    pub(super) ids: Option<(libc::uid_t, libc::gid_t, Vec<libc::gid_t>)>,
    /// Capabilities kept in every set (bit mask).
    pub(super) keep: u64,
    /// Of those, the ones the agent does not hold: a spawn with this plan is refused.
    pub(super) unavailable: u64,
    /// The kernel's highest capability number.
    pub(super) last_cap: u8,
    /// The agent holds CAP_SETPCAP, so the bounding set can be reduced.
    pub(super) drop_bounding: bool,
    /// Set `PR_SET_NO_NEW_PRIVS`.
    pub(super) no_new_privs: bool,
}

impl PrivilegePlan {
    /// Plans the drop to `user` (or the agent's ids) keeping exactly `capabilities` (typed when
    /// the service's definition was built), given what `agent` holds.
    pub fn new(
        user: Option<UserIds>,
        capabilities: caps::CapabilitySet,
        no_new_privs: bool,
        agent: &AgentCredentials,
    ) -> Self {
        let keep = capabilities.mask();
        let ids = match &user {
            Some(user) if !agent.runs_as(user) => Some((user.uid, user.gid, user.groups.clone())),
            _ => None,
        };
        Self {
            user,
            ids,
            keep,
            unavailable: keep & !agent.available,
            last_cap: agent.last_cap,
            drop_bounding: agent.setpcap,
            no_new_privs,
        }
    }

    /// The user the child runs as; `None`: the agent's own.
    pub fn user(&self) -> Option<&UserIds> {
        self.user.as_ref()
    }

    /// Refuses a plan that keeps a capability the agent does not hold (the service is then not
    /// started, as any spawn failure).
    pub(super) fn check(&self) -> Result<(), PlanError> {
        if self.unavailable == 0 {
            return Ok(());
        }
        let names: Vec<String> = caps::caps_of(self.unavailable)
            .iter()
            .map(ToString::to_string)
            .collect();
        Err(PlanError::Unavailable(names.join(", ")))
    }
}
