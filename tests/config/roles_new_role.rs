#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! An image author adds a tool role (a YAML file and a template) in a directory of their own and
//! renders it with the installed binary: no recompiling.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const ROLE: &str = r#"description: A tool the image author added
include: [master]
defaults:
  tool.port: "9999"
  tool.conf_dir: "/etc/tool"
render:
  - template: tool/tool.properties
    to: "{{ tool.conf_dir }}/tool.properties"
  - template: tool/token.json
    to: "{{ tool.conf_dir }}/token.json"
    secret: true
services:
  tool:
    command: ["/usr/bin/env", "tool", "--port", "{{ tool.port }}", "--master", "{{ spark.master_url }}"]
    user: "{{ spark.user }}"
    after: [spark-master]
    ready: { tcp: "127.0.0.1:{{ tool.port }}" }
"#;

#[test]
fn a_new_role_renders_from_its_own_directory() {
    let repo = common::repo();
    let dir = tempfile::tempdir().unwrap();
    let roles = dir.path().join("roles");
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&roles).unwrap();
    // The built-in roles and templates, as the image ships them, plus the new ones.
    for entry in std::fs::read_dir(repo.join("roles")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, roles.join(p.file_name().unwrap())).unwrap();
    }
    copy_tree(&repo.join("templates"), &templates);
    std::fs::write(roles.join("tool.yaml"), ROLE).unwrap();
    std::fs::create_dir_all(templates.join("tool")).unwrap();
    std::fs::write(
        templates.join("tool/tool.properties"),
        "tool.port = {{ tool.port }}\ntool.master = {{ spark.master_url }}\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("tool/token.json"),
        "{ \"master\": {{ spark.master_url }} }\n",
    )
    .unwrap();

    let sparkvisor = |args: &[&str]| {
        Command::new(common::bin())
            .args(args)
            .env("SPARKVISOR_ROLES", &roles)
            .env("SPARKVISOR_TEMPLATES", &templates)
            .env("SPARK_MASTER_URL", "spark://m1:7077,m2:7077")
            .env_remove("SPARKVISOR_ROLE")
            .output()
            .unwrap()
    };
    let check = sparkvisor(&["check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The built-in roles (other branches add some) and the new one.
    let roles_count = std::fs::read_dir(&roles).unwrap().count();
    assert!(
        String::from_utf8_lossy(&check.stdout).contains(&format!("{roles_count} role(s)")),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let out = dir.path().join("out");
    let render = sparkvisor(&["render", "--role", "tool", "--out", out.to_str().unwrap()]);
    assert_eq!(
        render.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    let props = std::fs::read_to_string(out.join("etc/tool/tool.properties")).unwrap();
    assert_eq!(
        props,
        "tool.port = 9999\ntool.master = spark\\://m1\\:7077,m2\\:7077\n"
    );
    let token = out.join("etc/tool/token.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&token).unwrap()).unwrap();
    assert_eq!(json["master"], "spark://m1:7077,m2:7077");
    assert_eq!(
        std::fs::metadata(&token).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // The included master role's files came along.
    let env = std::fs::read_to_string(out.join("opt/spark/conf/spark-env.sh")).unwrap();
    assert!(env.contains("SPARK_NO_DAEMONIZE=1"), "{env}");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
