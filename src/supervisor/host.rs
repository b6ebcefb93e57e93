//! The real [`super::Sys`]: spawns through `sys::spawn`, signals through `sys::process`, reaps through
//! `sys::reaper`, runs network probes in short-lived threads.
