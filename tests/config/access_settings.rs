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

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{repo, TempDir};

/// The lines of a rendered authorized_keys file that are keys.
fn key_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHte1F8ZzI3osTxPVCSfgl9kQspdDp1f/Hwb4+qqpaHv good@example";
/// A second real public key (no private half kept), for a second source.
const KEY2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFIc7beU9Bbz+rOwIaWmjVYud9U40AKayhJhh2F6ysbR kd@example";

/// `sparkvisor render --role master --out OUT` with the built-in roles and `vars`:
/// (exit code, stdout, stderr).
fn render(out: &Path, vars: &[(&str, &str)]) -> (i32, String, String) {
    render_as(None, out, vars)
}

/// [`render`] run as `(uid, gid)` through setpriv (util-linux), as Docker's `--user` would start
/// the agent; `None`: as the test's own user.
fn render_as(
    ids: Option<(&str, &str)>,
    out: &Path,
    vars: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = match ids {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", uid, "--regid", gid, "--clear-groups"])
                .arg(common::bin());
            c
        }
        None => Command::new(common::bin()),
    };
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

#[test]
fn keys_from_kubedirector_secret_keys_and_cluster_secrets_combine() {
    let dir = TempDir::new("access-kd");
    // KubeDirector's configmeta for this node's role (spark-worker), with the app's `secret_keys`
    // entry `ssh_authorized_keys`: one good key, one broken line.
    let text =
        std::fs::read_to_string(repo().join("tests/fixtures/config/configmeta-kubedirector.json"))
            .unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    meta["nodegroups"]["1"]["roles"]["spark-worker"]["secret_keys"]["ssh_authorized_keys"] =
        serde_json::Value::String(format!("{KEY2}\nssh-ed25519 AAAA broken\n"));
    let meta_path = dir.file("configmeta.json", &meta.to_string());
    // The cluster file's `secrets:` (a Docker/Kubernetes secret mounted as the cluster file).
    let cluster = dir.file(
        "cluster.yaml",
        &format!("settings:\n  access.ssh: \"true\"\nsecrets:\n  ssh.authorized_keys: \"{KEY}\"\n"),
    );
    let (code, out, err) = render(
        &dir.0.join("out"),
        &[
            ("SPARKVISOR_CONFIGMETA", &meta_path),
            ("SPARKVISOR_CONFIG", &cluster),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let keys = read(
        &dir.0.join("out"),
        "/run/sparkvisor/ssh/authorized_keys/spark",
    );
    let mut lines = key_lines(&keys);
    lines.sort_unstable();
    assert_eq!(lines, vec![KEY2, KEY], "{keys}");
    // The broken line is reported with the configmeta entry it came from.
    assert!(
        err.contains("configmeta.json") && err.contains("ssh.authorized_keys: line 2"),
        "{err}"
    );
    // Secrets stay out of the preview's listing of settings.
    assert!(!out.contains("kd@example"), "{out}");
}

#[test]
fn ldap_keys_from_the_directory_through_one_keys_command() {
    if !common::require(common::is_root(), "LDAP settings: needs root") {
        return;
    }
    let dir = TempDir::new("access-ldapkeys");
    let port = common::free_port();
    let uri = format!("ldap://127.0.0.1:{port}");
    let vars = [
        ("SPARKVISOR_SSH", "true"),
        ("SPARKVISOR_SSH_AUTHORIZED_KEYS", KEY),
        ("SPARKVISOR_LDAP_URI", uri.as_str()),
        ("SPARKVISOR_LDAP_BASE", "dc=example,dc=org"),
        ("SPARKVISOR_LDAP_BIND_DN", "cn=reader,dc=example,dc=org"),
        ("SPARKVISOR_LDAP_BIND_PASSWORD", "it's secret"),
    ];
    let (code, out, err) = render(&dir.0.join("on"), &vars);
    assert_eq!(code, 0, "{out}{err}");
    let on = dir.0.join("on");
    // sshd asks the lookup script (root's, under /etc/ssh) as user nslcd, which also prints the
    // injected keys; those are then nslcd's to read.
    let config = read(&on, "/run/sparkvisor/ssh/sshd_config");
    for line in [
        "AuthorizedKeysCommand /etc/ssh/sparkvisor-ldap-keys.sh %u /run/sparkvisor/ssh/authorized_keys/%u",
        "AuthorizedKeysCommandUser nslcd",
    ] {
        assert!(config.lines().any(|l| l == line), "no {line:?} in:\n{config}");
    }
    assert!(
        out.contains("sparkvisor-ldap-keys.sh (0755)")
            && out.contains("ldap-bindpw (0600, secret)"),
        "{out}"
    );
    let script = read(&on, "/etc/ssh/sparkvisor-ldap-keys.sh");
    for line in [
        format!("uri='{uri}'"),
        "binddn='cn=reader,dc=example,dc=org'".to_string(),
        "users='(objectClass=posixAccount)'".to_string(),
        "name_attr='uid'".to_string(),
        "key_attr='sshPublicKey'".to_string(),
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "no {line:?} in:\n{script}"
        );
    }
    assert!(
        !script.contains("secret"),
        "bind password in the script:\n{script}"
    );
    // The password alone, exactly: ldapsearch -y takes the whole file.
    assert_eq!(read(&on, "/etc/sparkvisor/ldap-bindpw"), "it's secret");

    // No key attribute: keys only from the injected settings, read by the Spark user.
    let mut off = vars.to_vec();
    off.push(("SPARKVISOR_LDAP_SSH_KEY_ATTR", "none"));
    let (code, out, err) = render(&dir.0.join("off"), &off);
    assert_eq!(code, 0, "{out}{err}");
    let config = read(&dir.0.join("off"), "/run/sparkvisor/ssh/sshd_config");
    for line in [
        "AuthorizedKeysCommand /bin/cat /run/sparkvisor/ssh/authorized_keys/%u",
        "AuthorizedKeysCommandUser spark",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "no {line:?} in:\n{config}"
        );
    }
    // A key attribute that is no attribute name: named, and no directory keys.
    let mut bad = vars.to_vec();
    bad.push(("SPARKVISOR_LDAP_SSH_KEY_ATTR", "ssh key"));
    let (code, out, err) = render(&dir.0.join("bad"), &bad);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("env SPARKVISOR_LDAP_SSH_KEY_ATTR: ldap.ssh_key_attr: \"ssh key\""),
        "{err}"
    );
}

/// Active Directory cannot run here (no AD server in the tests): its settings are checked through
/// what nslcd is given, and docs/access.md says AD was not tested live.
#[test]
fn active_directory_settings_render_nslcd_maps_and_filters() {
    if !common::require(common::is_root(), "LDAP settings: needs root") {
        return;
    }
    let dir = TempDir::new("access-ad");
    let port = common::free_port();
    let uri = format!("ldap://127.0.0.1:{port}");
    let group = "(memberOf=CN=Spark Users,OU=Groups,DC=corp,DC=example,DC=com)";
    let vars = [
        ("SPARKVISOR_SSH", "true"),
        ("SPARKVISOR_LDAP_URI", uri.as_str()),
        ("SPARKVISOR_LDAP_BASE", "DC=corp,DC=example,DC=com"),
        ("SPARKVISOR_LDAP_SCHEMA", "AD"),
        ("SPARKVISOR_LDAP_USER_FILTER", group),
    ];
    let (code, out, err) = render(&dir.0.join("ad"), &vars);
    assert_eq!(code, 0, "{out}{err}");
    let users = format!("(&(objectClass=user)(!(objectClass=computer))(uidNumber=*){group})");
    let conf = read(&dir.0.join("ad"), "/etc/nslcd.conf");
    for line in [
        format!("filter passwd {users}"),
        format!("filter shadow {users}"),
        "filter group (&(objectClass=group)(gidNumber=*))".to_string(),
        "map passwd uid sAMAccountName".to_string(),
        "map shadow uid sAMAccountName".to_string(),
        "referrals off".to_string(),
        "map passwd homeDirectory \"/data/home/$sAMAccountName\"".to_string(),
    ] {
        assert!(conf.lines().any(|l| l == line), "no {line:?} in:\n{conf}");
    }
    // The key lookup finds the same users by the same name.
    let script = read(&dir.0.join("ad"), "/etc/ssh/sparkvisor-ldap-keys.sh");
    for line in [
        format!("users='{users}'"),
        "name_attr='sAMAccountName'".to_string(),
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "no {line:?} in:\n{script}"
        );
    }

    // The default (RFC 2307) with a user filter: one flat AND.
    let (code, out, err) = render(
        &dir.0.join("rfc"),
        &[
            ("SPARKVISOR_LDAP_URI", uri.as_str()),
            (
                "SPARKVISOR_LDAP_USER_FILTER",
                "(memberOf=cn=spark,ou=groups,dc=example,dc=org)",
            ),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let conf = read(&dir.0.join("rfc"), "/etc/nslcd.conf");
    assert!(
        conf.lines().any(|l| l
            == "filter passwd (&(objectClass=posixAccount)(memberOf=cn=spark,ou=groups,dc=example,dc=org))"),
        "{conf}"
    );
    assert!(!conf.contains("sAMAccountName"), "{conf}");

    // An unknown schema and a filter that is not one: each named, LDAP left out, the node renders.
    for (var, value, needle) in [
        (
            "SPARKVISOR_LDAP_SCHEMA",
            "openldap",
            "ldap.schema: \"openldap\" is not a known directory schema",
        ),
        (
            "SPARKVISOR_LDAP_USER_FILTER",
            "memberOf=x",
            "ldap.user_filter: \"memberOf=x\" is not an LDAP filter",
        ),
        (
            "SPARKVISOR_LDAP_USER_FILTER",
            "(a=1)(b=2)",
            "ldap.user_filter: \"(a=1)(b=2)\" is more than one filter",
        ),
    ] {
        let out_dir = dir.0.join(format!("bad-{}", value.len()));
        let (code, out, err) = render(
            &out_dir,
            &[("SPARKVISOR_LDAP_URI", uri.as_str()), (var, value)],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            err.contains(&format!("env {var}: {needle}")),
            "{var}={value}: {err}"
        );
        assert!(
            !out.contains("nslcd.conf") && out.contains("spark-env.sh"),
            "{out}"
        );
    }
}

/// An arbitrary uid without an account (OpenShift): ssh is refused with the reason, the rest of the
/// node renders. Run as such a uid with setpriv (util-linux), as Docker would start the agent.
#[test]
fn ssh_under_an_arbitrary_uid_is_refused_with_the_reason() {
    if !common::require(common::is_root(), "arbitrary uid: needs root (setpriv)") {
        return;
    }
    let dir = TempDir::new("access-anyuid");
    let out_dir = dir.0.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::process::Command::new("chmod")
        .args(["0777"])
        .arg(&out_dir)
        .status()
        .unwrap();
    let (code, out, err) = render_as(
        Some(("1000700000", "0")),
        &out_dir,
        &[
            ("SPARKVISOR_SSH", "true"),
            ("SPARKVISOR_SSH_AUTHORIZED_KEYS", KEY),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("env SPARKVISOR_SSH: access.ssh: the container runs as uid 1000700000, which has no account"),
        "{err}"
    );
    assert!(
        !out.contains("sshd_config") && out.contains("spark-env.sh"),
        "{out}"
    );
}

/// A non-root agent that cannot write sshd's run directory (a read-only root) moves it to its
/// scratch directory, and sshd's key lookup reads the keys from where they are rendered then.
#[test]
fn an_unwritable_ssh_run_dir_moves_to_scratch_with_the_key_lookup() {
    if !common::require(common::is_root(), "non-root agent: needs root (setpriv)") {
        return;
    }
    let dir = TempDir::new("access-scratch");
    let (out_dir, scratch) = (dir.0.join("out"), dir.0.join("scratch"));
    for d in [&dir.0, &out_dir, &scratch] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let tmpdir = scratch.display().to_string();
    let (code, out, err) = render_as(
        Some(("nobody", "nogroup")),
        &out_dir,
        &[
            ("TMPDIR", &tmpdir),
            ("SPARKVISOR_SSH", "true"),
            ("SPARKVISOR_SSH_AUTHORIZED_KEYS", KEY),
            ("SPARKVISOR_SETTINGS", "{ssh.run_dir: /proc/sparkvisor-ssh}"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let moved = scratch.join("sparkvisor-ssh");
    assert!(
        err.contains(&format!(
            "ssh.run_dir: /proc/sparkvisor-ssh is not writable; using {}",
            moved.display()
        )),
        "{err}"
    );
    let config = read(&out_dir, &format!("{}/sshd_config", moved.display()));
    let keys = format!("{}/authorized_keys/%u", moved.display());
    assert!(
        config
            .lines()
            .any(|l| l.starts_with("AuthorizedKeysCommand ") && l.contains(&keys)),
        "{config}"
    );
    // The keys are rendered (for spark.user) into the moved directory the lookup reads.
    let keys_file = format!("{}/authorized_keys/spark", moved.display());
    assert!(read(&out_dir, &keys_file).contains("good@example"));
}
