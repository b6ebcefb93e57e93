//! Every `unsafe`, `nix` and `caps` call of sparkvisor lives under this module, behind a narrow seam.
pub mod peercred;
