//! The agent with real processes, as a real PID 1 (a fresh PID namespace) and as a subreaper:
//! readiness ordering, restarts and give-up, exit codes, `run -- CMD`, shutdown order and
//! grace-then-KILL, SIGHUP re-render, output prefixes, no fd leaks, no zombies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::supervisor_support;

use std::time::Duration;

use supervisor_support::*;

const LONG: Duration = Duration::from_secs(20);

/// B (after A) starts only once A's readiness probe passed; independent C starts at once.
#[test]
fn dependents_start_after_readiness_as_pid1() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    let s = Scene::new();
    s.role(
        "order",
        r#"
services:
  a:
    command: ["sh", "-c", "sleep 0.3; date +%s%N > @WORK@/t; mv @WORK@/t @WORK@/a.ready; exec sleep 1000"]
    ready: { exec: ["test", "-f", "@WORK@/a.ready"], interval: 20ms }
  b:
    command: ["sh", "-c", "date +%s%N > @WORK@/tb; mv @WORK@/tb @WORK@/b.start; exec sleep 1000"]
    after: [a]
  c:
    command: ["sh", "-c", "date +%s%N > @WORK@/tc; mv @WORK@/tc @WORK@/c.start; exec sleep 1000"]
"#,
    );
    let mut agent = s.start(&mut s.agent(true, &["run", "--role", "order"]));
    wait_until(LONG, "b and c to start", || {
        s.exists("b.start") && s.exists("c.start")
    });
    let a_ready = nanos(&s.read("a.ready").unwrap());
    let b_start = nanos(&s.read("b.start").unwrap());
    let c_start = nanos(&s.read("c.start").unwrap());
    assert!(b_start >= a_ready, "b started before a was ready");
    assert!(
        c_start < a_ready,
        "c waited for a although it does not depend on it"
    );
    agent.signal(true, libc::SIGTERM);
    let status = agent.wait(LONG);
    assert_eq!(Agent::code(status), 0, "{}", agent.stderr());
}

/// A crashing critical service is restarted with backoff, given up after max_failures, and the
/// container exits with its code.
#[test]
fn crash_loop_gives_up_and_the_critical_code_is_the_exit_code() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    let s = Scene::new();
    s.role(
        "crash",
        r#"
services:
  flaky:
    command: ["sh", "-c", "echo run >> @WORK@/runs; exit 3"]
    backoff: { initial: 10ms, limit: 100ms, max_failures: 4, window: 1m }
  steady:
    command: ["sh", "-c", "trap 'echo stopped > @WORK@/steady.stopped; exit 0' TERM; while :; do sleep 0.05; done"]
"#,
    );
    let mut agent = s.start(&mut s.agent(true, &["run", "--role", "crash"]));
    let status = agent.wait(LONG);
    assert_eq!(Agent::code(status), 3, "{}", agent.stderr());
    assert_eq!(s.read("runs").unwrap().lines().count(), 4);
    assert!(
        s.exists("steady.stopped"),
        "the other service was not stopped in order"
    );
    assert!(agent.stderr().contains("critical service failed for good"));
}

/// A critical service killed by a signal, `restart: never`: 128 + signal. Not PID 1 this time.
#[test]
fn a_critical_service_killed_by_a_signal_gives_128_plus_n_as_subreaper() {
    let s = Scene::new();
    s.role(
        "killed",
        r#"
services:
  victim:
    command: ["sh", "-c", "kill -KILL $$"]
    restart: never
"#,
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "killed"]));
    assert_eq!(Agent::code(agent.wait(LONG)), 137, "{}", agent.stderr());
}

/// `run -- CMD`: CMD starts once the services are ready, the agent exits with CMD's code after
/// stopping the services.
#[test]
fn run_cmd_waits_for_readiness_and_exits_with_its_code() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    let s = Scene::new();
    s.role(
        "withcmd",
        r#"
services:
  a:
    command: ["sh", "-c", "echo $$ > @WORK@/a.pid; sleep 0.2; touch @WORK@/a.ready; exec sleep 1000"]
    ready: { exec: ["test", "-f", "@WORK@/a.ready"], interval: 20ms }
"#,
    );
    let check = format!("test -f {} && exit 7; exit 1", s.work("a.ready").display());
    let mut agent = s.start(&mut s.agent(
        true,
        &["run", "--role", "withcmd", "--", "sh", "-c", &check],
    ));
    assert_eq!(Agent::code(agent.wait(LONG)), 7, "{}", agent.stderr());
    assert!(
        agent.stderr().contains("a: pid"),
        "a was not stopped: {}",
        agent.stderr()
    );
}

/// Same as a subreaper (not PID 1), and a CMD that does not exist: 127.
#[test]
fn run_cmd_not_found_is_127() {
    let s = Scene::new();
    s.role("plain", "services:\n  a:\n    command: [sleep, '1000']\n");
    let mut agent =
        s.start(&mut s.agent(false, &["run", "--role", "plain", "--", "/nonexistent/cmd"]));
    assert_eq!(Agent::code(agent.wait(LONG)), 127, "{}", agent.stderr());
}

/// SIGTERM: the dependent (which ignores TERM) is stopped first and killed after its grace; only
/// then the service it depends on gets its TERM. The whole shutdown stays within the total grace.
#[test]
fn shutdown_in_reverse_order_with_grace_then_kill() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    let s = Scene::new();
    s.role(
        "stop",
        r#"
services:
  base:
    command: ["sh", "-c", "trap 'date +%s%N > @WORK@/t; mv @WORK@/t @WORK@/base.term; exit 0' TERM; touch @WORK@/base.up; while :; do sleep 0.02; done"]
    stop: { grace: 5s }
  stubborn:
    command: ["sh", "-c", "trap '' TERM; touch @WORK@/stubborn.up; while :; do sleep 0.02; done"]
    after: [base]
    stop: { grace: 400ms }
"#,
    );
    let mut agent = s.start(&mut s.agent(true, &["run", "--role", "stop"]));
    wait_until(LONG, "both services", || {
        s.exists("base.up") && s.exists("stubborn.up")
    });
    let t0 = now_nanos();
    agent.signal(true, libc::SIGTERM);
    let status = agent.wait(LONG);
    let elapsed_ms = (now_nanos() - t0) / 1_000_000;
    let base_term = nanos(&s.read("base.term").expect("base never got TERM"));
    assert!(
        base_term >= t0 + 400_000_000,
        "base got TERM {} ms after the agent, before stubborn's grace ended",
        (base_term - t0) / 1_000_000
    );
    assert!(agent
        .stderr()
        .contains("stubborn: still running after its grace: SIGKILL"));
    // A service had to be SIGKILLed: 137 says the shutdown was not clean.
    assert_eq!(Agent::code(status), 137, "{}", agent.stderr());
    assert!(elapsed_ms < 9_000, "shutdown took {elapsed_ms} ms");
}

/// The total grace (SPARKVISOR_SHUTDOWN_GRACE) caps a service's own grace.
#[test]
fn total_shutdown_grace_caps_service_grace() {
    let s = Scene::new();
    s.role(
        "slow",
        r#"
services:
  stubborn:
    command: ["sh", "-c", "trap '' TERM; touch @WORK@/up; while :; do sleep 0.02; done"]
    stop: { grace: 60s }
"#,
    );
    let mut cmd = s.agent(false, &["run", "--role", "slow"]);
    cmd.env("SPARKVISOR_SHUTDOWN_GRACE", "1s");
    let mut agent = s.start(&mut cmd);
    wait_until(LONG, "service up", || s.exists("up"));
    let t0 = now_nanos();
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 137);
    let ms = (now_nanos() - t0) / 1_000_000;
    assert!(
        (800..5_000).contains(&ms),
        "shutdown took {ms} ms with a 1 s total grace"
    );
}

/// SIGHUP: re-resolve (the cluster file changed), re-render, restart only the services whose
/// expanded spec changed (tinted) or that use a changed file's directory (reader); the rendered file
/// is rewritten; the bystander keeps running.
#[test]
fn sighup_restarts_only_what_changed() {
    let s = Scene::new();
    let cluster = s.path().join("cluster.yaml");
    std::fs::write(&cluster, "settings:\n  demo:\n    color: red\n").unwrap();
    s.template("demo.conf", "color={{ demo.color }}\n");
    s.role(
        "hup",
        r#"
render:
  - template: demo.conf
    to: "@WORK@/conf/demo.conf"
services:
  reader:
    command: ["sh", "-c", "echo $$ $(cat $CONF_DIR/demo.conf) >> @WORK@/reader.runs; exec sleep 1000"]
    environment: { CONF_DIR: "@WORK@/conf" }
  tinted:
    command: ["sh", "-c", "echo $$ $COLOR >> @WORK@/tinted.runs; exec sleep 1000"]
    environment: { COLOR: "{{ demo.color }}" }
  bystander:
    command: ["sh", "-c", "echo $$ >> @WORK@/bystander.runs; exec sleep 1000"]
"#,
    );
    let mut cmd = s.agent(false, &["run", "--role", "hup"]);
    cmd.env("SPARKVISOR_CONFIG", &cluster);
    let mut agent = s.start(&mut cmd);
    let runs = |name: &str| s.read(name).map_or(0, |t| t.lines().count());
    wait_until(LONG, "all services", || {
        runs("reader.runs") == 1 && runs("tinted.runs") == 1 && runs("bystander.runs") == 1
    });
    assert_eq!(s.read("conf/demo.conf").unwrap(), "color=red\n");
    std::fs::write(&cluster, "settings:\n  demo:\n    color: blue\n").unwrap();
    agent.signal(false, libc::SIGHUP);
    wait_until(LONG, "reader and tinted restarted", || {
        runs("reader.runs") == 2 && runs("tinted.runs") == 2
    });
    assert!(s
        .read("reader.runs")
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .ends_with(" color=blue"));
    assert!(s
        .read("tinted.runs")
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .ends_with(" blue"));
    assert_eq!(s.read("conf/demo.conf").unwrap(), "color=blue\n");
    // A second HUP with nothing changed restarts nobody.
    agent.signal(false, libc::SIGHUP);
    wait_until(LONG, "the second reload", || {
        agent.stderr().matches("SIGHUP").count() >= 2
    });
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
    assert_eq!(runs("bystander.runs"), 1);
    assert_eq!((runs("reader.runs"), runs("tinted.runs")), (2, 2));
}

/// Output is forwarded line by line with the service name as prefix (and as JSON lines on request).
#[test]
fn output_is_prefixed_or_json() {
    for (format, check) in [
        ("prefix", "talker | hello out"),
        ("json", r#""service":"talker""#),
    ] {
        let s = Scene::new();
        s.role(
            "talk",
            "services:\n  talker:\n    command: [sh, -c, 'echo hello out; echo hello err >&2']\n    restart: never\n    critical: false\n  idle:\n    command: [sleep, '1000']\n",
        );
        let mut cmd = s.agent(false, &["run", "--role", "talk"]);
        cmd.env("SPARKVISOR_LOG_FORMAT", format);
        let mut agent = s.start(&mut cmd);
        wait_until(LONG, "output", || {
            agent.stdout().contains("hello out") && agent.stderr().contains("hello err")
        });
        agent.signal(false, libc::SIGTERM);
        agent.wait(LONG);
        assert!(
            agent.stdout().contains(check),
            "{format}: {}",
            agent.stdout()
        );
        if format == "prefix" {
            assert!(
                agent.stderr().contains("talker | hello err"),
                "{}",
                agent.stderr()
            );
        }
    }
}

/// A service sees only stdin/stdout/stderr: none of the agent's descriptors (signalfd, socket,
/// pipes of other services) leak.
#[test]
fn no_descriptor_leaks_into_services() {
    let s = Scene::new();
    s.role(
        "fds",
        r#"
services:
  first:
    command: [sleep, "1000"]
  lister:
    command: ["sh", "-c", "echo $$ > @WORK@/t; mv @WORK@/t @WORK@/pid; exec sleep 1000"]
    after: [first]
"#,
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "fds"]));
    wait_until(LONG, "pid file", || s.exists("pid"));
    let pid: i32 = s.read("pid").unwrap().trim().parse().unwrap();
    // Wait until sleep is in its nanosleep: during its start-up it briefly opens locale files itself.
    wait_until(LONG, "sleep in nanosleep", || {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|c| matches!(c.split_whitespace().next(), Some("35" | "230")))
    });
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, vec!["0", "1", "2"], "leaked descriptors");
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0);
}

/// Orphans re-parented to PID 1 are reaped: no zombie child of the agent stays around, and the
/// status socket counts them.
#[test]
fn orphans_are_reaped_as_pid1() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    let s = Scene::new();
    s.role(
        "orphans",
        r#"
services:
  parent:
    command: ["sh", "-c", "for i in 1 2 3 4 5; do sh -c 'sleep 0.05 &'; done; touch @WORK@/spawned; exec sleep 1000"]
"#,
    );
    let mut agent = s.start(&mut s.agent(true, &["run", "--role", "orphans"]));
    wait_until(LONG, "orphans spawned", || s.exists("spawned"));
    let pid1 = agent.host_pid(true);
    let sock = s.path().join("agent.sock");
    wait_until(LONG, "orphans reaped", || {
        sock.exists() && get(&sock, "/v1/status").contains("\"zombies_reaped\":5")
    });
    let zombies: Vec<i32> = children(pid1)
        .into_iter()
        .filter(|p| matches!(state_and_parent(*p), Some(('Z', _))))
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    agent.signal(true, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0);
}

/// Invalid roles are refused with 78 before anything starts.
#[test]
fn bad_role_is_78_and_starts_nothing() {
    let s = Scene::new();
    s.role(
        "bad",
        "services:\n  a:\n    command: [sh, -c, 'touch @WORK@/started']\n    user: no-such-user-xyz\n    stop: { signal: NOPE }\n",
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "bad"]));
    assert_eq!(Agent::code(agent.wait(LONG)), 78, "{}", agent.stderr());
    assert!(!s.exists("started"));
    let err = agent.stderr();
    assert!(err.contains("bad.yaml"), "{err}");
}

/// No service outlives the agent when it is not PID 1: at exit the service groups are gone, and
/// so is a daemon that left its group with setsid (re-parented to the agent, a subreaper).
#[test]
fn no_service_outlives_the_agent() {
    let s = Scene::new();
    s.role(
        "tree",
        r#"
services:
  tree:
    command: ["sh", "-c", "sleep 1000 & echo $! > @WORK@/t; mv @WORK@/t @WORK@/grandchild; trap '' TERM; wait"]
    stop: { grace: 200ms }
  daemon:
    command: ["sh", "-c", "setsid sh -c 'sleep 1000 & echo $! > @WORK@/d; mv @WORK@/d @WORK@/daemon'; exec sleep 1000"]
"#,
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "tree"]));
    agent.wait_for(LONG, "grandchild and daemon", || {
        s.exists("grandchild") && s.exists("daemon")
    });
    let grandchild: i32 = s.read("grandchild").unwrap().trim().parse().unwrap();
    let daemon: i32 = s.read("daemon").unwrap().trim().parse().unwrap();
    assert!(alive(grandchild) && alive(daemon));
    let agent_pid = agent.host_pid(false);
    wait_until(LONG, "the daemon re-parented to the agent", || {
        state_and_parent(daemon).is_some_and(|(_, ppid)| ppid == agent_pid)
    });
    agent.signal(false, libc::SIGTERM);
    agent.wait(LONG);
    wait_until(LONG, "grandchild gone", || !alive(grandchild));
    wait_until(LONG, "daemon gone", || !alive(daemon));
}

/// A liveness probe failing `threshold` times in a row restarts the service (even with
/// `restart: never`); a passing probe keeps it running.
#[test]
fn failing_health_probe_restarts_the_service() {
    let s = Scene::new();
    s.role(
        "health",
        r#"
services:
  patient:
    command: ["sh", "-c", "echo $$ >> @WORK@/runs; exec sleep 1000"]
    restart: never
    health: { exec: ["test", "!", "-f", "@WORK@/sick"], interval: 20ms, threshold: 2 }
    backoff: { initial: 10ms }
"#,
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "health"]));
    let runs = || s.read("runs").map_or(0, |t| t.lines().count());
    wait_until(LONG, "first run", || runs() == 1);
    std::fs::write(s.work("sick"), "").unwrap();
    wait_until(LONG, "a restart", || runs() >= 2);
    std::fs::remove_file(s.work("sick")).unwrap();
    let settled = runs();
    let sock = s.path().join("agent.sock");
    wait_until(LONG, "healthy again", || {
        get(&sock, "/v1/status").contains("\"healthy\":true")
    });
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
    assert!(runs() <= settled + 1, "kept restarting a healthy service");
}

/// Privileges applied by the agent from a role: a non-root service keeps exactly
/// NET_BIND_SERVICE and binds port 80; its ids, capability sets and NoNewPrivs are as configured;
/// the same service without the capability cannot bind. (A fresh network namespace keeps port 80
/// free of other tests.)
#[test]
fn role_privileges_reach_the_service_as_pid1() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    let s = Scene::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(s.work(""), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bind = "import socket, sys\ntry:\n    socket.socket().bind(('0.0.0.0', 80)); r = 'bound'\nexcept OSError as e:\n    r = 'denied'\nopen(sys.argv[1] + '.status', 'w').write(open('/proc/self/status').read())\nimport os\nopen(sys.argv[1] + '.env', 'w').write(''.join(k + '=' + v + '\\n' for k, v in os.environ.items()))\nopen(sys.argv[1] + '.tmp', 'w').write(r)\nimport os\nos.rename(sys.argv[1] + '.tmp', sys.argv[1])\n";
    std::fs::write(s.work("bind.py"), bind).unwrap();
    s.role(
        "privs",
        r#"
services:
  web:
    command: ["/usr/bin/python3", "@WORK@/bind.py", "@WORK@/web"]
    user: "65534:65534"
    groups: ["100"]
    capabilities: [NET_BIND_SERVICE]
    restart: never
    critical: false
  plain:
    command: ["/usr/bin/python3", "@WORK@/bind.py", "@WORK@/plain"]
    user: "65534"
    restart: never
    critical: false
  idle:
    command: [sleep, "1000"]
"#,
    );
    let cmd = s.agent(true, &["run", "--role", "privs"]);
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut cmd2 = std::process::Command::new("unshare");
    cmd2.arg("--net").args(&args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => cmd2.env(k, v),
            None => cmd2.env_remove(k),
        };
    }
    cmd2.stdin(std::process::Stdio::null());
    let mut agent = s.start(&mut cmd2);
    agent.wait_for(LONG, "both services", || {
        s.exists("web") && s.exists("plain")
    });
    assert_eq!(s.read("web").unwrap(), "bound");
    assert_eq!(s.read("plain").unwrap(), "denied");
    let status = s.read("web.status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} missing"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Uid"), "65534 65534 65534 65534");
    assert_eq!(field("Gid"), "65534 65534 65534 65534");
    assert_eq!(field("Groups"), "100");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(set), "0000000000000400", "{set}");
    }
    assert_eq!(field("NoNewPrivs"), "1");
    let env = s.read("web.env").unwrap();
    assert!(
        env.contains("HOME=/nonexistent\n") || env.contains("HOME=/\n"),
        "{env}"
    );
    assert!(
        !env.contains("SPARKVISOR_"),
        "internal variables leak: {env}"
    );
    let plain = s.read("plain.status").unwrap();
    assert!(plain.contains("CapEff:\t0000000000000000"), "{plain}");
    agent.signal(true, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

/// A user added to /etc/passwd before a SIGHUP is resolved by that reload, and the restarted
/// service runs as it: a service's plan (its ids among them) is built by the reload with the user
/// database of that moment, and the spawn only maps that plan (it resolves nothing against the
/// database loaded at start). /etc/passwd is a bind mount of a scene file, in a mount namespace of
/// the agent's own.
#[test]
fn a_user_added_before_sighup_runs_the_service_after_the_reload() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let s = Scene::new();
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(s.work(""), std::fs::Permissions::from_mode(0o777)).unwrap();
    let passwd = s.path().join("passwd");
    let users = "root:x:0:0:root:/root:/bin/sh\nolduser:x:4301:4301::/:/bin/sh\n";
    std::fs::write(&passwd, users).unwrap();
    let cluster = s.path().join("cluster.yaml");
    std::fs::write(&cluster, "settings:\n  demo:\n    who: olduser\n").unwrap();
    s.role(
        "who",
        r#"
services:
  who:
    command: ["sh", "-c", "echo $(id -u) $USER >> @WORK@/who.runs; exec sleep 1000"]
    user: "{{ demo.who }}"
"#,
    );
    // Both users append to it.
    std::fs::write(s.work("who.runs"), "").unwrap();
    std::fs::set_permissions(s.work("who.runs"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let agent_cmd = s.agent(false, &["run", "--role", "who"]);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/passwd && exec \"$@\"")
        .arg(&passwd)
        .arg(agent_cmd.get_program())
        .args(agent_cmd.get_args());
    for (k, v) in agent_cmd.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("SPARKVISOR_CONFIG", &cluster)
        .stdin(std::process::Stdio::null());
    let mut agent = s.start(&mut cmd);
    let runs = || s.read("who.runs").unwrap_or_default();
    agent.wait_for(LONG, "the service as olduser", || !runs().is_empty());
    assert_eq!(runs(), "4301 olduser\n");
    // Written in place: the bind mount shows the same file.
    std::fs::write(&passwd, format!("{users}newuser:x:4302:4302::/:/bin/sh\n")).unwrap();
    std::fs::write(&cluster, "settings:\n  demo:\n    who: newuser\n").unwrap();
    agent.signal(false, libc::SIGHUP);
    agent.wait_for(LONG, "the service restarted as newuser", || {
        runs().lines().count() >= 2
    });
    assert_eq!(runs(), "4301 olduser\n4302 newuser\n", "{}", s.stderr());
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

/// A rewritten cluster file (as KubeDirector rewrites configmeta.json) reloads without a SIGHUP.
#[test]
fn a_rewritten_config_file_reloads_by_itself() {
    let s = Scene::new();
    let cluster = s.path().join("cluster.yaml");
    std::fs::write(&cluster, "settings:\n  demo:\n    color: red\n").unwrap();
    s.role(
        "watch",
        r#"
services:
  tinted:
    command: ["sh", "-c", "echo $COLOR >> @WORK@/tinted.runs; exec sleep 1000"]
    environment: { COLOR: "{{ demo.color }}" }
"#,
    );
    let mut cmd = s.agent(false, &["run", "--role", "watch"]);
    cmd.env("SPARKVISOR_CONFIG", &cluster);
    let mut agent = s.start(&mut cmd);
    agent.wait_for(LONG, "first run", || s.exists("tinted.runs"));
    // Replaced atomically, as a config manager does.
    let tmp = s.path().join("cluster.yaml.tmp");
    std::fs::write(&tmp, "settings:\n  demo:\n    color: green\n").unwrap();
    std::fs::rename(&tmp, &cluster).unwrap();
    agent.wait_for(LONG, "restart with the new value", || {
        s.read("tinted.runs")
            .is_some_and(|t| t.lines().last() == Some("green"))
    });
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

/// The status socket is served by the supervisor: state and logs come from it, control requests
/// go through it (restart → a new pid, stop → stopped, start → running again).
#[test]
fn status_socket_reads_and_controls_the_supervisor() {
    let s = Scene::new();
    s.role(
        "ctl",
        "services:\n  svc:\n    command: [sh, -c, 'echo started $$; exec sleep 1000']\n",
    );
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "ctl"]));
    let sock = s.path().join("agent.sock");
    let status = |sock: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&get(sock, "/v1/services/svc")).unwrap()
    };
    agent.wait_for(LONG, "socket and service", || {
        sock.exists() && get(&sock, "/v1/status").contains("\"state\":\"running\"")
    });
    let pid = status(&sock)["pid"].as_i64().unwrap();
    agent.wait_for(LONG, "log line", || {
        get(&sock, "/v1/logs?n=10").contains(&format!("started {pid}"))
    });
    let after: serde_json::Value =
        serde_json::from_str(&request(&sock, "POST", "/v1/services/svc/restart")).unwrap();
    assert_eq!(after["state"], "stopping", "{after}");
    agent.wait_for(LONG, "a new pid", || {
        let st = status(&sock);
        st["state"] == "running" && st["pid"].as_i64() != Some(pid)
    });
    assert_eq!(status(&sock)["restarts"], 1);
    request(&sock, "POST", "/v1/services/svc/stop");
    agent.wait_for(LONG, "stopped", || status(&sock)["state"] == "stopped");
    request(&sock, "POST", "/v1/services/svc/start");
    agent.wait_for(LONG, "running again", || {
        status(&sock)["state"] == "running"
    });
    let unknown = request(&sock, "POST", "/v1/services/nope/stop");
    assert!(unknown.contains("nope"), "{unknown}");
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}

/// `forward_signals`: a signal the agent receives reaches the process group of the services that
/// list it (SIGPWR, the Spark worker's decommission signal), and only those.
#[test]
fn listed_signals_are_forwarded_to_the_service_group_as_pid1() {
    if !require_pid_namespace("the agent as PID 1") {
        return;
    }
    let s = Scene::new();
    s.role(
        "fwd",
        r#"
services:
  worker:
    command: ["sh", "-c", "trap 'touch @WORK@/worker.pwr' PWR; touch @WORK@/worker.up; while :; do sleep 0.02; done"]
    forward_signals: [PWR]
  other:
    command: ["sh", "-c", "trap 'touch @WORK@/other.pwr' PWR; touch @WORK@/other.up; while :; do sleep 0.02; done"]
"#,
    );
    let mut agent = s.start(&mut s.agent(true, &["run", "--role", "fwd"]));
    agent.wait_for(LONG, "services up", || {
        s.exists("worker.up") && s.exists("other.up")
    });
    agent.signal(true, libc::SIGPWR);
    agent.wait_for(LONG, "worker got PWR", || s.exists("worker.pwr"));
    agent.signal(true, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
    assert!(
        !s.exists("other.pwr"),
        "PWR reached a service that did not ask for it"
    );
}

/// The last lines a critical service writes before it ends (the reason for the exit code) reach
/// the container's output before the agent exits, even when the forwarder copies them late (the
/// debug-build fault `output:late` delays every forwarder by 300 ms, as load may).
#[test]
fn a_failing_services_last_output_is_forwarded_before_the_exit() {
    let s = Scene::new();
    s.role(
        "lastwords",
        r#"
services:
  failing:
    command: ["sh", "-c", "echo last-words-before-exit >&2; exit 3"]
    restart: never
"#,
    );
    let mut cmd = s.agent(false, &["run", "--role", "lastwords"]);
    cmd.env("SPARKVISOR_FAULT", "output:late");
    let mut agent = s.start(&mut cmd);
    assert_eq!(Agent::code(agent.wait(LONG)), 3, "{}", agent.stderr());
    assert!(
        agent.stderr().contains("last-words-before-exit"),
        "the service's last output was lost: {}",
        agent.stderr()
    );
}
