#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Hostile injected files: a FIFO or /dev/zero as a `*_FILE` secret, the cluster file or
//! configmeta.json, and oversized files, make sparkvisor exit 78 at once (under a memory limit)
//! naming the file and the limit, instead of hanging or growing until the kernel kills PID 1.

use crate::common;

use common::TempDir;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `PROGRAM ARGS` with an empty environment but for the repo's roles and templates, a fixture
/// cgroup and no configmeta.json.
fn clean(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("SPARKVISOR_CONFIGMETA", "")
        .env("SPARKVISOR_ROLES", common::repo().join("roles"))
        .env("SPARKVISOR_TEMPLATES", common::repo().join("templates"))
        .env(
            "SPARKVISOR_CGROUP_ROOT",
            common::repo().join("tests/fixtures/cgroups/v2-quota"),
        );
    cmd
}

/// Runs `sparkvisor inspect` under a 300 MB address-space limit; kills it after a generous
/// deadline (a hang is the failure this guards against). Returns (exit code, stderr).
fn inspect(env: &[(&str, String)]) -> (Option<i32>, String) {
    let script = "ulimit -v 300000; exec \"$0\" inspect";
    let mut cmd = clean("sh", &["-c", script, common::bin()]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let ended = common::poll(Duration::from_secs(20), Duration::from_millis(20), || {
        child.try_wait().unwrap()
    });
    if ended.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return (None, "hung: killed after 20 s".to_string());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fifos_devices_and_huge_files_exit_78_naming_file_and_limit() {
    let dir = TempDir::new("hostile-files");
    let fifo = dir.0.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.display().to_string();
    let huge = dir.0.join("huge");
    std::fs::write(&huge, vec![b'a'; 100 << 10]).unwrap();
    let huge = huge.display().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "SPARK_RPC_AUTHENTICATION_SECRET_FILE",
            "/dev/zero".into(),
            "character device",
        ),
        ("SPARK_RPC_AUTHENTICATION_SECRET_FILE", fifo.clone(), "FIFO"),
        (
            "SPARK_RPC_AUTHENTICATION_SECRET_FILE",
            huge.clone(),
            "limit of 65536 bytes",
        ),
        ("SPARKVISOR_CONFIG", fifo.clone(), "FIFO"),
        ("SPARKVISOR_CONFIG", "/dev/zero".into(), "character device"),
        ("SPARKVISOR_CONFIGMETA", fifo.clone(), "FIFO"),
    ];
    for (var, path, why) in cases {
        let started = Instant::now();
        let (code, stderr) = inspect(&[(var, path.clone()), ("SPARKVISOR_ROLE", "worker".into())]);
        assert_eq!(code, Some(78), "{var}={path}: {stderr}");
        assert!(
            stderr.contains(&path) && stderr.contains(why),
            "{var}={path}: the error names the file and why: {stderr}"
        );
        // Not a timing assertion on speed, only that it did not wait for a writer.
        assert!(started.elapsed() < Duration::from_secs(15), "{var}={path}");
    }
}

#[test]
fn a_2mb_settings_file_parses_in_linear_time_and_deep_nesting_is_refused() {
    let dir = TempDir::new("hostile-parse");
    let mut text = String::from("settings:\n");
    let mut i = 0;
    while text.len() < 2 << 20 {
        text.push_str(&format!(
            "  custom.setting_number_{i:06}: value-{i:06}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
        ));
        i += 1;
    }
    let big = dir.file("big.yaml", &text);
    let started = Instant::now();
    let (code, stderr) = inspect(&[
        ("SPARKVISOR_CONFIG", big),
        ("SPARKVISOR_ROLE", "worker".into()),
    ]);
    let took = started.elapsed();
    eprintln!("{i} keys ({} bytes): {took:?}", text.len());
    assert_eq!(code, Some(0), "{stderr}");
    // 40 s before (each key's position was found by rescanning the text); generous for a loaded
    // machine and a debug build: this guards the complexity, not the speed.
    assert!(took < Duration::from_secs(30), "{i} keys took {took:?}");

    let deep = format!(
        "settings:\n  a: {}{}\n",
        "[".repeat(80_000),
        "]".repeat(80_000)
    );
    let deep = dir.file("deep.yaml", &deep);
    let (code, stderr) = inspect(&[
        ("SPARKVISOR_CONFIG", deep.clone()),
        ("SPARKVISOR_ROLE", "worker".into()),
    ]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!("{deep}:2:")) && stderr.contains("limit of 64 levels"),
        "{stderr}"
    );
}

#[test]
fn a_non_utf8_value_is_refused_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    let out = clean(common::bin(), &["inspect"])
        .env("SPARKVISOR_ROLE", "worker")
        .env(
            "SPARK_MASTER_URL",
            std::ffi::OsStr::from_bytes(b"spark://m\xff1:7077"),
        )
        // Variables sparkvisor does not read may hold anything.
        .env("UNRELATED", std::ffi::OsStr::from_bytes(b"\xfe\xff"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("env SPARK_MASTER_URL") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert!(!stderr.contains("UNRELATED"), "{stderr}");
}
