#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every kind of bad injected input makes `sparkvisor inspect` exit 78 with `file:line:column`
//! (or the variable's name) and the reason, never a panic; several problems are listed together.

use crate::common;

use common::TempDir;
use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.env_clear()
        .env("SPARKVISOR_CONFIGMETA", "")
        .env(
            "SPARKVISOR_CGROUP_ROOT",
            common::repo().join("tests/fixtures/cgroups/v2-quota"),
        )
        .current_dir(dir)
        .arg("inspect")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v.replace("{dir}", &dir.display().to_string()));
    }
    cmd.output().unwrap()
}

struct Case {
    name: &'static str,
    file: Option<(&'static str, &'static str)>,
    env: &'static [(&'static str, &'static str)],
    /// Expected lines in stderr; `{dir}` is the case's directory.
    expect: &'static [&'static str],
}

const CLUSTER: &[(&str, &str)] = &[("SPARKVISOR_CONFIG", "{dir}/cluster")];
const META: &[(&str, &str)] = &[("SPARKVISOR_CONFIGMETA", "{dir}/cluster")];

#[test]
fn bad_inputs_exit_78_with_positions() {
    let cases = [
        Case { name: "malformed yaml", file: Some(("cluster", "role: [worker\n")), env: CLUSTER,
            expect: &["{dir}/cluster:1:7: role: invalid type: sequence, expected a string"] },
        Case { name: "unknown key", file: Some(("cluster", "role: worker\nrol: x\n")), env: CLUSTER,
            expect: &["{dir}/cluster:2:1: unknown field `rol`"] },
        Case { name: "wrong type", file: Some(("cluster", "peers:\n  master: 5\n")), env: CLUSTER,
            expect: &["{dir}/cluster:2:11: peers.master: invalid type: integer `5`, expected a sequence"] },
        Case { name: "malformed json", file: Some(("cluster", "{\"role\": }")), env: CLUSTER,
            expect: &["{dir}/cluster:1:10: expected value"] },
        Case { name: "unknown key json", file: Some(("cluster", "{\"role\": \"worker\",\n  \"setings\": {}}")), env: CLUSTER,
            expect: &["{dir}/cluster:2:"] },
        Case { name: "tab in yaml", file: Some(("cluster", "\t- x: [\n")), env: CLUSTER,
            expect: &["{dir}/cluster:1:1: found character that cannot start any token"] },
        Case { name: "bad values in file", file: Some(("cluster", "settings:\n  spark.worker_cores: 1.5\n  spark.worker_memory: 1000\n")), env: CLUSTER,
            expect: &[
                "{dir}/cluster:2:3: spark.worker_cores: invalid core count \"1.5\"",
                "{dir}/cluster:3:3: spark.worker_memory: invalid memory size \"1000\": add a unit",
            ] },
        Case { name: "reserved setting", file: Some(("cluster", "settings:\n  sizing:\n    cpus: 2\n")), env: CLUSTER,
            expect: &["setting \"sizing.cpus\" uses the reserved name \"sizing\""] },
        Case { name: "garbage role in file", file: Some(("cluster", "role: \"$(reboot)\"\n")), env: CLUSTER,
            expect: &["{dir}/cluster:1:1: invalid role name \"$(reboot)\""] },
        Case { name: "unreadable _FILE", file: None, env: &[("SPARKVISOR_ROLE_FILE", "{dir}/absent")],
            expect: &["{dir}/absent: cannot read the file named by SPARKVISOR_ROLE_FILE"] },
        Case { name: "empty role", file: Some(("cluster", "\n")), env: &[("SPARKVISOR_ROLE_FILE", "{dir}/cluster")],
            expect: &["{dir}/cluster: the role is empty"] },
        Case { name: "bad host in peers", file: Some(("cluster", "role: worker\npeers:\n  master: [\"m1 ; rm -rf /\"]\n")), env: CLUSTER,
            expect: &["{dir}/cluster:3:3: peers.master: invalid host name \"m1 ; rm -rf /\""] },
        Case { name: "configmeta malformed", file: Some(("cluster", "{\"node\": {\"role_id\": 5}}")), env: META,
            expect: &["{dir}/cluster:1:22: invalid type: integer `5`, expected a string"] },
        Case { name: "configmeta wrong fqdns", file: Some(("cluster", "{\"node\": {\"role_id\": \"spark-worker\"},\n \"nodegroups\": {\"1\": {\"roles\": {\"x\": {\"fqdns\": \"a\"}}}}}")), env: META,
            expect: &["{dir}/cluster:2:50: invalid type: string \"a\", expected a sequence"] },
        Case { name: "configmeta never appears", file: None,
            env: &[("SPARKVISOR_CONFIGMETA", "{dir}/never.json"), ("SPARKVISOR_CONFIGMETA_WAIT", "100ms"), ("SPARK_MODE", "worker")],
            expect: &["{dir}/never.json: configmeta.json did not appear within"] },
        Case { name: "unreadable cluster file", file: None, env: &[("SPARKVISOR_CONFIG", "{dir}/missing.yaml")],
            expect: &["{dir}/missing.yaml: cannot read the cluster file"] },
        Case { name: "settings env", file: None, env: &[("SPARK_MODE", "worker"), ("SPARKVISOR_SETTINGS", "a: 1\nb: [x\n")],
            expect: &["env SPARKVISOR_SETTINGS:2:"] },
        Case { name: "bad cgroup root", file: None, env: &[("SPARK_MODE", "worker"), ("SPARKVISOR_CGROUP_ROOT", "{dir}/nope")],
            expect: &["env SPARKVISOR_CGROUP_ROOT: {dir}/nope is not a directory"] },
        Case { name: "no role", file: None, env: &[], expect: &["config: no role"] },
        // Every environment problem at once.
        Case {
            name: "many env problems",
            file: None,
            env: &[
                ("SPARK_MODE", "Master!"),
                ("SPARK_WORKER_MEMORY", "-2g"),
                ("SPARK_WORKER_CORES", "0"),
                ("SPARK_MASTER_URL", "http://m:7077"),
                ("SPARK_MASTER_PORT", "99999"),
                ("SPARK_RPC_AUTHENTICATION_ENABLED", "maybe"),
                ("SPARK_RPC_AUTHENTICATION_SECRET_FILE", "{dir}/nonexistent"),
                ("SPARKVISOR_CPU_OVERCOMMIT", "lots"),
                ("SPARKVISOR_FQDN", "bad fqdn"),
            ],
            expect: &[
                "env SPARK_MODE: invalid role name \"Master!\"",
                "env SPARK_WORKER_MEMORY: spark.worker_memory: invalid memory size \"-2g\"",
                "env SPARK_WORKER_CORES: spark.worker_cores: invalid core count \"0\"",
                "env SPARK_MASTER_URL: spark.master_url: invalid master URL",
                "env SPARK_MASTER_PORT: spark.master_port: invalid port \"99999\"",
                "env SPARK_RPC_AUTHENTICATION_ENABLED: invalid boolean \"maybe\"",
                "{dir}/nonexistent: cannot read the file named by SPARK_RPC_AUTHENTICATION_SECRET_FILE",
                "env SPARKVISOR_CPU_OVERCOMMIT: sizing_policy.cpu_overcommit: invalid factor \"lots\"",
                "env SPARKVISOR_FQDN: invalid host name \"bad fqdn\"",
            ],
        },
    ];
    for case in &cases {
        let tmp = TempDir::new("case");
        if let Some((name, text)) = case.file {
            std::fs::write(tmp.0.join(name), text).unwrap();
        }
        let out = run(&tmp.0, case.env, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{}: {stderr}", case.name);
        assert!(!stderr.contains("panicked"), "{}: {stderr}", case.name);
        assert!(out.stdout.is_empty(), "{}: nothing on stdout", case.name);
        for expected in case.expect {
            let expected = expected.replace("{dir}", &tmp.0.display().to_string());
            assert!(
                stderr
                    .lines()
                    .any(|l| l.starts_with(&expected) || l.contains(&expected)),
                "{}: expected {expected:?} in:\n{stderr}",
                case.name
            );
        }
    }
}

#[test]
fn each_problem_listed_once() {
    let tmp = TempDir::new("dedupe");
    std::fs::write(tmp.0.join("cluster"), "role: worker\nbogus: 1\n").unwrap();
    let out = run(&tmp.0, CLUSTER, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        stderr.matches("unknown field `bogus`").count(),
        1,
        "{stderr}"
    );
}

/// Odd bytes and huge values in env never panic.
#[test]
fn hostile_values_do_not_panic() {
    let tmp = TempDir::new("hostile");
    for value in [
        "\u{0}",
        "99999999999999999999999999g",
        "\n\n",
        "spark://:",
        "🙂",
        "-",
        "1e309",
    ] {
        for var in [
            "SPARK_WORKER_MEMORY",
            "SPARK_WORKER_CORES",
            "SPARK_MASTER_URL",
            "SPARKVISOR_SETTINGS",
            "SPARKVISOR_PEERS",
            "SPARKVISOR_CPU_OVERCOMMIT",
        ] {
            if value.contains('\u{0}') {
                continue; // cannot be passed through the environment
            }
            let out = run(&tmp.0, &[("SPARK_MODE", "worker"), (var, value)], &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{var}={value:?}: {stderr}");
            assert!(
                matches!(out.status.code(), Some(0 | 78)),
                "{var}={value:?}: {stderr}"
            );
        }
    }
}
