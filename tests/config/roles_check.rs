#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `sparkvisor check` and `render` on broken roles: exit 78, every problem with its file and line,
//! nothing written. Fixtures: tests/fixtures/roles/<case>/roles (and templates when the case needs
//! broken ones; otherwise tests/fixtures/roles/templates-ok).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    common::repo().join("tests/fixtures/roles")
}

fn run(args: &[&str], roles: &Path, templates: &Path) -> Output {
    Command::new(common::bin())
        .args(args)
        .env("SPARKVISOR_ROLES", roles)
        .env("SPARKVISOR_TEMPLATES", templates)
        .env_remove("SPARKVISOR_ROLE")
        .env_remove("SPARK_MODE")
        .output()
        .unwrap()
}

fn case_dirs(case: &str) -> (PathBuf, PathBuf) {
    let dir = fixtures().join(case);
    let templates = if dir.join("templates").is_dir() {
        dir.join("templates")
    } else {
        fixtures().join("templates-ok")
    };
    (dir.join("roles"), templates)
}

/// `check` exits 78 and reports each `(file, line, text)` as `file:line:...text`.
fn assert_check_fails(case: &str, expected: &[(&str, usize, &str)]) {
    let (roles, templates) = case_dirs(case);
    let out = run(&["check"], &roles, &templates);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{case}: {stderr}");
    for (file, line, text) in expected {
        let found = stderr
            .lines()
            .any(|l| l.contains(&format!("/{file}:{line}:")) && l.contains(text));
        assert!(
            found,
            "{case}: expected {file}:{line}: ...{text}... in\n{stderr}"
        );
    }
}

#[test]
fn unknown_key() {
    assert_check_fails(
        "unknown-key",
        &[("bad.yaml", 5, "unknown field `restart_policy`")],
    );
}

#[test]
fn wrong_type() {
    assert_check_fails("wrong-type", &[("bad.yaml", 4, "invalid type: string")]);
}

#[test]
fn missing_template() {
    assert_check_fails(
        "missing-template",
        &[("bad.yaml", 3, "\"spark/nope.sh\" not found")],
    );
}

#[test]
fn after_names_an_unknown_service() {
    assert_check_fails(
        "after-unknown",
        &[("bad.yaml", 5, "`after` names \"ghost\"")],
    );
}

#[test]
fn dependency_cycle() {
    assert_check_fails("cycle", &[("bad.yaml", 5, "dependency cycle: a -> b -> a")]);
}

#[test]
fn unknown_signal() {
    assert_check_fails(
        "unknown-signal",
        &[("bad.yaml", 5, "unknown signal name \"TERMINATE\"")],
    );
}

#[test]
fn unknown_capability() {
    assert_check_fails(
        "unknown-capability",
        &[("bad.yaml", 5, "unknown capability \"NET_BIND\"")],
    );
}

#[test]
fn template_syntax_error() {
    assert_check_fails(
        "template-syntax",
        &[("broken.conf", 3, "template syntax error")],
    );
}

#[test]
fn undefined_variables_in_templates_and_services() {
    assert_check_fails(
        "undefined-variable",
        &[
            (
                "undefined.sh",
                3,
                "undefined variable `spark.no_such_setting`",
            ),
            ("bad.yaml", 7, "undefined variable `spark.missing_too`"),
        ],
    );
}

#[test]
fn include_cycle() {
    assert_check_fails(
        "include-cycle",
        &[("bad.yaml", 2, "include cycle: other -> bad -> other")],
    );
}

#[test]
fn missing_include() {
    assert_check_fails(
        "missing-include",
        &[("bad.yaml", 2, "included role \"ghost\" not found")],
    );
}

#[test]
fn redefining_an_included_service() {
    assert_check_fails(
        "duplicate-service",
        &[("bad.yaml", 4, "change it with `adjust:`")],
    );
}

#[test]
fn adjusting_an_unknown_service() {
    assert_check_fails(
        "adjust-unknown",
        &[("bad.yaml", 4, "`adjust` names \"other\"")],
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    assert_check_fails(
        "many-problems",
        &[
            ("bad.yaml", 5, "`after` names \"ghost\""),
            ("bad.yaml", 6, "unknown capability \"CAP_MAGIC\""),
            ("bad.yaml", 9, "unknown signal name \"SIGNOPE\""),
            ("bad.yaml", 10, "set exactly one of"),
        ],
    );
}

#[test]
fn render_of_a_broken_role_writes_nothing() {
    let (roles, templates) = case_dirs("undefined-variable");
    let out_dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "render",
            "--role",
            "bad",
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
        &roles,
        &templates,
    );
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
}

#[test]
fn an_unknown_role_is_a_config_error() {
    let repo = common::repo();
    let out = run(
        &["check", "--role", "nope"],
        &repo.join("roles"),
        &repo.join("templates"),
    );
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no role \"nope\"") && stderr.contains("all-in-one"),
        "{stderr}"
    );
}

#[test]
fn built_in_roles_pass_check() {
    let repo = common::repo();
    let out = run(&["check"], &repo.join("roles"), &repo.join("templates"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Every role file in the directory (other branches add roles too).
    let roles = std::fs::read_dir(repo.join("roles"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();
    assert!(stdout.contains(&format!("{roles} role(s)")), "{stdout}");
}

#[test]
fn templates_cannot_reach_outside_their_directory() {
    assert_check_fails(
        "template-outside",
        &[(
            "escape.conf",
            2,
            "includes \"../../templates-ok/good.sh\", which is not a template",
        )],
    );
    assert_check_fails(
        "template-dotdot",
        &[(
            "bad.yaml",
            3,
            "must be a relative path under the templates directory",
        )],
    );
    let (roles, templates) = case_dirs("template-symlink");
    let out = run(&["check"], &roles, &templates);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("passwd.conf: points outside the templates directory"),
        "{stderr}"
    );
}

#[test]
fn check_validates_the_injected_config_of_a_node_with_a_role() {
    let repo = common::repo();
    let out = Command::new(common::bin())
        .arg("check")
        .env("SPARKVISOR_ROLES", repo.join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo.join("templates"))
        .env("SPARK_MODE", "worker")
        .env("SPARK_WORKER_CORES", "1.5")
        .env_remove("SPARKVISOR_ROLE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("env SPARK_WORKER_CORES"), "{stderr}");
}

#[test]
fn wait_for_without_a_port() {
    assert_check_fails(
        "wait-for-bad",
        &[("bad.yaml", 5, "is not host:port[,host:port...] (no port)")],
    );
}

/// Nested unclosed calls make tera's parser backtrack exponentially (a fuzzer finding: each level
/// costs four times more, 30 levels would hold PID 1 for years); the parse is cut off by a step
/// budget and the file is named.
#[test]
fn template_parse_bombs_are_refused() {
    let (roles, templates) = case_dirs("parse-bomb");
    let out = run(&["check"], &roles, &templates);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("/bomb.conf: template too complex to parse"),
        "{stderr}"
    );
    assert_check_fails(
        "parse-bomb-string",
        &[("bad.yaml", 9, "template too complex to parse")],
    );
}
