//! A `user: root`, `capabilities: []` service cannot get capabilities back: it may not be able to
//! edit its own role (role files it could write are refused before anything starts), and its
//! SIGHUP (reload) and SIGTERM (stop) to the agent are ignored.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::supervisor_support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::{cap_field, proc_status};
use supervisor_support::*;

const LONG: Duration = Duration::from_secs(20);

fn chown_tree(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

#[test]
fn role_files_a_root_service_could_edit_are_refused() {
    if skip_unless(is_root(), "needs root (services with user: root)") {
        return;
    }
    let s = Scene::new();
    s.role(
        "esc",
        r#"
services:
  sneaky:
    command: [sleep, "1000"]
    user: "0"
    capabilities: []
"#,
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "esc"]));
    let code = Agent::code(agent.wait(LONG));
    let stderr = agent.stderr();
    assert_eq!(code, 78, "{stderr}");
    let role = s.path().join("roles/esc.yaml").display().to_string();
    assert!(
        stderr.contains(&format!("{role}: refused")) && stderr.contains("service sneaky"),
        "{stderr}"
    );
    assert!(!stderr.contains("starting"), "nothing started: {stderr}");
}

#[test]
fn a_service_cannot_reload_or_stop_the_agent() {
    if skip_unless(is_root(), "needs root (services with user: root)") {
        return;
    }
    let s = Scene::new();
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    s.role(
        "esc",
        r#"
services:
  sneaky:
    command: ["sh", "-c", "kill -HUP $PPID; kill -TERM $PPID; exec sleep 1000"]
    user: "0"
    capabilities: []
"#,
    );
    // Owned by another uid and not writable by the service: the role is accepted.
    chown_tree(&s.path().join("roles"), 65534);
    chown_tree(&s.path().join("templates"), 65534);
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "esc"]));
    agent.wait_for(LONG, "both signals ignored", || {
        s.stderr()
            .matches("ignored (a service cannot stop or reload")
            .count()
            >= 2
    });
    let stderr = agent.stderr();
    assert!(!stderr.contains("SIGHUP"), "no reload: {stderr}");
    assert!(!stderr.contains("stopping every service"), "{stderr}");
    assert!(agent.child.try_wait().unwrap().is_none(), "still running");
    // The operator's SIGTERM (not from a service) is obeyed.
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

#[test]
fn the_root_agent_keeps_only_what_it_needs_effective() {
    if skip_unless(is_root(), "needs root (the agent's own capabilities)") {
        return;
    }
    use sparkvisor::sys::caps::{mask_of, AGENT_CAPABILITIES};
    let s = Scene::new();
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(s.work(""), std::fs::Permissions::from_mode(0o777)).unwrap();
    s.role(
        "caps",
        r#"
services:
  web:
    command: ["sh", "-c", "echo up > @WORK@/up; exec sleep 1000"]
    user: "65534"
    capabilities: [NET_BIND_SERVICE]
"#,
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "caps"]));
    agent.wait_for(LONG, "web started", || s.exists("up"));
    let pid = agent.child.id();
    let eff = cap_field(&proc_status(pid), "CapEff");
    let prm = cap_field(&proc_status(pid), "CapPrm");
    let allowed = mask_of(AGENT_CAPABILITIES);
    assert_eq!(
        eff & !allowed,
        0,
        "effective {eff:x} beyond the agent's own {allowed:x}"
    );
    let net_bind = mask_of(&[caps::Capability::CAP_NET_BIND_SERVICE]);
    let mine = cap_field(&proc_status(std::process::id()), "CapPrm");
    assert_eq!(
        prm & !(allowed | net_bind),
        0,
        "permitted {prm:x} beyond what the agent and its services need"
    );
    if mine & net_bind != 0 {
        assert_ne!(prm & net_bind, 0, "a service's capability stays permitted");
    }
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

/// A role may let one service ask the agent to act: `agent_signals: [HUP]` makes that service's
/// SIGHUP a reload, while its SIGTERM (not listed) is still ignored. `check` refuses a signal that
/// is not a stop or reload request.
#[test]
fn agent_signals_lets_a_role_allow_a_service_to_reload_the_agent() {
    if skip_unless(is_root(), "needs root (services with user: root)") {
        return;
    }
    let s = Scene::new();
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    s.role(
        "bad",
        r#"
services:
  reloader:
    command: ["sleep", "1000"]
    agent_signals: [KILL]
"#,
    );
    let check = s
        .agent(false, &["check", "--role", "bad"])
        .output()
        .unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(78), "{check_err}");
    assert!(
        check_err.contains("\"KILL\" in `agent_signals`"),
        "{check_err}"
    );
    std::fs::remove_file(s.path().join("roles/bad.yaml")).unwrap();
    s.role(
        "allowed",
        r#"
services:
  reloader:
    command: ["sh", "-c", "kill -HUP $PPID; kill -TERM $PPID; exec sleep 1000"]
    user: "0"
    capabilities: []
    agent_signals: [HUP]
"#,
    );
    chown_tree(&s.path().join("roles"), 65534);
    chown_tree(&s.path().join("templates"), 65534);
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "allowed"]));
    agent.wait_for(LONG, "HUP obeyed and TERM ignored", || {
        let e = s.stderr();
        e.contains("obeyed (its role allows it in `agent_signals`)")
            && e.contains("ignored (a service cannot stop or reload")
            && e.contains("config reloaded (")
    });
    let stderr = agent.stderr();
    assert!(!stderr.contains("stopping every service"), "{stderr}");
    assert!(agent.child.try_wait().unwrap().is_none(), "still running");
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}
