#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `sys::spawn` as root with real processes: ids, groups, capability sets, no_new_privs, port 80,
//! environment, descriptors, umask, cwd, session and signal state, error reporting.

use crate::support;

use std::os::fd::AsRawFd;

use sparkvisor::sys::caps::CapabilitySet;
use sparkvisor::sys::spawn::{spawn, ChildSignals, SetupStep, SpawnError, Stdio};
use sparkvisor::sys::users::{resolve_user, UserDb, UserIds};
use support::*;

const NET_BIND_SERVICE: u64 = 1 << 10;
const CHOWN: u64 = 1 << 0;
const KILL: u64 = 1 << 5;

fn nobody(groups: Option<&[String]>) -> UserIds {
    // Fixture files, so the test does not depend on the machine's /etc.
    let db = UserDb::parse(
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "nogroup:x:65534:\nwatchers:x:4242:nobody\n",
    );
    resolve_user("nobody", None, groups, &db).unwrap()
}

#[test]
fn non_root_service_gets_uid_gid_groups_and_no_capabilities() {
    if !require_root("non_root_service_gets_uid_gid_groups_and_no_capabilities") {
        return;
    }
    let mut spec = spec(&["sleep", "30"]);
    spec.privileges = plan(Some(nobody(None)), CapabilitySet::EMPTY, true);
    let child = Running::start(&spec);
    let status = child.status();
    assert_eq!(status["Uid"], "65534\t65534\t65534\t65534");
    assert_eq!(status["Gid"], "65534\t65534\t65534\t65534");
    let mut groups: Vec<&str> = status["Groups"].split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, ["4242", "65534"]);
    assert_eq!(cap_sets(&status), [0; 5], "Eff Prm Inh Bnd Amb");
    assert_eq!(status["NoNewPrivs"], "1");
}

#[test]
fn explicit_groups_replace_the_supplementary_list() {
    if !require_root("explicit_groups_replace_the_supplementary_list") {
        return;
    }
    let mut spec = spec(&["sleep", "30"]);
    let groups = ["7".to_string(), "4242".to_string()];
    spec.privileges = plan(Some(nobody(Some(&groups))), CapabilitySet::EMPTY, true);
    let child = Running::start(&spec);
    let status = child.status();
    let mut groups: Vec<&str> = status["Groups"].split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, ["4242", "7"]);
}

#[test]
fn non_root_service_keeps_exactly_net_bind_service() {
    if !require_root("non_root_service_keeps_exactly_net_bind_service") {
        return;
    }
    let mut spec = spec(&["sleep", "30"]);
    let net_bind = CapabilitySet::parse(&["NET_BIND_SERVICE"]).unwrap();
    spec.privileges = plan(Some(nobody(None)), net_bind, true);
    let child = Running::start(&spec);
    let status = child.status();
    assert_eq!(status["Uid"], "65534\t65534\t65534\t65534");
    assert_eq!(
        cap_sets(&status),
        [NET_BIND_SERVICE; 5],
        "Eff Prm Inh Bnd Amb"
    );
    assert_eq!(status["NoNewPrivs"], "1");
}

#[test]
fn root_without_capabilities_is_root_by_name_only() {
    if !require_root("root_without_capabilities_is_root_by_name_only") {
        return;
    }
    let mut spec = spec(&["sleep", "30"]);
    let root = resolve_user("0", None, None, &UserDb::default()).unwrap();
    spec.privileges = plan(Some(root), CapabilitySet::EMPTY, true);
    let child = Running::start(&spec);
    let status = child.status();
    assert_eq!(status["Uid"], "0\t0\t0\t0");
    assert_eq!(cap_sets(&status), [0; 5], "Eff Prm Inh Bnd Amb");
    assert_eq!(status["NoNewPrivs"], "1");

    // Without a user (the agent's ids) the same rule holds: no capability unless listed.
    let child = Running::start(&self::spec(&["sleep", "30"]));
    assert_eq!(cap_sets(&child.status()), [0; 5]);
}

#[test]
fn root_keeps_capabilities_only_when_listed() {
    if !require_root("root_keeps_capabilities_only_when_listed") {
        return;
    }
    let mut spec = spec(&["sleep", "30"]);
    let root = resolve_user("0", None, None, &UserDb::default()).unwrap();
    let chown_kill = CapabilitySet::parse(&["CAP_CHOWN", "kill"]).unwrap();
    spec.privileges = plan(Some(root), chown_kill, false);
    let child = Running::start(&spec);
    let status = child.status();
    assert_eq!(cap_sets(&status), [CHOWN | KILL; 5], "Eff Prm Inh Bnd Amb");
    assert_eq!(status["NoNewPrivs"], "0");
}

/// Exit 0: bound; 13: EACCES; 98: in use (the permission check comes first, so it passed).
const BIND_80: &str = "import errno, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('127.0.0.1', 80))
except OSError as e:
    sys.exit(e.errno)
";

#[test]
fn non_root_binds_port_80_only_with_net_bind_service() {
    if !require_root("non_root_binds_port_80_only_with_net_bind_service") {
        return;
    }
    let start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .map_or(1024, |s| s.trim().parse().unwrap());
    if start <= 80 {
        eprintln!("skipped: ip_unprivileged_port_start is {start}, anyone may bind port 80 here");
        return;
    }
    let mut spec = spec(&["/usr/bin/python3", "-c", BIND_80]);
    spec.privileges = plan(Some(nobody(None)), CapabilitySet::EMPTY, true);
    let (code, _, err) = run_to_end(&spec);
    assert_eq!(code, libc::EACCES, "without the capability: {err}");

    let net_bind = CapabilitySet::parse(&["NET_BIND_SERVICE"]).unwrap();
    spec.privileges = plan(Some(nobody(None)), net_bind, true);
    let (code, _, err) = run_to_end(&spec);
    assert!(
        code == 0 || code == libc::EADDRINUSE,
        "with NET_BIND_SERVICE: exit {code}: {err}"
    );
}

#[test]
fn uid_without_passwd_entry_gets_home_user_and_logname() {
    if !require_root("uid_without_passwd_entry_gets_home_user_and_logname") {
        return;
    }
    let mut spec = spec(&["env"]);
    let user = resolve_user("4243", None, None, &UserDb::default()).unwrap();
    spec.privileges = plan(Some(user), CapabilitySet::EMPTY, true);
    let (code, out, err) = run_to_end(&spec);
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["HOME=/", "LOGNAME=4243", "PATH=/usr/bin:/bin", "USER=4243"]
    );
}

#[test]
fn environment_is_exactly_what_was_given() {
    // The test process has PATH, HOME, CARGO_* and more: none of it may reach the child.
    assert!(std::env::var_os("CARGO_PKG_NAME").is_some() || std::env::var_os("PATH").is_some());
    let mut spec = spec(&["env"]);
    spec.env = env(&[
        ("PATH", "/usr/bin:/bin"),
        ("SPARK_NO_DAEMONIZE", "1"),
        ("WITH_SPACES", "a b  $(c)"),
        ("HOME", "/opt/spark"),
    ]);
    let (code, out, err) = run_to_end(&spec);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "PATH=/usr/bin:/bin",
            "SPARK_NO_DAEMONIZE=1",
            "WITH_SPACES=a b  $(c)",
            "HOME=/opt/spark"
        ]
    );
}

#[test]
fn caller_given_home_wins_over_the_users() {
    if !require_root("caller_given_home_wins_over_the_users") {
        return;
    }
    let mut spec = spec(&["env"]);
    spec.env.push(("HOME".into(), "/tmp".into()));
    spec.privileges = plan(Some(nobody(None)), CapabilitySet::EMPTY, true);
    let (code, out, err) = run_to_end(&spec);
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "HOME=/tmp",
            "LOGNAME=nobody",
            "PATH=/usr/bin:/bin",
            "USER=nobody"
        ]
    );
}

#[test]
fn no_descriptor_leaks_into_the_service() {
    let leaky = leaky_fd();
    for stdio in [Stdio::Pipe, Stdio::Null, Stdio::Inherit] {
        let mut spec = spec(&["sleep", "30"]);
        spec.stdio = stdio;
        let child = Running::start(&spec);
        let fds = open_fds(child.pid());
        assert_eq!(fds, [0, 1, 2], "{stdio:?}: leaked {} ?", leaky.as_raw_fd());
        if stdio == Stdio::Pipe {
            let target =
                |fd: i32| std::fs::read_link(format!("/proc/{}/fd/{fd}", child.pid())).unwrap();
            assert_eq!(target(0), std::path::Path::new("/dev/null"));
            assert!(target(1).to_string_lossy().starts_with("pipe:"));
            assert!(target(2).to_string_lossy().starts_with("pipe:"));
        }
    }
}

#[test]
fn output_is_captured_in_pipes() {
    let (code, out, err) = run_to_end(&spec(&["sh", "-c", "echo out; echo err >&2; exit 3"]));
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
}

#[test]
fn umask_and_working_directory_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&["sleep", "30"]);
    spec.umask = Some(0o027);
    spec.cwd = Some(dir.path().to_path_buf());
    let child = Running::start(&spec);
    assert_eq!(child.status()["Umask"], "0027");
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/cwd", child.pid())).unwrap(),
        dir.path()
    );
}

#[test]
fn working_directory_is_entered_as_the_service_user() {
    if !require_root("working_directory_is_entered_as_the_service_user") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut spec = spec(&["sleep", "30"]);
    spec.cwd = Some(dir.path().to_path_buf());
    spec.privileges = plan(Some(nobody(None)), CapabilitySet::EMPTY, true);
    let err = spawn(&spec).unwrap_err();
    match &err {
        SpawnError::Setup {
            step,
            source,
            child,
            ..
        } => {
            assert_eq!(*step, SetupStep::WorkingDir);
            assert_eq!(source.raw_os_error(), Some(libc::EACCES));
            assert_eq!(wait_code(*child), 126);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        err.to_string().contains("enter the working directory"),
        "{err}"
    );
}

#[test]
fn missing_and_non_executable_programs_are_reported() {
    let err = spawn(&spec(&["no-such-program-sparkvisor"])).unwrap_err();
    assert!(
        matches!(err, SpawnError::NotFound { child: None, .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 127);

    let err = spawn(&spec(&["/no/such/program"])).unwrap_err();
    let child = err.child_pid().expect("failed after fork");
    assert!(matches!(err, SpawnError::NotFound { .. }), "{err:?}");
    assert_eq!(wait_code(child), 127);

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let err = spawn(&spec(&[script.to_str().unwrap()])).unwrap_err();
    assert!(
        matches!(err, SpawnError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 126);
    assert_eq!(wait_code(err.child_pid().unwrap()), 126);

    let err = spawn(&spec(&[])).unwrap_err();
    assert!(matches!(err, SpawnError::Other { .. }), "{err:?}");
}

#[test]
fn unknown_capabilities_fail_before_fork() {
    // Names are typed once, with the service's definition (`CapabilitySet`), so an unknown name
    // is refused there, listing every one, and no spawn can be asked for it.
    let err = CapabilitySet::parse(&["NET_BIND", "CHOWN", "BOGUS"]).unwrap_err();
    assert!(err.to_string().contains("`NET_BIND`, `BOGUS`"), "{err}");
}

#[test]
fn new_session_makes_the_service_a_session_and_group_leader() {
    let child = Running::start(&spec(&["sleep", "30"]));
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.pid())).unwrap();
    // pid (comm) state ppid pgrp session ...
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let me = std::process::id().to_string();
    let pid = child.pid().to_string();
    assert_eq!(
        (fields[1], fields[2], fields[3]),
        (me.as_str(), pid.as_str(), pid.as_str())
    );

    let mut spec = spec(&["sleep", "30"]);
    spec.new_session = false;
    spec.new_process_group = true;
    let child = Running::start(&spec);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.pid())).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let pid = child.pid().to_string();
    let own_session = nix::unistd::getsid(None).unwrap().to_string();
    assert_eq!((fields[2], fields[3]), (pid.as_str(), own_session.as_str()));
}

fn sig_bits(status: &std::collections::HashMap<String, String>, field: &str) -> u64 {
    u64::from_str_radix(&status[field], 16).unwrap()
}

#[test]
fn services_start_with_empty_mask_and_default_dispositions_unless_told() {
    in_forked_child(|| {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        // The agent blocks USR1 (signalfd style) and ignores USR2 and PIPE.
        let mut block = SigSet::empty();
        block.add(Signal::SIGUSR1);
        block.thread_block().map_err(|e| e.to_string())?;
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        for sig in [Signal::SIGUSR2, Signal::SIGPIPE] {
            // SAFETY: SIG_IGN installs no handler code.
            unsafe { sigaction(sig, &ignore) }.map_err(|e| e.to_string())?;
        }
        let captured = ChildSignals::capture().map_err(|e| e.to_string())?;
        if !captured.blocked.contains(&libc::SIGUSR1) || !captured.ignored.contains(&libc::SIGUSR2)
        {
            return Err(format!("capture missed the agent's state: {captured:?}"));
        }

        let child = Running::start(&spec(&["sleep", "30"]));
        let status = child.status();
        if sig_bits(&status, "SigBlk") != 0 || sig_bits(&status, "SigIgn") != 0 {
            return Err(format!(
                "default child: SigBlk {} SigIgn {}",
                status["SigBlk"], status["SigIgn"]
            ));
        }

        let mut spec = spec(&["sleep", "30"]);
        spec.signals = Some(ChildSignals {
            blocked: vec![libc::SIGUSR1],
            ignored: vec![libc::SIGUSR2],
        });
        let child = Running::start(&spec);
        let status = child.status();
        let bit = |sig: i32| 1u64 << (sig - 1);
        if sig_bits(&status, "SigBlk") != bit(libc::SIGUSR1)
            || sig_bits(&status, "SigIgn") != bit(libc::SIGUSR2)
        {
            return Err(format!(
                "restored child: SigBlk {} SigIgn {}",
                status["SigBlk"], status["SigIgn"]
            ));
        }
        Ok(())
    });
}

#[test]
fn rootless_agent_runs_services_as_itself_and_cannot_switch() {
    if !require_root("rootless_agent_runs_services_as_itself_and_cannot_switch") {
        return;
    }
    in_forked_child(|| {
        // Become a rootless agent: uid/gid 65534, groups [65534], no capabilities.
        let nobody_gid = nix::unistd::Gid::from_raw(65534);
        nix::unistd::setgroups(&[nobody_gid]).map_err(|e| e.to_string())?;
        nix::unistd::setresgid(nobody_gid, nobody_gid, nobody_gid).map_err(|e| e.to_string())?;
        let nobody_uid = nix::unistd::Uid::from_raw(65534);
        nix::unistd::setresuid(nobody_uid, nobody_uid, nobody_uid).map_err(|e| e.to_string())?;

        let mut same = spec(&["sleep", "30"]);
        same.privileges = plan(
            Some(nobody(Some(&["65534".to_string()]))),
            CapabilitySet::EMPTY,
            true,
        );
        let child = Running::start(&same);
        let status = child.status();
        // Without CAP_SETPCAP the bounding set cannot shrink; it grants nothing to a non-root
        // process under no_new_privs, and every other set is empty.
        let [eff, prm, inh, _bnd, amb] = cap_sets(&status);
        if status["Uid"] != "65534\t65534\t65534\t65534" || [eff, prm, inh, amb] != [0; 4] {
            return Err(format!("same-user service: {status:?}"));
        }

        let mut other = spec(&["sleep", "30"]);
        other.privileges = plan(
            Some(resolve_user("4244", None, None, &UserDb::default()).map_err(|e| e.to_string())?),
            CapabilitySet::EMPTY,
            true,
        );
        match spawn(&other) {
            Err(SpawnError::Setup {
                step: SetupStep::Groups,
                source,
                child,
                ..
            }) if source.raw_os_error() == Some(libc::EPERM) => {
                wait_code(child);
                Ok(())
            }
            result => Err(format!("switching user without privileges: {result:?}")),
        }
    });
}

#[test]
fn foreground_child_takes_the_terminal() {
    in_forked_child(|| {
        // Closing the terminal at the end hangs it up: this forked child must survive to report.
        // SAFETY: SIG_IGN installs no handler code.
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGHUP,
                nix::sys::signal::SigHandler::SigIgn,
            )
        }
        .map_err(|e| e.to_string())?;
        // A session of our own with a pseudo-terminal as controlling terminal and stdin.
        let pty = nix::pty::openpty(None, None).map_err(|e| e.to_string())?;
        nix::unistd::setsid().map_err(|e| e.to_string())?;
        // SAFETY: TIOCSCTTY with argument 0 on a terminal descriptor we own.
        if unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
            return Err(format!("TIOCSCTTY: {}", std::io::Error::last_os_error()));
        }
        nix::unistd::dup2_stdin(&pty.slave).map_err(|e| e.to_string())?;

        let mut spec = spec(&["sleep", "30"]);
        spec.new_session = false;
        spec.new_process_group = true;
        spec.foreground = true;
        spec.stdio = Stdio::Inherit;
        let child = Running::start(&spec);
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.pid()))
            .map_err(|e| e.to_string())?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        // state ppid pgrp session tty_nr tpgid
        let pid = child.pid().to_string();
        if fields[2] != pid || fields[5] != pid {
            return Err(format!(
                "pgrp {} tpgid {}, expected {pid}",
                fields[2], fields[5]
            ));
        }
        Ok(())
    });
}
