#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Golden files: every built-in role rendered against fixed inputs (the sample config, resources and
//! sizing from `render::context`). `UPDATE_GOLDEN=1 cargo test --test config render_golden::` rewrites them.

use crate::common;

use common::repo;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sparkvisor::config::role::{list_role_names, load_role};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, render_role};

/// Everything one role produces, as (golden file name, contents).
fn outputs(role_name: &str) -> Vec<(String, String)> {
    let role = load_role(&repo().join("roles"), role_name).unwrap();
    let config = sample_config(&role);
    let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
    let files = render_role(&role, &ctx, &repo().join("templates")).unwrap();
    let services = expand_services(&role, &ctx).unwrap();
    let mut index = String::new();
    let mut out = Vec::new();
    for f in &files {
        writeln!(
            index,
            "{} mode={:04o} owner={} secret={} template={}",
            f.path.display(),
            f.mode,
            f.owner.as_deref().unwrap_or("-"),
            f.secret,
            f.template
        )
        .unwrap();
        out.push((format!("files{}", f.path.display()), f.contents.clone()));
    }
    out.push(("files.txt".into(), index));
    out.push((
        "services.json".into(),
        serde_json::to_string_pretty(&services).unwrap() + "\n",
    ));
    out
}

#[test]
fn built_in_roles_match_golden_files() {
    let names = list_role_names(&repo().join("roles")).unwrap();
    for expected in [
        "master",
        "worker",
        "history-server",
        "notebook",
        "zeppelin",
        "all-in-one",
        "connect",
        "thriftserver",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "built-in role {expected} missing"
        );
    }
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut mismatches = Vec::new();
    for name in &names {
        let dir = repo().join("tests/golden").join(name);
        if update {
            let _ = std::fs::remove_dir_all(&dir);
        }
        for (file, contents) in outputs(name) {
            let path: PathBuf = dir.join(&file);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &contents).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(golden) if golden == contents => {}
                Ok(golden) => mismatches.push(format!(
                    "{}: differs\n--- golden\n{golden}\n--- rendered\n{contents}",
                    path.display()
                )),
                Err(e) => mismatches.push(format!("{}: {e}", path.display())),
            }
        }
        if !update {
            // No stale golden files either.
            let mut on_disk = Vec::new();
            walk(&dir, &mut on_disk);
            let produced: Vec<PathBuf> = outputs(name)
                .into_iter()
                .map(|(f, _)| dir.join(f))
                .collect();
            for p in on_disk {
                if !produced.contains(&p) {
                    mismatches.push(format!("{}: stale golden file", p.display()));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn built_in_roles_are_wired_as_documented() {
    let roles = repo().join("roles");
    let aio = load_role(&roles, "all-in-one").unwrap();
    let services: Vec<&str> = aio.def.services.keys().map(String::as_str).collect();
    assert_eq!(services, ["spark-master", "spark-notebook", "spark-worker"]);
    assert_eq!(aio.def.services["spark-worker"].after, ["spark-master"]);
    assert!(!aio.def.services["spark-notebook"].critical);
    // The included roles' render entries appear once each.
    let templates: Vec<&str> = aio.def.render.iter().map(|r| r.template.as_str()).collect();
    assert_eq!(
        templates,
        [
            "spark/spark-env.sh",
            "spark/spark-defaults.conf",
            "spark/log4j2.properties",
            "jupyter/jupyter_server_config.json",
            "jupyter/kernel.json"
        ]
    );
    let worker = load_role(&roles, "worker").unwrap();
    assert_eq!(worker.def.services["spark-worker"].forward_signals, ["PWR"]);
    let master = load_role(&roles, "master").unwrap();
    let probe = master.def.services["spark-master"].ready.clone().unwrap();
    // Ready as the active master or as a standby (HA, docs/ha.md); never while recovering.
    let status = &probe.json.unwrap()["status"];
    assert!(
        status.accepts("ALIVE") && status.accepts("STANDBY"),
        "{status}"
    );
    assert!(!status.accepts("RECOVERING"), "{status}");
    for role in [&aio, &worker, &master] {
        for s in role.def.services.values() {
            assert!(s.capabilities.is_empty());
            assert_eq!(s.user.as_deref(), Some("{{ spark.user }}"));
        }
    }
    // Zeppelin must not take the master UI's port when co-located.
    let zeppelin = load_role(&roles, "zeppelin").unwrap();
    assert_ne!(zeppelin.def.defaults["zeppelin.port"], "8080");
}
