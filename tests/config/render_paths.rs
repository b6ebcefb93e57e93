//! Where rendered files go: never through a symbolic link another user could plant (run), never
//! outside `render --out DIR`, the same (normalised) path in a preview as in `run`, and a full disk
//! at start is exit 78 naming the path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{common, supervisor_support};

use std::time::Duration;

use supervisor_support::*;

const LONG: Duration = Duration::from_secs(20);

fn role(s: &Scene, to: &str) {
    s.template(
        "x.conf",
        "secret={{ secrets[\"spark.authenticate.secret\"] }}\n",
    );
    s.role(
        "paths",
        &format!(
            r#"
render:
  - template: x.conf
    to: "{to}"
services:
  idle:
    command: [sleep, "1000"]
"#
        ),
    );
}

#[test]
fn render_out_stays_inside_and_previews_the_run_path() {
    let s = Scene::new();
    let out = s.path().join("out");
    let elsewhere = s.path().join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    role(&s, "/opt/conf/../spark/x.conf");
    let run = |s: &Scene| {
        let mut cmd = s.agent(false, &["render", "--role", "paths", "--out"]);
        cmd.arg(&out)
            .env("SPARK_RPC_AUTHENTICATION_SECRET", "s3cret")
            .output()
            .unwrap()
    };
    let o = run(&s);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `..` applied as run applies it: /opt/spark/x.conf.
    assert!(out.join("opt/spark/x.conf").is_file());
    assert!(!out.join("opt/conf").exists());
    // A link below --out is never followed.
    std::fs::remove_dir_all(out.join("opt")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("opt")).unwrap();
    let o = run(&s);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing written outside"
    );
}

#[test]
fn run_refuses_a_link_planted_by_another_user() {
    if skip_unless(is_root(), "needs root (a link owned by another uid)") {
        return;
    }
    let s = Scene::new();
    let conf = s.path().join("conf");
    let target = s.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, &conf).unwrap();
    std::os::unix::fs::lchown(&conf, Some(65534), Some(65534)).unwrap();
    role(&s, &format!("{}/x.conf", conf.display()));
    // `check` refuses it too, by the same code.
    let check = s
        .agent(false, &["check", "--role", "paths"])
        .env("SPARK_RPC_AUTHENTICATION_SECRET", "s3cret")
        .output()
        .unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(78), "{check_err}");
    assert!(check_err.contains("(owned by uid 65534)"), "{check_err}");
    let mut cmd = s.agent(false, &["run", "--role", "paths"]);
    cmd.env("SPARK_RPC_AUTHENTICATION_SECRET", "s3cret");
    let mut agent = s.start(&mut cmd);
    let code = Agent::code(agent.wait(LONG));
    let stderr = agent.stderr();
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is a symbolic link (owned by uid 65534)",
            conf.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

/// `cmd` (the agent) run in a private mount namespace with a `size` tmpfs mounted on `full`, after
/// `setup` (shell commands) ran there: a real, small disk that only the agent sees.
fn on_tmpfs(
    cmd: &std::process::Command,
    full: &std::path::Path,
    size: &str,
    setup: &str,
) -> std::process::Command {
    let mut sh = std::process::Command::new("unshare");
    sh.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={size} tmpfs {full} && cd {full} && {setup} && exec \"$0\" \"$@\"",
            full = full.display()
        ))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.stdin(std::process::Stdio::null());
    sh
}

/// A scene with an empty `full/` to mount a tmpfs on; None (skipped, or failing under CI) without
/// root or unshare.
fn tmpfs_scene() -> Option<(Scene, std::path::PathBuf)> {
    if skip_unless(
        is_root() && common::has_command("unshare"),
        "needs root and unshare (a private tmpfs)",
    ) {
        return None;
    }
    let s = Scene::new();
    let full = s.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    Some((s, full))
}

#[test]
fn a_full_disk_at_start_is_78_with_the_path() {
    let Some((s, full)) = tmpfs_scene() else {
        return;
    };
    role(&s, &format!("{}/conf/x.conf", full.display()));
    let cmd = s.agent(false, &["run", "--role", "paths"]);
    let mut sh = on_tmpfs(
        &cmd,
        &full,
        "16k",
        "mkdir conf && (dd if=/dev/zero of=fill bs=1k count=64 2>/dev/null; true)",
    );
    sh.env("SPARK_RPC_AUTHENTICATION_SECRET", "x".repeat(60_000));
    let mut agent = s.start(&mut sh);
    let code = Agent::code(agent.wait(LONG));
    let stderr = agent.stderr();
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains(&format!("{}/conf", full.display())) && stderr.contains("No space left"),
        "{stderr}"
    );
}

/// `check` resolves destinations with the code `run` writes with: every path `run` cannot write
/// (a directory in the way, a parent that is a file, two entries that are one file once `..` is
/// applied) is refused by `check` with the same message, and by `run` with exit 78 before
/// anything starts.
#[test]
fn check_refuses_every_path_run_refuses() {
    let cases: &[(&str, &str)] = &[
        ("dir.conf", "a directory is there"),
        ("file/x.conf", "is not a directory"),
        (
            "a/x.conf\"\n  - template: x.conf\n    to: \"@WORK@/b/../a/x.conf",
            "written by two `render` entries",
        ),
    ];
    for (to, why) in cases {
        let s = Scene::new();
        std::fs::create_dir_all(s.work("dir.conf")).unwrap();
        std::fs::write(s.work("file"), "").unwrap();
        role(&s, &format!("@WORK@/{to}"));
        let check = s
            .agent(false, &["check", "--role", "paths"])
            .env("SPARK_RPC_AUTHENTICATION_SECRET", "s3cret")
            .output()
            .unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr);
        assert_eq!(check.status.code(), Some(78), "{to}: {check_err}");
        assert!(check_err.contains(why), "{to}: {check_err}");
        let mut cmd = s.agent(false, &["run", "--role", "paths"]);
        cmd.env("SPARK_RPC_AUTHENTICATION_SECRET", "s3cret");
        let mut agent = s.start(&mut cmd);
        let code = Agent::code(agent.wait(LONG));
        let run_err = agent.stderr();
        assert_eq!(code, 78, "{to}: {run_err}");
        assert!(run_err.contains(why), "{to}: {run_err}");
        assert!(
            !run_err.contains("starting"),
            "{to}: nothing started: {run_err}"
        );
        assert!(!s.exists("a"), "{to}: nothing written");
    }
}

/// A reload that runs out of space half-way through its files: on a 64 KiB tmpfs nearly filled,
/// the new first file fits but the second (40 KB) does not. The reload fails naming the path, the
/// running config is kept, both files keep their old content, no temporary file is left, and the
/// service is not restarted. Once there is room again, the next reload switches both in.
#[test]
fn a_reload_on_a_full_disk_keeps_every_old_file() {
    let Some((s, full)) = tmpfs_scene() else {
        return;
    };
    s.template("a.conf", "a={{ demo.a }}\n");
    s.template("b.conf", "b={{ demo.b }}\n");
    s.role(
        "disk",
        &format!(
            r#"
render:
  - template: a.conf
    to: "{full}/conf/a.conf"
  - template: b.conf
    to: "{full}/conf/b.conf"
services:
  steady:
    command: ["sh", "-c", "echo $$ >> @WORK@/steady.runs; exec sleep 1000"]
"#,
            full = full.display()
        ),
    );
    let cluster = s.path().join("cluster.yaml");
    let write_cluster = |a: &str, b: &str| {
        let tmp = s.path().join("cluster.yaml.tmp");
        std::fs::write(&tmp, format!("settings:\n  demo.a: {a}\n  demo.b: {b}\n")).unwrap();
        std::fs::rename(&tmp, &cluster).unwrap();
    };
    write_cluster("old-a", "old-b");
    let mut cmd = s.agent(false, &["run", "--role", "disk"]);
    cmd.env("SPARKVISOR_CONFIG", &cluster);
    // 64 KiB, 48 KiB of it taken: the two small files (a page each) fit, 40 KB more does not.
    let mut agent = s.start(&mut on_tmpfs(
        &cmd,
        &full,
        "64k",
        "mkdir conf && dd if=/dev/zero of=fill bs=4k count=12 2>/dev/null",
    ));
    let runs = |s: &Scene| s.read("steady.runs").map_or(0, |t| t.lines().count());
    agent.wait_for(LONG, "steady started", || runs(&s) == 1);
    // The agent's view of the tmpfs (its own mount namespace).
    let conf = std::path::PathBuf::from(format!("/proc/{}/root", agent.child.id()))
        .join(full.strip_prefix("/").unwrap())
        .join("conf");
    let read = |name: &str| std::fs::read_to_string(conf.join(name)).unwrap();
    assert_eq!(
        (read("a.conf"), read("b.conf")),
        ("a=old-a\n".into(), "b=old-b\n".into())
    );

    write_cluster("new-a", &"x".repeat(40_000));
    agent.wait_for(LONG, "the reload to fail", || {
        s.stderr()
            .contains("reload failed, keeping the running config")
    });
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!("{}/conf/", full.display())) && stderr.contains("No space left"),
        "{stderr}"
    );
    assert_eq!(read("a.conf"), "a=old-a\n", "not half new");
    assert_eq!(read("b.conf"), "b=old-b\n");
    let mut left: Vec<String> = std::fs::read_dir(&conf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["a.conf", "b.conf"], "no temporary file left");
    assert_eq!(runs(&s), 1, "not restarted");

    // Room again: the same config is switched in whole on the next reload.
    std::fs::remove_file(conf.parent().unwrap().join("fill")).unwrap();
    agent.signal(false, libc::SIGHUP);
    agent.wait_for(LONG, "the reload to succeed", || {
        std::fs::read_to_string(conf.join("b.conf")).is_ok_and(|b| b.len() > 40_000)
    });
    assert_eq!(read("a.conf"), "a=new-a\n");
    agent.signal(false, libc::SIGTERM);
    assert_eq!(Agent::code(agent.wait(LONG)), 0, "{}", agent.stderr());
}
