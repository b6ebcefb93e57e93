#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Resource detection over fixture cgroup trees (v2, v1, hybrid, garbage), the sizing policy, and a
//! real cgroup v1 hierarchy on this machine (as root).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, is_root, require};
use sparkvisor::config::model::NodeIdentity;
use sparkvisor::config::{ResolvedConfig, Source, Sourced};
use sparkvisor::resources::{detect_from, size, HostFacts, Resources};

const GIB: u64 = 1024 * 1024 * 1024;

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/cgroups").join(name)
}

fn host() -> HostFacts {
    HostFacts {
        host_cpus: 8,
        affinity_cpus: 8,
        host_memory: 16 * GIB,
    }
}

/// A resolved config with only a role and the given settings (what `size` reads).
fn config(role: &str, settings: &[(&str, &str)]) -> ResolvedConfig {
    let s = |v: &str| Sourced::new(v.to_string(), Source::Default);
    ResolvedConfig {
        role: s(role),
        node: NodeIdentity {
            hostname: s("h"),
            fqdn: s("h"),
        },
        peers: BTreeMap::new(),
        settings: settings
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Sourced::new(
                        v.to_string(),
                        Source::Env {
                            name: format!("TEST_{k}"),
                        },
                    ),
                )
            })
            .collect(),
        spark_conf: BTreeMap::new(),
        secrets: BTreeMap::new(),
    }
}

struct Case {
    fixture: &'static str,
    proc_self_cgroup: &'static str,
    cgroup: &'static str,
    quota: Option<f64>,
    visible: u32,
    memory: Option<u64>,
    warnings: usize,
    worker_cores: u32,
}

#[test]
fn fixture_trees_table() {
    let cases = [
        // Requests without limits (cpu.weight set, cpu.max max): the visible CPUs, never the weight.
        Case {
            fixture: "v2-unlimited",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: None,
            visible: 8,
            memory: None,
            warnings: 0,
            worker_cores: 8,
        },
        Case {
            fixture: "v2-quota",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: Some(1.5),
            visible: 8,
            memory: Some(2 * GIB),
            warnings: 0,
            worker_cores: 2,
        },
        // The pod's limit sits on the parent; the container's own cgroup is looser.
        Case {
            fixture: "v2-nested",
            proc_self_cgroup: "0::/kubepods/pod1/ctr\n",
            cgroup: "v2",
            quota: Some(1.0),
            visible: 8,
            memory: Some(GIB),
            warnings: 0,
            worker_cores: 1,
        },
        // With a cgroup namespace the process sees itself at the root of the mount.
        Case {
            fixture: "v2-nested",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: None,
            visible: 8,
            memory: None,
            warnings: 0,
            worker_cores: 8,
        },
        Case {
            fixture: "v2-cpuset",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: None,
            visible: 2,
            memory: None,
            warnings: 0,
            worker_cores: 2,
        },
        Case {
            fixture: "v2-quota-above-cpuset",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: Some(4.0),
            visible: 1,
            memory: None,
            warnings: 0,
            worker_cores: 1,
        },
        Case {
            fixture: "v2-garbage",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: None,
            visible: 8,
            memory: None,
            warnings: 3,
            worker_cores: 8,
        },
        Case {
            fixture: "v2-huge",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: None,
            visible: 8,
            memory: None,
            warnings: 2,
            worker_cores: 8,
        },
        Case {
            fixture: "v2-empty",
            proc_self_cgroup: "0::/\n",
            cgroup: "v2",
            quota: None,
            visible: 8,
            memory: None,
            warnings: 2,
            worker_cores: 8,
        },
        Case {
            fixture: "v1-unlimited",
            proc_self_cgroup: "4:memory:/\n3:cpuset:/\n2:cpu,cpuacct:/\n",
            cgroup: "v1",
            quota: None,
            visible: 4,
            memory: None,
            warnings: 0,
            worker_cores: 4,
        },
        Case {
            fixture: "v1-quota",
            proc_self_cgroup: "4:memory:/\n3:cpuset:/\n2:cpu,cpuacct:/\n",
            cgroup: "v1",
            quota: Some(1.5),
            visible: 4,
            memory: Some(2 * GIB),
            warnings: 0,
            worker_cores: 2,
        },
    ];
    for case in &cases {
        let root = fixture(case.fixture);
        let r = detect_from(Some(&root), case.proc_self_cgroup, "", host());
        let name = format!("{} ({})", case.fixture, case.proc_self_cgroup.trim());
        assert_eq!(r.cgroup, case.cgroup, "{name}: {r:#?}");
        assert_eq!(r.cpu_quota, case.quota, "{name}: {r:#?}");
        assert_eq!(r.visible_cpus, case.visible, "{name}: {r:#?}");
        assert_eq!(r.memory_limit, case.memory, "{name}: {r:#?}");
        let warnings = r
            .sources
            .iter()
            .filter(|s| s.starts_with("warning: "))
            .count();
        assert_eq!(warnings, case.warnings, "{name}: {r:#?}");
        let sizing = size(&r, &config("worker", &[])).unwrap();
        assert_eq!(
            sizing.worker_cores.value, case.worker_cores,
            "{name}: {sizing:#?}"
        );
        // Memory is never overcommitted: daemon + overhead + worker fit in the container.
        let memory_mb = r.memory_limit.unwrap_or(16 * GIB) / (1024 * 1024);
        assert_eq!(
            sizing.worker_memory_mb.value
                + sizing.daemon_memory_mb.value
                + sizing.overhead_mb.value,
            memory_mb,
            "{name}: {sizing:#?}"
        );
    }
}

#[test]
fn limit_sources_name_the_files() {
    let root = fixture("v2-nested");
    let r = detect_from(Some(&root), "0::/kubepods/pod1/ctr\n", "", host());
    let joined = r.sources.join("\n");
    assert!(
        joined.contains(&format!("{}/kubepods/pod1/cpu.max", root.display())),
        "{joined}"
    );
    assert!(
        joined.contains(&format!("{}/kubepods/pod1/memory.max", root.display())),
        "{joined}"
    );
    // A limit at or above the host's memory limits nothing.
    let small_host = HostFacts {
        host_memory: GIB,
        ..host()
    };
    let r = detect_from(Some(&fixture("v2-quota")), "0::/\n", "", small_host);
    assert_eq!(r.memory_limit, None);
    assert!(
        r.sources
            .iter()
            .any(|s| s.contains("not below host memory")),
        "{:#?}",
        r.sources
    );
    let r = detect_from(Some(&fixture("v2-garbage")), "0::/\n", "", host());
    let joined = r.sources.join("\n");
    assert!(joined.contains("cpu.max = \"banana\""), "{joined}");
    assert!(joined.contains("memory.max = \"-5\""), "{joined}");
}

/// Hybrid host found through mountinfo: v1 cpu/memory hierarchies plus an empty v2 tree; the process
/// sits in /docker/abc and the host mounts the whole hierarchy (no cgroup namespace).
#[test]
fn hybrid_through_mountinfo() {
    let fx = fixture("hybrid");
    let mountinfo = format!(
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
         32 31 0:29 / {fx}/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct\n\
         35 31 0:32 / {fx}/memory rw,relatime - cgroup cgroup rw,memory\n\
         41 31 0:38 / {fx}/unified rw,relatime - cgroup2 cgroup2 rw\n",
        fx = fx.display()
    );
    let proc_self_cgroup = "5:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
    let r = detect_from(None, proc_self_cgroup, &mountinfo, host());
    assert_eq!(r.cgroup, "hybrid");
    assert_eq!(r.cpu_quota, Some(0.5));
    assert_eq!(r.memory_limit, Some(512 * 1024 * 1024));
    let sizing = size(&r, &config("master", &[])).unwrap();
    assert_eq!(sizing.cpus.value, 1, "0.5 CPU rounds up, never 0");
    assert_eq!(sizing.worker_cores.value, 1);

    // Docker without a cgroup namespace mounts only the container's own cgroup (root /docker/abc).
    let mountinfo = format!(
        "32 31 0:29 /docker/abc {fx}/cpu/docker/abc rw - cgroup cgroup rw,cpu,cpuacct\n\
         35 31 0:32 /docker/abc {fx}/memory/docker/abc rw - cgroup cgroup rw,memory\n",
        fx = fx.display()
    );
    let r = detect_from(None, proc_self_cgroup, &mountinfo, host());
    assert_eq!(r.cgroup, "v1");
    assert_eq!(r.cpu_quota, Some(0.5));
    assert_eq!(r.memory_limit, Some(512 * 1024 * 1024));

    // No cgroup mounts at all: host figures.
    let r = detect_from(None, "", "12 1 0:1 / / rw - ext4 /dev/sda rw\n", host());
    assert_eq!(r.cgroup, "none");
    assert_eq!(
        (r.cpu_quota, r.memory_limit, r.visible_cpus),
        (None, None, 8)
    );
}

fn resources(quota: Option<f64>, visible: u32, memory_mib: Option<u64>) -> Resources {
    let mut r = detect_from(None, "", "", host());
    r.cpu_quota = quota;
    r.visible_cpus = visible;
    r.memory_limit = memory_mib.map(|m| m * 1024 * 1024);
    r
}

#[test]
fn sizing_policy_worked_example() {
    // README worked example: --cpus 1.5 --memory 2g on a 2-CPU host.
    let s = size(&resources(Some(1.5), 2, Some(2048)), &config("worker", &[])).unwrap();
    assert_eq!(s.cpus.value, 2);
    assert_eq!(s.worker_cores.value, 2);
    assert_eq!(s.daemon_memory_mb.value, 256);
    assert_eq!(s.overhead_mb.value, 384);
    assert_eq!(s.worker_memory_mb.value, 1408);
    assert!(matches!(s.worker_memory_mb.source, Source::Derived { .. }));

    // 16 GiB: daemon heap capped at 1024, reserve 10 %.
    let s = size(&resources(None, 8, Some(16384)), &config("worker", &[])).unwrap();
    assert_eq!(s.daemon_memory_mb.value, 1024);
    assert_eq!(s.overhead_mb.value, 1638);
    assert_eq!(s.worker_memory_mb.value, 16384 - 1024 - 1638);
}

#[test]
fn sizing_overcommit_and_explicit_values() {
    let r = resources(Some(1.5), 2, Some(2048));
    let s = size(
        &r,
        &config("worker", &[("sizing_policy.cpu_overcommit", "2")]),
    )
    .unwrap();
    assert_eq!(s.cpus.value, 2, "the JVMs see the real CPUs");
    assert_eq!(
        s.worker_cores.value, 4,
        "overcommit may exceed the visible CPUs"
    );
    let s = size(
        &r,
        &config("worker", &[("sizing_policy.cpu_overcommit", "0.5")]),
    )
    .unwrap();
    assert_eq!(s.worker_cores.value, 1);
    let s = size(
        &resources(Some(0.1), 2, None),
        &config("worker", &[("sizing_policy.cpu_overcommit", "0.1")]),
    )
    .unwrap();
    assert_eq!(s.worker_cores.value, 1, "never 0");

    let s = size(
        &r,
        &config(
            "worker",
            &[
                ("spark.worker_cores", "1"),
                ("spark.worker_memory", "512m"),
                ("spark.daemon_memory", "1g"),
            ],
        ),
    )
    .unwrap();
    assert_eq!(s.worker_cores.value, 1);
    assert_eq!(s.worker_memory_mb.value, 512);
    assert_eq!(s.daemon_memory_mb.value, 1024);
    assert_eq!(
        s.worker_cores.source,
        Source::Env {
            name: "TEST_spark.worker_cores".into()
        }
    );
    // An explicit daemon heap shrinks the derived worker memory.
    let s = size(&r, &config("worker", &[("spark.daemon_memory", "1g")])).unwrap();
    assert_eq!(s.worker_memory_mb.value, 2048 - 1024 - 384);
    // An explicit worker memory that cannot fit is kept, with a note.
    let s = size(&r, &config("worker", &[("spark.worker_memory", "4g")])).unwrap();
    assert_eq!(s.worker_memory_mb.value, 4096);
    assert_eq!(s.notes.len(), 1, "{s:#?}");
}

#[test]
fn sizing_too_small_and_bad_knobs() {
    let r = resources(None, 2, Some(256));
    let err = size(&r, &config("worker", &[])).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "container memory 256 MiB is too small for a Spark worker: need at least 768 MiB"
        ),
        "{text}"
    );
    // 768 MiB is exactly enough.
    let s = size(&resources(None, 2, Some(768)), &config("worker", &[])).unwrap();
    assert_eq!(s.worker_memory_mb.value, 256);
    // A master in a small container is fine (the worker figure is unused there), with a note.
    let s = size(&r, &config("master", &[])).unwrap();
    assert_eq!(s.daemon_memory_mb.value, 128);
    assert!(!s.notes.is_empty());
    assert!(size(
        &r,
        &config("master", &[("sizing_policy.require_worker_memory", "yes")])
    )
    .is_err());

    let err = size(
        &resources(None, 2, Some(4096)),
        &config(
            "worker",
            &[
                ("sizing_policy.cpu_overcommit", "-1"),
                ("sizing_policy.overhead_percent", "80"),
                ("spark.worker_cores", "1.5"),
            ],
        ),
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 3, "{err}");
    assert!(
        err.to_string()
            .contains("env TEST_spark.worker_cores: spark.worker_cores"),
        "{err}"
    );
}

fn inspect_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "inspect failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn clean_command() -> Command {
    clean_env(Command::new(bin()))
}

/// A command with only the environment the tests choose (no configmeta, a fixed identity).
fn clean_env(mut cmd: Command) -> Command {
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SPARKVISOR_CONFIGMETA", "")
        .env("SPARKVISOR_HOSTNAME", "node1")
        .env("SPARKVISOR_FQDN", "node1.example.org")
        .env("SPARKVISOR_ROLES", common::repo().join("roles"));
    cmd
}

/// `SPARKVISOR_CGROUP_ROOT` makes the binary read a fixture tree.
#[test]
fn inspect_reads_cgroup_root() {
    let v = inspect_json(
        clean_command()
            .env("SPARKVISOR_CGROUP_ROOT", fixture("v2-quota"))
            .args(["inspect", "--json", "--role", "worker"]),
    );
    assert_eq!(v["resources"]["cgroup"], "v2");
    assert_eq!(v["resources"]["cpu_quota"], 1.5);
    assert_eq!(v["resources"]["memory_limit"], 2 * GIB);
    assert_eq!(v["sizing"]["worker_memory_mb"]["value"], 1408);
    let visible = v["resources"]["visible_cpus"].as_u64().unwrap();
    assert_eq!(v["sizing"]["worker_cores"]["value"], visible.min(2));

    let out = clean_command()
        .env("SPARKVISOR_CGROUP_ROOT", fixture("v2-small"))
        .args(["inspect", "--role", "worker"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("too small for a Spark worker: need at least 768 MiB"),
        "{stderr}"
    );
}

/// Removes the test's cgroups even when an assertion fails.
struct CgroupGuard(Vec<PathBuf>);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn skip_or_fail(reason: &str) {
    require(false, reason);
}

/// Real cgroup v1 on this machine: a 1.5-CPU quota and a 2 GiB limit, `inspect --json` inside.
#[test]
fn real_cgroup_v1_quota_and_limit() {
    let cpu_root = Path::new("/sys/fs/cgroup/cpu");
    let memory_root = Path::new("/sys/fs/cgroup/memory");
    if !is_root() {
        return skip_or_fail("needs root to create cgroups");
    }
    if !cpu_root.join("cpu.cfs_quota_us").is_file()
        || !memory_root.join("memory.limit_in_bytes").is_file()
    {
        return skip_or_fail(
            "needs cgroup v1 cpu and memory hierarchies at /sys/fs/cgroup/{cpu,memory}",
        );
    }
    let name = format!(
        "sparkvisor-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let cpu = cpu_root.join(&name);
    let memory = memory_root.join(&name);
    std::fs::create_dir(&cpu).unwrap();
    let _guard = CgroupGuard(vec![cpu.clone(), memory.clone()]);
    std::fs::create_dir(&memory).unwrap();
    std::fs::write(cpu.join("cpu.cfs_period_us"), "100000").unwrap();
    std::fs::write(cpu.join("cpu.cfs_quota_us"), "150000").unwrap();
    std::fs::write(memory.join("memory.limit_in_bytes"), (2 * GIB).to_string()).unwrap();

    let script = format!(
        "echo $$ > {}/cgroup.procs && echo $$ > {}/cgroup.procs && exec \"$0\" inspect --json --role worker",
        cpu.display(),
        memory.display()
    );
    let v = inspect_json(clean_env(Command::new("/bin/sh")).args(["-c", &script, bin()]));
    assert_eq!(v["resources"]["cpu_quota"], 1.5, "{v:#}");
    assert_eq!(v["resources"]["memory_limit"], 2 * GIB, "{v:#}");
    let visible = v["resources"]["visible_cpus"].as_u64().unwrap();
    assert_eq!(v["sizing"]["cpus"]["value"], visible.min(2));
    assert_eq!(v["sizing"]["worker_cores"]["value"], visible.min(2));
    assert_eq!(v["sizing"]["daemon_memory_mb"]["value"], 256);
    assert_eq!(v["sizing"]["worker_memory_mb"]["value"], 1408);
    let sources = v["resources"]["sources"].to_string();
    assert!(
        sources.contains(&format!("{}/cpu.cfs_quota_us", cpu.display())),
        "{sources}"
    );
    assert!(
        sources.contains(&format!("{}/memory.limit_in_bytes", memory.display())),
        "{sources}"
    );
}
