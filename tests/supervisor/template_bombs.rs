//! Template bombs: refused with exit 78 before anything starts, and a bomb introduced before a
//! SIGHUP makes the reload fail while every service keeps running (PID 1 never overflows its
//! stack or exhausts memory on a template).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::supervisor_support;

use std::time::Duration;

use supervisor_support::*;

const LONG: Duration = Duration::from_secs(30);

const BOMBS: &[(&str, &str)] = &[
    ("self-include", "{% include \"bomb.conf\" %}"),
    ("recursive macro", "{% macro f(n) %}{{ self::f(n=n) }}{% endmacro f %}{{ self::f(n=1) }}"),
    ("huge range", "{% for i in range(end=100000000) %}x{% endfor %}"),
    (
        "nested loops",
        "{% for i in range(end=10000) %}{% for j in range(end=10000) %}{% for k in range(end=10000) %}xxxxxxxx{% endfor %}{% endfor %}{% endfor %}",
    ),
    (
        "doubling",
        "{% set_global s = \"xxxxxxxxxxxxxxxx\" %}{% for i in range(end=64) %}{% set_global s = s ~ s %}{% endfor %}{{ s }}",
    ),
];

fn role(s: &Scene) {
    s.role(
        "bomb",
        r#"
render:
  - template: bomb.conf
    to: "@WORK@/conf/bomb.conf"
services:
  steady:
    command: ["sh", "-c", "echo $$ >> @WORK@/steady.runs; exec sleep 1000"]
"#,
    );
}

#[test]
fn each_bomb_exits_78_at_start() {
    for (name, bomb) in BOMBS {
        let s = Scene::new();
        role(&s);
        s.template("bomb.conf", bomb);
        let mut agent = s.start(&mut s.agent(false, &["run", "--role", "bomb"]));
        let code = Agent::code(agent.wait(LONG));
        let stderr = agent.stderr();
        assert_eq!(code, 78, "{name}: {stderr}");
        assert!(
            stderr.contains("bomb.conf"),
            "{name}: names the template: {stderr}"
        );
        assert!(!s.exists("steady.runs"), "{name}: nothing started");
    }
}

#[test]
fn a_bomb_before_sighup_keeps_the_running_config() {
    let s = Scene::new();
    role(&s);
    s.template("bomb.conf", "fine\n");
    let mut agent = s.start(&mut s.agent(false, &["run", "--role", "bomb"]));
    let runs = |s: &Scene| s.read("steady.runs").map_or(0, |t| t.lines().count());
    agent.wait_for(LONG, "steady started", || runs(&s) == 1);
    for (i, (name, bomb)) in BOMBS.iter().enumerate() {
        s.template("bomb.conf", bomb);
        agent.signal(false, libc::SIGHUP);
        agent.wait_for(LONG, name, || {
            s.stderr()
                .matches("reload failed, keeping the running config")
                .count()
                > i
        });
    }
    assert_eq!(runs(&s), 1, "never restarted");
    assert_eq!(s.read("conf/bomb.conf").unwrap(), "fine\n");
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}
