//! Every `unsafe`, `nix` and `caps` call of sparkvisor lives under this module, behind a narrow seam.

pub mod caps;
pub mod child;
pub mod host;
pub mod interrupt;
pub mod peercred;
pub mod poll;
pub mod privileges;
pub mod process;
pub mod reaper;
pub mod signals;
pub mod spawn;
pub mod thread;
pub mod watch;
