//! Shared helpers of the access tests: key pairs, and the host's OpenSSH client
//! with key or password (SSH_ASKPASS) authentication and no prompts, agents or known_hosts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::docker_support;

/// The port the ssh add-on listens on by default.
pub const PORT: &str = "2222";

/// A fresh ed25519 key pair in `dir`: (private key path, public key line).
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = docker_support::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key),
    );
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub"))
        .unwrap_or_else(|e| panic!("{}.pub: {e}", key.display()));
    (key, public.trim().to_string())
}

/// The client options every test login uses: no agent, no known_hosts, no prompts.
pub fn ssh_base(ip: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-p",
        PORT,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=15",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentityAgent=none",
        "-F",
        "/dev/null",
    ]);
    let _ = ip;
    cmd.env_remove("SSH_AUTH_SOCK");
    cmd
}

/// `ssh -i KEY USER@IP CMD` with key authentication only: (exit code, stdout, stderr).
pub fn ssh_key(ip: &str, key: &Path, user: &str, command: &str) -> (i32, String, String) {
    ssh_key_stdin(ip, key, user, command, None)
}

/// [`ssh_key`] with `input` on the remote command's stdin.
pub fn ssh_key_stdin(
    ip: &str,
    key: &Path,
    user: &str,
    command: &str,
    input: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = ssh_base(ip);
    cmd.args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o"])
        .arg("PreferredAuthentications=publickey")
        .arg("-i")
        .arg(key)
        .arg(format!("{user}@{ip}"))
        .arg(command);
    finish(cmd, input)
}

/// `ssh USER@IP CMD` with password authentication only, the password given through SSH_ASKPASS
/// (OpenSSH's own non-interactive way, no sshpass needed): (exit code, stdout, stderr).
pub fn ssh_password(
    ip: &str,
    user: &str,
    password: &str,
    command: &str,
    input: Option<&str>,
) -> (i32, String, String) {
    let askpass =
        docker_support::temp_file("askpass.sh", &format!("#!/bin/sh\necho '{password}'\n"));
    let _ = Command::new("chmod").arg("0755").arg(&askpass).status();
    let mut cmd = ssh_base(ip);
    cmd.args([
        "-o",
        "BatchMode=no",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "NumberOfPasswordPrompts=1",
    ])
    .arg(format!("{user}@{ip}"))
    .arg(command)
    .env("SSH_ASKPASS", &askpass)
    .env("SSH_ASKPASS_REQUIRE", "force")
    .env("DISPLAY", ":0");
    finish(cmd, input)
}

fn finish(mut cmd: Command, input: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ssh: {e}"));
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("ssh: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The host key sshd offers on IP:2222 (`ssh-keyscan`), without the host name.
pub fn host_key(ip: &str) -> Result<String, String> {
    let out = docker_support::run(
        Command::new("ssh-keyscan").args(["-T", "5", "-t", "ed25519", "-p", PORT, ip]),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("ssh-ed25519"))
        .and_then(|l| l.split_once(' ').map(|(_, k)| k.to_string()))
        .ok_or_else(|| {
            format!(
                "no host key from {ip}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}
