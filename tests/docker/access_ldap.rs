//! LDAP users on a node (docs/access.md), with a real OpenLDAP server: Debian's `slapd` in a
//! container from the base image, given the OpenSSH public key schema (`ldapPublicKey`,
//! `sshPublicKey`) and seeded here with a user in two groups and her public key; a master from the
//! image with the `ssh` and `ldap` add-ons (nslcd, NSS, PAM, the key lookup) pointed at it; the
//! host's OpenSSH client.
//!
//! Run alone: `cargo test --test docker access_ldap::` (root and Docker).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{access_support, docker_support};

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use access_support::{keypair, ssh_key, ssh_key_stdin, ssh_password};
use docker_support::{
    agent_status, container_ip, docker, exec, pids_matching, prerequisites, proc_field,
    proc_status_in, service, unique, wait_for, Container, Network,
};

/// The slapd test image: built from the base image once per machine (its tag names its recipe).
const SLAPD_IMAGE: &str = "access-slapd:bookworm-2";
const BASE_DN: &str = "dc=example,dc=org";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PASSWORD: &str = "admin-secret";
const ALICE_PASSWORD: &str = "wonder land";

const SLAPD_DOCKERFILE: &str = r#"FROM sparkvisor-base:bookworm
RUN printf '%s\n' \
      'slapd slapd/no_configuration boolean false' \
      'slapd slapd/domain string example.org' \
      'slapd shared/organization string Example' \
      'slapd slapd/password1 password admin-secret' \
      'slapd slapd/password2 password admin-secret' \
      'slapd slapd/purge_database boolean true' \
      'slapd slapd/move_old_database boolean true' | debconf-set-selections \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 389
CMD ["/usr/sbin/slapd", "-d", "256", "-h", "ldap:/// ldapi:///", "-u", "openldap", "-g", "openldap"]
"#;

/// The OpenSSH public key schema as directories that keep users' ssh keys define it (the
/// "openssh-lpk" schema's object identifiers): an auxiliary class that adds `sshPublicKey`.
const LPK_SCHEMA: &str = "dn: cn=openssh-lpk,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: openssh-lpk
olcAttributeTypes: ( 1.3.6.1.4.1.24552.500.1.1.1.13 NAME 'sshPublicKey' DESC 'an OpenSSH public key line' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
olcObjectClasses: ( 1.3.6.1.4.1.24552.500.1.1.2.0 NAME 'ldapPublicKey' DESC 'holds OpenSSH public keys' SUP top AUXILIARY MAY ( sshPublicKey $ uid ) )
";

/// The directory's content: alice in two groups, with her public key (`{key}`).
fn seed(key: &str) -> String {
    format!(
        "dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: ldapPublicKey
uid: alice
cn: Alice
sn: Liddell
uidNumber: 5001
gidNumber: 5001
homeDirectory: /home/alice
loginShell: /bin/bash
userPassword: wonder land
sshPublicKey: {key}

dn: cn=datasci,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: datasci
gidNumber: 5001
memberUid: alice

dn: cn=analysts,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: analysts
gidNumber: 5002
memberUid: alice
"
    )
}

fn slapd_image() {
    let exists = Command::new("docker")
        .args(["image", "inspect", SLAPD_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        return;
    }
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", SLAPD_IMAGE, "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("docker build");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(SLAPD_DOCKERFILE.as_bytes())
        .expect("write Dockerfile");
    assert!(
        child.wait().expect("docker build").success(),
        "building {SLAPD_IMAGE} failed"
    );
}

/// `docker exec -i CONTAINER ARGS` with `input` on stdin: (exit code, stdout+stderr).
fn exec_stdin(container: &str, args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new("docker")
        .args(["exec", "-i", container])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker exec");
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    let out = child.wait_with_output().expect("docker exec");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ready_pid(container: &str, name: &str) -> Result<u64, String> {
    let status = agent_status(container)?;
    let s = service(&status, name).ok_or_else(|| format!("no {name}: {status}"))?;
    match (s["state"].as_str(), s["pid"].as_u64()) {
        (Some("ready"), Some(pid)) => Ok(pid),
        _ => Err(s.to_string()),
    }
}

#[test]
fn ldap_users_log_in_with_password_and_key() {
    if !prerequisites("ldap_users_log_in_with_password_and_key") {
        return;
    }
    let image = docker_support::image();
    slapd_image();
    let net = Network::new("ldapnet");
    let slapd = Container::run("slapd", &["--network", &net.0], SLAPD_IMAGE, &[]);
    wait_for("slapd answering", Duration::from_secs(60), || {
        let (code, out, err) = exec(
            &slapd.name,
            &[
                "ldapsearch",
                "-x",
                "-H",
                "ldap://127.0.0.1",
                "-b",
                BASE_DN,
                "-s",
                "base",
            ],
        );
        (code == 0).then_some(()).ok_or(format!("{out}{err}"))
    });
    let (code, out) = exec_stdin(
        &slapd.name,
        &["ldapadd", "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///"],
        LPK_SCHEMA,
    );
    assert_eq!(code, 0, "adding the ssh key schema: {out}");

    let dir = std::env::temp_dir().join(unique("keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let (spark_key, spark_pub) = keypair(&dir, "spark");
    let (alice_key, alice_pub) = keypair(&dir, "alice");
    let (alice_home_key, alice_home_pub) = keypair(&dir, "alice-home");
    let (code, out) = exec_stdin(
        &slapd.name,
        &[
            "ldapadd",
            "-x",
            "-H",
            "ldap://127.0.0.1",
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PASSWORD,
        ],
        &seed(&alice_pub),
    );
    assert_eq!(code, 0, "seeding slapd: {out}");
    let slapd_ip = container_ip(&slapd.name);

    let master = Container::run(
        "lm",
        &[
            "--network",
            &net.0,
            "--user",
            "0",
            "-e",
            "SPARK_MODE=master",
            "-e",
            "SPARKVISOR_SSH=true",
            "-e",
            "SPARKVISOR_SSH_PASSWORD_AUTH=true",
            "-e",
            &format!("SPARKVISOR_SSH_AUTHORIZED_KEYS={spark_pub}"),
            "-e",
            &format!("SPARKVISOR_LDAP_URI=ldap://{slapd_ip}"),
            "-e",
            &format!("SPARKVISOR_LDAP_BASE={BASE_DN}"),
            "-e",
            &format!("SPARKVISOR_LDAP_BIND_DN={ADMIN_DN}"),
            "-e",
            &format!("SPARKVISOR_LDAP_BIND_PASSWORD={ADMIN_PASSWORD}"),
        ],
        &image,
        &[],
    );
    let ip = container_ip(&master.name);
    wait_for("nslcd and sshd ready", Duration::from_secs(180), || {
        ready_pid(&master.name, "nslcd")?;
        ready_pid(&master.name, "sshd")
    });
    // Generous: on a loaded 2-core machine the master JVM takes minutes to come up.
    let master_pid = wait_for("spark-master ready", Duration::from_secs(600), || {
        ready_pid(&master.name, "spark-master")
    });

    // NSS: the LDAP user and both LDAP groups.
    let (code, id, err) = exec(&master.name, &["id", "alice"]);
    assert_eq!(code, 0, "id alice: {err}");
    assert!(
        id.contains("uid=5001(alice)") && id.contains("datasci") && id.contains("analysts"),
        "{id}"
    );

    // Key login with the key the directory holds for her (sshPublicKey), before she has a home;
    // another key (the Spark user's) does not let her in.
    let (code, out, err) = ssh_key(&ip, &alice_key, "alice", "id -un; id -Gn");
    assert_eq!(code, 0, "directory key login: {err}");
    assert!(
        out.starts_with("alice") && out.contains("datasci") && out.contains("analysts"),
        "{out}"
    );
    let (code, _, err) = ssh_key(&ip, &spark_key, "alice", "true");
    assert_ne!(code, 0, "the Spark user's key let alice in");
    assert!(err.contains("Permission denied"), "{err}");

    // PAM: password login; the home directory is on the data volume.
    let (code, out, err) = ssh_password(
        &ip,
        "alice",
        ALICE_PASSWORD,
        "id -Gn; echo $HOME; pwd",
        None,
    );
    assert_eq!(code, 0, "password login: {out}{err}");
    assert!(out.contains("datasci") && out.contains("analysts"), "{out}");
    assert!(out.contains("/data/home/alice"), "{out}");
    // A wrong password is refused.
    let (code, _, err) = ssh_password(&ip, "alice", "not her password", "true", None);
    assert_ne!(code, 0, "a wrong password got in");
    assert!(err.contains("Permission denied"), "{err}");

    // Her own ~/.ssh/authorized_keys works too: she installs a key, then logs in with it.
    let (code, out, err) = ssh_password(
        &ip,
        "alice",
        ALICE_PASSWORD,
        "umask 077 && mkdir -p ~/.ssh && cat > ~/.ssh/authorized_keys",
        Some(&alice_home_pub),
    );
    assert_eq!(code, 0, "installing a key: {out}{err}");
    let (code, out, err) = ssh_key(&ip, &alice_home_key, "alice", "id -un");
    assert_eq!((code, out.trim()), (0, "alice"), "home key login: {err}");

    // slapd gone: LDAP logins fail cleanly, the local spark login and the Spark services do not
    // notice.
    docker(&["stop", "-t", "2", &slapd.name]);
    let (code, _, err) = ssh_password(&ip, "alice", ALICE_PASSWORD, "true", None);
    assert_ne!(code, 0, "logged in without the LDAP server");
    assert!(
        err.contains("Permission denied") || err.contains("Connection closed"),
        "{err}"
    );
    let (code, _, err) = ssh_key(&ip, &alice_key, "alice", "true");
    assert_ne!(code, 0, "a directory key worked without the LDAP server");
    assert!(
        err.contains("Permission denied") || err.contains("Connection closed"),
        "{err}"
    );
    let (code, out, err) = ssh_key_stdin(&ip, &spark_key, "spark", "id -u", None);
    assert_eq!((code, out.trim()), (0, "185"), "{err}");
    let status = agent_status(&master.name).unwrap();
    let spark = service(&status, "spark-master").unwrap();
    assert_eq!(spark["pid"].as_u64(), Some(master_pid), "{spark}");
    assert_eq!(spark["restarts"].as_u64(), Some(0), "{spark}");
    assert_eq!(spark["state"], "ready", "{spark}");
    let java = pids_matching(&master.name, "org.apache.spark.deploy.master.Master");
    assert_eq!(java.len(), 1, "{java:?}");
    let st = proc_status_in(&master.name, java[0]);
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(
            proc_field(&st, cap),
            "0000000000000000",
            "spark-master {cap}"
        );
    }
    assert_eq!(proc_field(&st, "NoNewPrivs"), "1");
    let _ = std::fs::remove_dir_all(&dir);
}
