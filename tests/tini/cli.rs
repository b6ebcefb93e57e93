#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! tini mode's command line: the names it answers to (`tini`, `docker-init` symlinks), `--version`
//! shapes, `-h`, `-l`, usage errors, verbosity.

use crate::support;

use std::process::{Command, Output};

use support::*;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `program args...` as a command.
fn run_as<S: AsRef<std::ffi::OsStr>>(program: &std::path::Path, args: &[S]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

/// The binary under another name, via a symlink in a fresh directory.
fn linked_as(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let link = dir.join(name);
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    link
}

#[test]
fn version_under_tini_names_has_the_shape_docker_info_parses() {
    let dir = tempdir();
    for name in ["tini", "docker-init"] {
        let out = output(run_as(&linked_as(dir.path(), name), &["--version"]));
        assert_eq!(code(out.status), 0);
        let line = stdout(&out);
        let line = line.trim_end();
        // moby's parseInitVersion: "tini version X - git.Y" with no dot in Y.
        let (version, commit) = line.split_once(" - ").unwrap();
        assert!(version.starts_with("tini version 0.19.0"), "{line}");
        let hash = commit.strip_prefix("git.").unwrap();
        assert!(!hash.is_empty() && !hash.contains('.'), "{line}");
    }
}

#[test]
fn version_under_its_own_name_is_sparkvisors() {
    let out = output(direct(["--version"]));
    assert_eq!(code(out.status), 0);
    assert_eq!(
        stdout(&out).trim(),
        format!("sparkvisor {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn tini_name_runs_commands_like_tini() {
    let dir = tempdir();
    let tini = linked_as(dir.path(), "tini");
    let out = output(run_as(&tini, &["-s", "--", "sh", "-c", "exit 5"]));
    assert_eq!(code(out.status), 5);
    // A bare command, and `run` is a command there, not a subcommand.
    let out = output(run_as(&tini, &["-s", "true"]));
    assert_eq!(code(out.status), 0);
    let docker_init = linked_as(dir.path(), "docker-init");
    let out = output(run_as(&docker_init, &["-s", "--", "sh", "-c", "exit 6"]));
    assert_eq!(code(out.status), 6);
}

#[test]
fn help_and_license_exit_zero() {
    let dir = tempdir();
    let tini = linked_as(dir.path(), "tini");
    let out = output(run_as(&tini, &["-h"]));
    assert_eq!(code(out.status), 0);
    assert!(
        stdout(&out).contains("supervision of a valid init process"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("more verbose"));
    let out = output(run_as(&tini, &["-l"]));
    assert_eq!(code(out.status), 0);
    assert!(stdout(&out).contains("License"), "{}", stdout(&out));
}

#[test]
fn usage_errors_exit_one_with_usage() {
    let dir = tempdir();
    let tini = linked_as(dir.path(), "tini");
    let cases: [&[&str]; 7] = [
        &[],
        &["-s"],
        &["-x", "true"],
        &["-e", "256", "true"],
        &["-e", "x", "true"],
        &["-p", "NOSUCHSIGNAL", "true"],
        // GNU getopt permutation: tini's documented quirk, `-c` is parsed as an option.
        &["-v", "sh", "-c", "true"],
    ];
    for args in cases {
        let out = output(run_as(&tini, args));
        assert_eq!(code(out.status), 1, "{args:?}");
        assert!(
            stderr(&out).contains("Usage:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // The same under sparkvisor's own name (tini mode chosen by the flags).
    let out = output(direct(["-s", "-e", "300", "--", "true"]));
    assert_eq!(code(out.status), 1);
    assert!(
        stderr(&out).contains("Not a valid exit code"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verbosity_three_mentions_sigchld() {
    let mut cmd = direct(["-s", "true"]);
    cmd.env("TINI_VERBOSITY", "3");
    let out = output(cmd);
    assert_eq!(code(out.status), 0);
    assert!(
        stdout(&out).contains("Received SIGCHLD"),
        "{}",
        stdout(&out)
    );
    // Default verbosity: nothing on stdout.
    let out = output(direct(["-s", "true"]));
    assert_eq!(stdout(&out), "");
    // -vv shows info lines.
    let out = output(direct(["-s", "-vv", "--", "true"]));
    assert!(
        stdout(&out).contains("Spawned child process"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn parent_death_signal_accepts_tini_names() {
    // tini accepts full names (SIGKILL); sparkvisor also short names and numbers.
    for sig in ["SIGKILL", "TERM", "10"] {
        let out = output(direct(["-s", "-p", sig, "--", "true"]));
        assert_eq!(code(out.status), 0, "{sig}: {}", stderr(&out));
    }
}
