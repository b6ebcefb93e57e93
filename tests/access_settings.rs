//! The access settings (docs/access.md) through the real binary, without Docker: which add-ons a
//! setting turns on, what is rendered for sshd and nslcd, and bad input (an invalid key, an invalid
//! port, a missing CA file, an unreachable LDAP server) reported naming the setting while the rest
//! of the node still renders (exit 0).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{repo, TempDir};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHte1F8ZzI3osTxPVCSfgl9kQspdDp1f/Hwb4+qqpaHv good@example";

/// `sparkvisor render --role master --out OUT` with the built-in roles and `vars`:
/// (exit code, stdout, stderr).
fn render(out: &Path, vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(common::bin());
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("SPARKVISOR_ROLES", repo().join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo().join("templates"))
        .env("SPARKVISOR_CONFIGMETA", "")
        .env("SPARKVISOR_HOSTNAME", "node1")
        .env("SPARKVISOR_FQDN", "node1.example.org")
        .args(["render", "--role", "master", "--out"])
        .arg(out);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run sparkvisor");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn read(out: &Path, path: &str) -> String {
    let p = out.join(path.trim_start_matches('/'));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn without_settings_no_access_files() {
    let dir = TempDir::new("access-none");
    let (code, out, err) = render(&dir.0, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains("sshd_config") && !out.contains("nslcd"),
        "{out}"
    );
}

#[test]
fn ssh_setting_adds_sshd_with_checked_keys() {
    let dir = TempDir::new("access-ssh");
    let keys =
        format!("# team keys\n{KEY}\nssh-rsa AAAAB3NzaC1yc2E= truncated\nnot a key at all\n");
    let (code, out, err) = render(
        &dir.0,
        &[
            ("SPARKVISOR_SSH", "true"),
            ("SPARKVISOR_SSH_AUTHORIZED_KEYS", &keys),
            ("SPARKVISOR_SSH_PORT", "70000"),
        ],
    );
    // Bad access input never stops the node: the master's files and sshd's are rendered.
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("spark-defaults.conf"), "{out}");
    for needle in [
        "env SPARKVISOR_SSH_AUTHORIZED_KEYS: ssh.authorized_keys: line 3",
        "env SPARKVISOR_SSH_AUTHORIZED_KEYS: ssh.authorized_keys: line 4: no known key type",
        "env SPARKVISOR_SSH_PORT: ssh.port",
    ] {
        assert!(err.contains(needle), "no {needle:?} in:\n{err}");
    }
    let config = read(&dir.0, "/run/sparkvisor/ssh/sshd_config");
    for line in [
        "Port 2222",
        "PermitRootLogin no",
        "PasswordAuthentication no",
        "HostKey /data/ssh/ssh_host_ed25519_key",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "no {line:?} in:\n{config}"
        );
    }
    assert!(
        config.contains("SPARK_MASTER_URL=spark://node1.example.org:7077")
            || config.contains("SPARK_MASTER_URL=spark://node1:7077"),
        "{config}"
    );
    let keys = read(&dir.0, "/run/sparkvisor/ssh/authorized_keys/spark");
    let lines: Vec<&str> = keys
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(lines, vec![KEY], "{keys}");
}

#[test]
fn keys_from_a_mounted_file_and_the_cluster_file() {
    let dir = TempDir::new("access-files");
    let key_file = dir.file("authorized_keys", &format!("{KEY}\n"));
    let (code, out, err) = render(
        &dir.0.join("a"),
        &[
            ("SPARKVISOR_SSH", "yes"),
            ("SPARKVISOR_SSH_AUTHORIZED_KEYS_FILE", &key_file),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(read(
        &dir.0.join("a"),
        "/run/sparkvisor/ssh/authorized_keys/spark"
    )
    .contains(KEY));

    let cluster = dir.file(
        "cluster.yaml",
        &format!("settings:\n  access.ssh: \"true\"\n  ssh.authorized_keys: \"{KEY}\"\n"),
    );
    let (code, out, err) = render(&dir.0.join("b"), &[("SPARKVISOR_CONFIG", &cluster)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(read(
        &dir.0.join("b"),
        "/run/sparkvisor/ssh/authorized_keys/spark"
    )
    .contains(KEY));
}

#[test]
fn injected_values_cannot_add_directives() {
    let dir = TempDir::new("access-inject");
    let (code, out, err) = render(
        &dir.0,
        &[
            ("SPARKVISOR_SSH", "true"),
            (
                "SPARKVISOR_SETTINGS",
                "{ssh.host_key_dir: \"/data/ssh\\nPermitRootLogin yes\"}",
            ),
        ],
    );
    assert_ne!(code, 0, "a newline reached sshd_config:\n{out}");
    assert!(err.contains("sshd_config"), "{err}");
}

#[test]
fn ldap_settings_render_nslcd_and_bad_input_is_reported() {
    // LDAP needs a root agent (nslcd, PAM): as another user the add-on is reported and left out.
    if !common::require(common::is_root(), "LDAP settings: needs root") {
        return;
    }
    let dir = TempDir::new("access-ldap");
    let ca = dir.file("ca.pem", "not checked here\n");
    // A port nothing listens on: unreachable, reported, nslcd still configured.
    let port = common::free_port();
    let uri = format!("ldap://127.0.0.1:{port}");
    let vars = [
        ("SPARKVISOR_LDAP_URI", uri.as_str()),
        ("SPARKVISOR_LDAP_BASE", "dc=example,dc=org"),
        ("SPARKVISOR_LDAP_BIND_DN", "cn=reader,dc=example,dc=org"),
        ("SPARKVISOR_LDAP_BIND_PASSWORD", "s3cret pass"),
        ("SPARKVISOR_LDAP_TLS_CA", ca.as_str()),
    ];
    let (code, out, err) = render(&dir.0.join("ok"), &vars);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("env SPARKVISOR_LDAP_URI: ldap.uri: LDAP server")
            && err.contains("unreachable"),
        "{err}"
    );
    assert!(out.contains("nslcd.conf (0600, secret)"), "{out}");
    let conf = read(&dir.0.join("ok"), "/etc/nslcd.conf");
    for line in [
        format!("uri {uri}"),
        "base dc=example,dc=org".to_string(),
        "binddn cn=reader,dc=example,dc=org".to_string(),
        "bindpw s3cret pass".to_string(),
        format!("tls_cacertfile {ca}"),
    ] {
        assert!(conf.lines().any(|l| l == line), "no {line:?} in:\n{conf}");
    }

    // A CA file that does not exist: named, LDAP left out, the node still renders.
    let mut missing = vars;
    missing[4] = ("SPARKVISOR_LDAP_TLS_CA", "/nonexistent/ca.pem");
    let (code, out, err) = render(&dir.0.join("noca"), &missing);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(
            "env SPARKVISOR_LDAP_TLS_CA: ldap.tls_cacert: CA file \"/nonexistent/ca.pem\""
        ),
        "{err}"
    );
    assert!(
        !out.contains("nslcd.conf") && out.contains("spark-env.sh"),
        "{out}"
    );

    // Not an LDAP URI.
    let mut bad = vars;
    bad[0] = ("SPARKVISOR_LDAP_URI", "http://example.org");
    let (code, out, err) = render(&dir.0.join("bad"), &bad);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(
            "env SPARKVISOR_LDAP_URI: ldap.uri: \"http://example.org\" is not an LDAP URI"
        ),
        "{err}"
    );
}
