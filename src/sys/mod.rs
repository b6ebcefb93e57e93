//! Every `unsafe`, `nix` and `caps` call of sparkvisor lives under this module, behind a narrow seam.
//! Beside the seam, safe readers of what the kernel and the host keep in files (`/proc`, mountinfo,
//! `/etc/passwd` and `/etc/group`), which refuse `unsafe` as the rest of the crate does.

pub mod caps;
pub mod child;
pub mod host;
pub mod interrupt;
#[deny(unsafe_code)]
pub mod mountinfo;
pub mod peercred;
pub mod poll;
pub mod privileges;
pub mod process;
#[deny(unsafe_code)]
pub mod procfs;
pub mod reaper;
pub mod signals;
pub mod spawn;
pub mod thread;
#[deny(unsafe_code)]
pub mod users;
pub mod watch;
