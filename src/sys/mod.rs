//! Every `unsafe`, `nix` and `caps` call of sparkvisor lives under this module, behind a narrow seam.

pub mod host;
pub mod process;
pub mod reaper;
pub mod signals;
