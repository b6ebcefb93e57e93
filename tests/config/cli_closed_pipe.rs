#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! CLI commands writing into a pipe whose reader is gone (`sparkvisor inspect | head -c1`) end
//! normally instead of panicking with "failed printing to stdout: Broken pipe" and exit 101.

use crate::common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

/// A pipe whose read end is already closed: every write to the returned end fails with EPIPE.
fn closed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both fds were just created by pipe(2) and are owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    write
}

fn run_into_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(common::bin())
        .args(args)
        .env("SPARKVISOR_ROLES", common::repo().join("roles"))
        .env("SPARKVISOR_TEMPLATES", common::repo().join("templates"))
        .env_remove("SPARKVISOR_ROLE")
        .env_remove("SPARK_MODE")
        .env_remove("SPARKVISOR_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(closed_pipe()))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_and_check_survive_a_closed_stdout() {
    for args in [
        &["inspect", "--role", "master"][..],
        &["inspect", "--json", "--role", "master"],
        &["check"],
        &["--version"],
    ] {
        let (code, stderr) = run_into_closed_stdout(args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("failed printing"),
            "{args:?}: {stderr}"
        );
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
}

/// The same through a shell pipeline into `head -c1`, as a user types it.
#[test]
fn inspect_piped_into_head() {
    let script = format!(
        "{} inspect --role master | head -c1 >/dev/null",
        common::bin()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .env("SPARKVISOR_ROLES", common::repo().join("roles"))
        .env("SPARKVISOR_TEMPLATES", common::repo().join("templates"))
        .env_remove("SPARKVISOR_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}
