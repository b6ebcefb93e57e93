//! The agent with the user's own conf files (docs/conf-files.md), as a subreaper: a reload
//! (SIGHUP) re-renders the agent's block and keeps the user's lines, including one added while the
//! agent ran, once each; a user's file that cannot be merged stops `run` with 78 before anything
//! starts, the file untouched.
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

const ROLE: &str = r#"
render:
  - template: defaults.conf
    to: "{{ spark.conf_dir }}/spark-defaults.conf"
  - template: env.sh
    to: "{{ spark.conf_dir }}/spark-env.sh"
services:
  reader:
    command: ["sh", "-c", "cat {{ spark.conf_dir }}/spark-defaults.conf > @WORK@/seen.$$; exec sleep 1000"]
"#;

fn scene(user_defaults: &str) -> (Scene, std::path::PathBuf) {
    let s = Scene::new();
    s.template(
        "defaults.conf",
        "demo.color {{ demo.color }}\nspark.master spark://derived:7077\n",
    );
    s.template("env.sh", "COLOR={{ demo.color }}\n");
    s.role("conf", ROLE);
    let conf = s.path().join("spark-home/conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("spark-defaults.conf"), user_defaults).unwrap();
    (s, conf)
}

#[test]
fn a_reload_rewrites_the_agents_block_and_keeps_the_users_lines() {
    let users = "# mine\nspark.master local[3]\n";
    let (s, conf) = scene(users);
    let cluster = s.path().join("cluster.yaml");
    std::fs::write(&cluster, "settings:\n  demo:\n    color: red\n").unwrap();
    let mut cmd = s.agent(false, &["run", "--role", "conf"]);
    cmd.env("SPARKVISOR_CONFIG", &cluster);
    let mut agent = s.start(&mut cmd);
    let defaults = conf.join("spark-defaults.conf");
    let read = || std::fs::read_to_string(&defaults).unwrap();
    wait_until(LONG, "the reader started", || {
        std::fs::read_dir(s.work(""))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("seen."))
    });
    let first = read();
    assert!(first.ends_with(users), "{first}");
    assert!(first.contains("demo.color red\n"), "{first}");
    assert!(
        !first.contains("spark.master spark://derived:7077"),
        "the user's spark.master must replace the agent's: {first}"
    );

    // An edit while the agent runs, then a reload with a changed config.
    std::fs::write(&defaults, format!("{first}spark.later added\n")).unwrap();
    std::fs::write(&cluster, "settings:\n  demo:\n    color: blue\n").unwrap();
    agent.signal(false, libc::SIGHUP);
    wait_until(LONG, "the block re-rendered", || {
        read().contains("demo.color blue\n")
    });
    let second = read();
    assert!(
        second.ends_with(&format!("{users}spark.later added\n")),
        "{second}"
    );
    assert_eq!(second.matches(">>> sparkvisor").count(), 1, "{second}");
    assert_eq!(
        second.matches("spark.master local[3]").count(),
        1,
        "{second}"
    );
    assert!(!second.contains("demo.color red"), "{second}");
    let env = std::fs::read_to_string(conf.join("spark-env.sh")).unwrap();
    assert!(
        env.contains("COLOR='blue'\n") && !env.contains("red"),
        "{env}"
    );

    // Nothing changed: a second reload leaves the file as it is.
    agent.signal(false, libc::SIGHUP);
    wait_until(LONG, "the second reload", || {
        agent.stderr().matches("SIGHUP").count() >= 2
    });
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
    assert_eq!(read(), second);
}

#[test]
fn a_users_file_that_cannot_be_merged_is_78_and_starts_nothing() {
    let users = "a=1\nb=\\uZZZZ\n";
    let (s, conf) = scene(users);
    let mut cmd = s.agent(false, &["run", "--role", "conf"]);
    cmd.env("SPARKVISOR_SETTINGS", "{demo.color: red}");
    let mut agent = s.start(&mut cmd);
    let code = Agent::code(agent.wait(LONG));
    let err = agent.stderr();
    assert_eq!(code, 78, "{err}");
    let file = conf.join("spark-defaults.conf");
    assert!(
        err.contains(&format!(
            "{}:2:1: cannot merge your file with sparkvisor's defaults.conf: malformed \\uXXXX escape",
            file.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), users);
    assert!(!conf.join("spark-env.sh").exists());
    assert!(!std::fs::read_dir(s.work(""))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("seen.")));
}
