#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The README's main command on a fresh machine (issue 10): `scripts/cluster` runs the same install
//! step as `scripts/test` (scripts/lib/prereqs.sh), which installs what is missing and says why.
//! Checked the way a newcomer meets it: in a clean container from the base image (plain Debian
//! bookworm without debootstrap), the cluster's install step installs debootstrap.

use crate::docker_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use docker_support::*;

const BASE: &str = "sparkvisor-base:bookworm";

#[test]
fn cluster_install_step_installs_what_is_missing_in_a_clean_container() {
    if !prerequisites("cluster_install_step_installs_what_is_missing_in_a_clean_container") {
        return;
    }
    let base = std::env::var("SPARKVISOR_BASE_IMAGE").unwrap_or_else(|_| BASE.to_string());
    let name = unique("prereqs");
    let scripts = repo().join("scripts");
    let out = Command::new("docker")
        .args(["run", "--rm", "--name", &name, "-v"])
        .arg(format!("{}:/src/scripts:ro", scripts.display()))
        .args(["--entrypoint", "bash", &base, "-c"])
        .arg(
            "set -e; command -v debootstrap && exit 9; \
             . /src/scripts/lib/prereqs.sh; install_prereqs cluster; \
             command -v debootstrap; install_prereqs cluster",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // What it installs, and why, before doing it.
    assert!(
        stdout.contains("installing debootstrap: builds the base image"),
        "{stdout}"
    );
    assert!(stdout.contains("/usr/sbin/debootstrap"), "{stdout}");
    // A second run finds everything there and installs nothing.
    assert!(stdout.contains("Debian packages: all present"), "{stdout}");
    // The main command really uses this step (not only scripts/test).
    let cluster = std::fs::read_to_string(repo().join("scripts/cluster")).unwrap();
    assert!(
        cluster.contains("install_prereqs cluster"),
        "scripts/cluster skips the install step"
    );
}

/// A fresh Debian machine with Docker and a rustup toolchain has no C compiler (rustup does not
/// install one), yet `cargo build` links with `cc` and the `cc` crate assembles psm for the static
/// musl binary the image ships (and *ring* compiles C for it with musl-gcc): the cluster's install
/// step must name gcc, libc6-dev and musl-tools. Checked
/// with a `dpkg` that knows no package, so the real table is read (no root, no Docker).
#[test]
fn cluster_install_step_lists_a_c_toolchain() {
    let fake = std::env::temp_dir().join(unique("prereqs-dpkg"));
    std::fs::create_dir_all(&fake).unwrap();
    let dpkg = fake.join("dpkg");
    std::fs::write(&dpkg, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&dpkg, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .current_dir(repo())
        .env("PATH", path)
        .env_remove("PREREQS_APT_LIST")
        .args([
            "-c",
            ". scripts/lib/prereqs.sh; prereqs_missing_apt cluster",
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&fake).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let missing: Vec<&str> = stdout.lines().filter_map(|l| l.split('|').next()).collect();
    for package in ["debootstrap", "gcc", "libc6-dev", "musl-tools"] {
        assert!(missing.contains(&package), "{package} not listed: {stdout}");
    }
}

/// `scripts/test` on a fresh Debian machine: Debian's python3 is "externally managed" (PEP 668), so a
/// plain `pip install` of pyspark and notebook fails and stops the install step. Checked with a
/// `python3` that behaves like Debian's (refuses `-m pip install` unless PIP_BREAK_SYSTEM_PACKAGES=1)
/// and an empty Debian package table (`docker` and `rustup` stubbed), so nothing is really installed.
#[test]
fn test_install_step_installs_pypi_packages_into_debians_python() {
    let fake = std::env::temp_dir().join(unique("prereqs-python"));
    std::fs::create_dir_all(&fake).unwrap();
    let python = "#!/bin/sh\n\
        case \"$1 $2 $3\" in\n\
        '-m pip --version') exit 0 ;;\n\
        '-m pip install') [ \"$PIP_BREAK_SYSTEM_PACKAGES\" = 1 ] && { echo \"pip install $*\" >> \"$0.log\"; exit 0; }\n\
            echo 'error: externally-managed-environment' >&2; exit 1 ;;\n\
        esac\n\
        exit 1\n";
    let ok = "#!/bin/sh\nexit 0\n";
    for (name, body) in [("python3", python), ("rustup", ok), ("docker", ok)] {
        let path = fake.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let empty = fake.join("apt-list");
    std::fs::write(&empty, "").unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .current_dir(repo())
        .env("PATH", path)
        .env("PREREQS_APT_LIST", &empty)
        .env_remove("PIP_BREAK_SYSTEM_PACKAGES")
        .args([
            "-c",
            "set -euo pipefail; . scripts/lib/prereqs.sh; install_prereqs test",
        ])
        .output()
        .unwrap();
    let log = std::fs::read_to_string(fake.join("python3.log")).unwrap_or_default();
    std::fs::remove_dir_all(&fake).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(log.contains("pyspark") && log.contains("notebook"), "{log}");
    assert!(log.contains("prometheus_client"), "{log}");
}
