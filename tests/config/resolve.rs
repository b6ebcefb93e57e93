#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Precedence and provenance of the injected runtime config across every source: built-in
//! defaults, role defaults, the cluster file, KubeDirector's configmeta.json, the environment and
//! `<NAME>_FILE` secrets.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;

use common::TempDir;
use sparkvisor::config::runtime::{resolve, resolve_role, Inputs};
use sparkvisor::config::{ResolvedConfig, Source, Sourced};

fn fixture(name: &str) -> String {
    common::repo()
        .join("tests/fixtures/config")
        .join(name)
        .display()
        .to_string()
}

/// An environment with no configmeta.json (a path that does not exist is only an error when it
/// is given explicitly, so point at the default's absence by giving an empty value).
fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [("SPARKVISOR_CONFIGMETA", "")]
        .iter()
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.retain(|_, v| v != "<unset>");
    env
}

fn full(
    pairs: &[(&str, &str)],
    cli_role: Option<&str>,
    role_defaults: &[(&str, &str)],
) -> ResolvedConfig {
    let inputs = Inputs::gather(env(pairs)).unwrap();
    let role = resolve_role(&inputs, cli_role).unwrap();
    let defaults = role_defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    resolve(&inputs, role, "roles/worker.yaml", &defaults).unwrap()
}

fn setting(config: &ResolvedConfig, key: &str) -> Sourced<String> {
    config
        .settings
        .get(key)
        .unwrap_or_else(|| panic!("no setting {key}: {config:#?}"))
        .clone()
}

#[test]
fn cluster_file_yaml_every_key() {
    let file = fixture("cluster.yaml");
    let cfg = full(
        &[
            ("SPARKVISOR_CONFIG", &file),
            ("SPARKVISOR_HOSTNAME", "spark-w1"),
        ],
        None,
        &[],
    );
    let from_file = Source::ClusterFile { file: file.clone() };
    // `nodes:` names this host, which beats `role:`.
    assert_eq!(
        cfg.role,
        Sourced::new("worker".to_string(), from_file.clone())
    );
    assert_eq!(
        setting(&cfg, "spark.worker_cores"),
        Sourced::new("2".into(), from_file.clone())
    );
    assert_eq!(setting(&cfg, "spark.log_dir").value, "/var/log/spark");
    assert_eq!(setting(&cfg, "sizing_policy.cpu_overcommit").value, "1.5");
    assert_eq!(setting(&cfg, "notebook.port").value, "8888");
    assert_eq!(
        setting(&cfg, "spark.master_port"),
        Sourced::new("7077".into(), Source::Default)
    );
    // A worker talks to every master; the first is its master host.
    assert_eq!(
        setting(&cfg, "spark.master_url").value,
        "spark://m1.example.org:7077,m2.example.org:7077"
    );
    assert_eq!(setting(&cfg, "spark.master_host").value, "m1.example.org");
    assert_eq!(
        cfg.peers["master"].value,
        vec!["m1.example.org", "m2.example.org"]
    );
    assert_eq!(cfg.peers["master"].source, from_file);
    assert_eq!(cfg.spark_conf["spark.eventLog.enabled"].value, "true");
    assert_eq!(
        cfg.secrets["spark.authenticate.secret"].expose(),
        "from-cluster-file"
    );
    assert_eq!(cfg.node.hostname.value, "spark-w1");
    assert_eq!(
        cfg.node.fqdn.value, "spark-w1",
        "a new hostname without a domain is its own FQDN"
    );
    assert_eq!(
        cfg.node.hostname.source,
        Source::Env {
            name: "SPARKVISOR_HOSTNAME".into()
        }
    );

    // Another host: `role:` applies, and a master binds its own name.
    let cfg = full(
        &[
            ("SPARKVISOR_CONFIG", &file),
            ("SPARKVISOR_HOSTNAME", "m1"),
            ("SPARKVISOR_FQDN", "m1.example.org"),
        ],
        None,
        &[],
    );
    assert_eq!(cfg.role.value, "master");
    assert_eq!(setting(&cfg, "spark.master_host").value, "m1.example.org");
    assert_eq!(setting(&cfg, "spark.public_dns").value, "m1.example.org");
}

#[test]
fn cluster_file_json() {
    let file = fixture("cluster.json");
    let cfg = full(&[("SPARKVISOR_CONFIG", &file)], None, &[]);
    assert_eq!(cfg.role.value, "worker");
    assert_eq!(
        setting(&cfg, "spark.master_url").value,
        "spark://m1.example.org:7177"
    );
    assert_eq!(cfg.spark_conf["spark.ui.reverseProxy"].value, "true");
}

/// One setting given by every layer; removing the top layer each time reveals the next one.
#[test]
fn setting_precedence_across_all_layers() {
    let tmp = TempDir::new("prec");
    let cluster = tmp.file("cluster.yaml", "settings:\n  spark.worker_cores: 2\n");
    let secret = tmp.file("cores", "5\n");
    let mut layers = vec![
        ("SPARKVISOR_CONFIG", cluster.clone()),
        ("SPARKVISOR_SETTINGS", "{spark.worker_cores: 3}".to_string()),
        ("SPARK_WORKER_CORES", "4".to_string()),
        ("SPARK_WORKER_CORES_FILE", secret.clone()),
    ];
    let expected = [
        (
            "5",
            Source::SecretFile {
                name: "SPARK_WORKER_CORES_FILE".into(),
                file: secret.clone(),
            },
        ),
        (
            "4",
            Source::Env {
                name: "SPARK_WORKER_CORES".into(),
            },
        ),
        (
            "3",
            Source::Env {
                name: "SPARKVISOR_SETTINGS".into(),
            },
        ),
        (
            "2",
            Source::ClusterFile {
                file: cluster.clone(),
            },
        ),
        (
            "1",
            Source::Role {
                file: "roles/worker.yaml".into(),
            },
        ),
    ];
    for (value, source) in expected {
        let pairs: Vec<(&str, &str)> = layers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let cfg = full(&pairs, Some("worker"), &[("spark.worker_cores", "1")]);
        assert_eq!(
            setting(&cfg, "spark.worker_cores"),
            Sourced::new(value.to_string(), source)
        );
        layers.pop();
    }
    // No layer: the setting is absent (sizing derives it).
    let cfg = full(&[], Some("worker"), &[]);
    assert!(!cfg.settings.contains_key("spark.worker_cores"));
    // Empty variables mean "unset" (compose passes them that way).
    let cfg = full(
        &[("SPARK_WORKER_CORES", "")],
        Some("worker"),
        &[("spark.worker_cores", "1")],
    );
    assert_eq!(setting(&cfg, "spark.worker_cores").value, "1");
}

#[test]
fn role_precedence_across_all_sources() {
    let tmp = TempDir::new("role");
    let cluster = tmp.file(
        "cluster.yaml",
        "role: zeppelin\nnodes:\n  me.example.org: notebook\n",
    );
    let role_file = tmp.file("role", "history\n");
    let meta = fixture("configmeta-kubedirector.json");
    let mut layers = vec![
        ("SPARKVISOR_CONFIG", cluster.clone()),
        ("SPARKVISOR_FQDN", "me.example.org".to_string()),
        ("SPARKVISOR_CONFIGMETA", meta.clone()),
        ("SPARK_MODE", "master".to_string()),
        ("SPARKVISOR_ROLE", "shuffle".to_string()),
        ("SPARKVISOR_ROLE_FILE", role_file.clone()),
    ];
    let inputs = |layers: &[(&str, String)]| {
        let pairs: Vec<(&str, &str)> = layers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Inputs::gather(env(&pairs)).unwrap()
    };
    let role = resolve_role(&inputs(&layers), Some("cli-role")).unwrap();
    assert_eq!(role.value, "cli-role");
    assert_eq!(
        role.source,
        Source::Cli {
            flag: "--role".into()
        }
    );
    let expected = [
        (
            "history",
            Source::SecretFile {
                name: "SPARKVISOR_ROLE_FILE".into(),
                file: role_file.clone(),
            },
        ),
        (
            "shuffle",
            Source::Env {
                name: "SPARKVISOR_ROLE".into(),
            },
        ),
        (
            "master",
            Source::Env {
                name: "SPARK_MODE".into(),
            },
        ),
        (
            "worker",
            Source::ConfigMeta {
                file: meta.clone(),
                key: "node.role_id".into(),
            },
        ),
    ];
    for (value, source) in expected {
        assert_eq!(
            resolve_role(&inputs(&layers), None).unwrap(),
            Sourced::new(value.to_string(), source)
        );
        layers.pop();
    }
    // Without configmeta: the cluster file's `nodes:` entry for this FQDN, then its `role:`.
    assert_eq!(
        resolve_role(&inputs(&layers), None).unwrap().value,
        "notebook"
    );
    layers.pop();
    let role = resolve_role(&inputs(&layers), None).unwrap();
    assert_eq!(
        role,
        Sourced::new(
            "zeppelin".to_string(),
            Source::ClusterFile { file: cluster }
        )
    );
    layers.pop();
    let err = resolve_role(&inputs(&layers), None).unwrap_err();
    assert!(err.to_string().contains("no role"), "{err}");
}

#[test]
fn kubedirector_configmeta() {
    let meta = fixture("configmeta-kubedirector.json");
    let cfg = full(&[("SPARKVISOR_CONFIGMETA", &meta)], None, &[]);
    let at = |key: &str| Source::ConfigMeta {
        file: meta.clone(),
        key: key.into(),
    };
    assert_eq!(
        cfg.role,
        Sourced::new("worker".to_string(), at("node.role_id"))
    );
    assert_eq!(cfg.node.hostname.value, "kdss-klmno-1");
    assert_eq!(
        cfg.node.fqdn,
        Sourced::new(
            "kdss-klmno-1.kdhs-fghij.spark.svc.cluster.local".to_string(),
            at("node.fqdn")
        )
    );
    let master = "kdss-abcde-0.kdhs-fghij.spark.svc.cluster.local";
    assert_eq!(
        cfg.peers["master"],
        Sourced::new(
            vec![master.to_string()],
            at("nodegroups.1.roles.spark-master.fqdns")
        )
    );
    assert_eq!(cfg.peers["worker"].value.len(), 2);
    assert!(
        !cfg.peers.contains_key("notebook"),
        "roles without members are no peers"
    );
    assert_eq!(
        setting(&cfg, "spark.master_url").value,
        format!("spark://{master}:7077")
    );
    assert_eq!(setting(&cfg, "spark.master_host").value, master);
    assert_eq!(
        setting(&cfg, "spark.public_dns").value,
        "kdss-klmno-1.kdhs-fghij.spark.svc.cluster.local"
    );
    assert_eq!(
        setting(&cfg, "kubedirector.flavor.cores"),
        Sourced::new(
            "2".into(),
            at("nodegroups.1.roles.spark-worker.flavor.cores")
        )
    );
    assert_eq!(setting(&cfg, "kubedirector.flavor.memory_mb").value, "4096");
    assert_eq!(
        setting(&cfg, "kubedirector.cluster_name").value,
        "spark-prod"
    );
    assert_eq!(
        cfg.secrets["kubedirector.metrics_token"].expose(),
        "t0ps3cret"
    );

    // The environment beats configmeta; the role map is configurable.
    let cfg = full(
        &[
            ("SPARKVISOR_CONFIGMETA", &meta),
            (
                "SPARKVISOR_ROLE_MAP",
                "spark-worker=big-worker, spark-master=head",
            ),
            ("SPARKVISOR_FQDN", "override.example.org"),
            ("SPARKVISOR_PEERS", "{head: [h1.example.org]}"),
        ],
        None,
        &[],
    );
    assert_eq!(cfg.role.value, "big-worker");
    assert_eq!(cfg.node.fqdn.value, "override.example.org");
    assert_eq!(cfg.peers["head"].value, vec!["h1.example.org"]);
    assert_eq!(
        cfg.peers["head"].source,
        Source::Env {
            name: "SPARKVISOR_PEERS".into()
        }
    );
    assert!(cfg.peers.contains_key("big-worker"));
}

#[test]
fn configmeta_wait_sees_a_late_file_and_gives_up_on_a_missing_one() {
    let tmp = TempDir::new("wait");
    let path = tmp.0.join("configmeta.json").display().to_string();
    let waiting_env = env(&[
        ("SPARKVISOR_CONFIGMETA", &path),
        ("SPARKVISOR_CONFIGMETA_WAIT", "20s"),
    ]);
    let waiter = std::thread::spawn(move || Inputs::gather(waiting_env));
    // Written the way KubeDirector's agent would: complete file, then rename into place.
    let text = std::fs::read_to_string(fixture("configmeta-kubedirector.json")).unwrap();
    let staging = tmp.file("configmeta.json.tmp", &text);
    std::fs::rename(&staging, &path).unwrap();
    let inputs = waiter.join().unwrap().unwrap();
    assert_eq!(resolve_role(&inputs, None).unwrap().value, "worker");

    let missing = tmp.0.join("never.json").display().to_string();
    let err = Inputs::gather(env(&[
        ("SPARKVISOR_CONFIGMETA", &missing),
        ("SPARKVISOR_CONFIGMETA_WAIT", "150ms"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("did not appear within"), "{err}");
    // Explicitly named but absent, without a wait: an error too.
    assert!(Inputs::gather(env(&[("SPARKVISOR_CONFIGMETA", &missing)])).is_err());
}

/// A worker given only a master URL routes `spark.advertise=address` toward that master, not
/// toward itself (on a Swarm overlay the two can leave by different interfaces).
#[test]
fn a_master_url_alone_names_the_master_host_of_a_worker() {
    let cfg = full(
        &[
            ("SPARK_MODE", "worker"),
            ("SPARKVISOR_FQDN", "w1.invalid"),
            (
                "SPARK_MASTER_URL",
                "spark://192.0.2.1:7077,[2001:db8::7]:7077",
            ),
            ("SPARKVISOR_ADVERTISE", "address"),
        ],
        None,
        &[],
    );
    assert_eq!(
        setting(&cfg, "spark.master_host"),
        Sourced::new(
            "192.0.2.1".into(),
            Source::Derived {
                from: "spark.master_url".into()
            }
        )
    );
    let advertised = setting(&cfg, "spark.public_dns");
    if advertised.value != "w1.invalid" {
        // This host has a route: the address is the one toward the master.
        assert!(
            matches!(&advertised.source, Source::Derived { from } if from.contains("spark.master_host")),
            "{advertised:?}"
        );
    }
    // A master keeps its own name, URL or not.
    let cfg = full(
        &[
            ("SPARK_MODE", "master"),
            ("SPARKVISOR_FQDN", "m1.invalid"),
            ("SPARK_MASTER_URL", "spark://192.0.2.1:7077"),
        ],
        None,
        &[],
    );
    assert_eq!(setting(&cfg, "spark.master_host").value, "m1.invalid");
}

#[test]
fn bitnami_compatible_variables() {
    let tmp = TempDir::new("bitnami");
    let secret = tmp.file("secret", "s3cr3t-value\n");
    let cfg = full(
        &[
            ("SPARK_MODE", "worker"),
            ("SPARK_MASTER_URL", "spark://spark-master:7077"),
            ("SPARK_RPC_AUTHENTICATION_ENABLED", "yes"),
            ("SPARK_RPC_AUTHENTICATION_SECRET_FILE", &secret),
            ("SPARK_RPC_ENCRYPTION_ENABLED", "true"),
            ("SPARK_LOCAL_STORAGE_ENCRYPTION_ENABLED", "no"),
            ("SPARK_SSL_KEYSTORE_FILE", "/certs/keystore.jks"),
            ("SPARK_WORKER_MEMORY", "2g"),
        ],
        None,
        &[],
    );
    assert_eq!(
        cfg.role.source,
        Source::Env {
            name: "SPARK_MODE".into()
        }
    );
    assert_eq!(
        setting(&cfg, "spark.master_url").value,
        "spark://spark-master:7077"
    );
    assert_eq!(setting(&cfg, "spark.worker_memory").value, "2g");
    let auth = &cfg.spark_conf["spark.authenticate"];
    assert_eq!(auth.value, "true");
    assert_eq!(
        auth.source,
        Source::Env {
            name: "SPARK_RPC_AUTHENTICATION_ENABLED".into()
        }
    );
    assert_eq!(cfg.spark_conf["spark.network.crypto.enabled"].value, "true");
    assert_eq!(cfg.spark_conf["spark.io.encryption.enabled"].value, "false");
    // SPARK_SSL_KEYSTORE_FILE is the keystore's path, not a `_FILE` secret to read.
    assert_eq!(
        cfg.spark_conf["spark.ssl.keyStore"].value,
        "/certs/keystore.jks"
    );
    let s = &cfg.secrets["spark.authenticate.secret"];
    assert_eq!(s.expose(), "s3cr3t-value", "trailing newline trimmed");
    assert_eq!(
        s.source,
        Source::SecretFile {
            name: "SPARK_RPC_AUTHENTICATION_SECRET_FILE".into(),
            file: secret.clone()
        }
    );
    assert!(!format!("{cfg:?}").contains("s3cr3t-value"));
    let inputs = Inputs::gather(env(&[
        ("SPARK_RPC_AUTHENTICATION_SECRET", "env-s3cr3t"),
        ("SPARK_SSL_KEY_PASSWORD_FILE", &secret),
    ]))
    .unwrap();
    let debug = format!("{inputs:?}");
    assert!(
        !debug.contains("env-s3cr3t") && !debug.contains("s3cr3t-value"),
        "{debug}"
    );
    assert!(!serde_json::to_string(&cfg)
        .unwrap()
        .contains("s3cr3t-value"));

    // Authentication without a secret, SSL without passwords: every problem at once.
    let inputs = Inputs::gather(env(&[
        ("SPARK_RPC_AUTHENTICATION_ENABLED", "yes"),
        ("SPARK_SSL_ENABLED", "yes"),
    ]))
    .unwrap();
    let role = Sourced::new("worker".to_string(), Source::Default);
    let err = resolve(&inputs, role, "-", &BTreeMap::new()).unwrap_err();
    assert_eq!(err.0.len(), 4, "{err}");
    assert!(
        err.to_string().contains(
            "env SPARK_RPC_AUTHENTICATION_ENABLED: spark.authenticate is enabled but no secret"
        ),
        "{err}"
    );
}

#[test]
fn data_mount_moves_work_dirs() {
    let mut inputs = Inputs {
        hostname: "h".into(),
        fqdn: "h.example.org".into(),
        fqdn_from: "/etc/hosts".into(),
        ..Inputs::default()
    };
    let role = || Sourced::new("worker".to_string(), Source::Default);
    let cfg = resolve(&inputs, role(), "-", &BTreeMap::new()).unwrap();
    assert_eq!(setting(&cfg, "spark.work_dir").value, "/tmp/spark/work");
    assert_eq!(
        setting(&cfg, "spark.master_url").value,
        "spark://h.example.org:7077"
    );
    inputs.data_mounted = true;
    let cfg = resolve(&inputs, role(), "-", &BTreeMap::new()).unwrap();
    assert_eq!(setting(&cfg, "spark.work_dir").value, "/data/spark/work");
    assert_eq!(setting(&cfg, "spark.local_dirs").value, "/data/spark/local");
    inputs
        .env
        .insert("SPARK_LOCAL_DIRS".into(), "/scratch/a,/scratch/b".into());
    let cfg = resolve(&inputs, role(), "-", &BTreeMap::new()).unwrap();
    assert_eq!(
        setting(&cfg, "spark.local_dirs").value,
        "/scratch/a,/scratch/b"
    );
    assert_eq!(setting(&cfg, "spark.conf_dir").value, "/opt/spark/conf");
    inputs
        .env
        .insert("SPARK_HOME".into(), "/usr/lib/spark/".into());
    let cfg = resolve(&inputs, role(), "-", &BTreeMap::new()).unwrap();
    assert_eq!(setting(&cfg, "spark.conf_dir").value, "/usr/lib/spark/conf");
}

#[test]
fn reserved_and_colliding_setting_names() {
    let inputs = Inputs {
        hostname: "h".into(),
        fqdn: "h".into(),
        ..Inputs::default()
    };
    let defaults: BTreeMap<String, String> = [
        ("sizing.cpus", "2"),
        ("app", "1"),
        ("app.port", "2"),
        ("env", "x"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let role = Sourced::new("worker".to_string(), Source::Default);
    let err = resolve(&inputs, role, "roles/x.yaml", &defaults).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.0.len(), 3, "{text}");
    assert!(
        text.contains("roles/x.yaml: setting \"sizing.cpus\" uses the reserved name \"sizing\""),
        "{text}"
    );
    assert!(text.contains("conflicts with setting \"app\""), "{text}");
}

/// `inspect` shows sources and never a secret, in text and JSON.
#[test]
fn inspect_redacts_secrets() {
    let tmp = TempDir::new("inspect");
    let secret = tmp.file("secret", "hunter2-secret\n");
    for json in [false, true] {
        let mut cmd = Command::new(common::bin());
        cmd.env_clear()
            .env("SPARKVISOR_CONFIGMETA", "")
            .env(
                "SPARKVISOR_CGROUP_ROOT",
                common::repo().join("tests/fixtures/cgroups/v2-quota"),
            )
            .env("SPARKVISOR_ROLES", common::repo().join("roles"))
            .env("SPARK_MODE", "master")
            .env("SPARK_RPC_AUTHENTICATION_ENABLED", "yes")
            .env("SPARK_RPC_AUTHENTICATION_SECRET_FILE", &secret)
            .arg("inspect");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("hunter2"), "{stdout}");
        assert!(stdout.contains("spark.authenticate.secret"), "{stdout}");
        assert!(
            stdout.contains("SPARK_RPC_AUTHENTICATION_SECRET_FILE"),
            "{stdout}"
        );
        if !json {
            assert!(
                stdout.contains("role: master  (env SPARK_MODE)"),
                "{stdout}"
            );
            assert!(stdout.contains("cpu.max = \"150000 100000\""), "{stdout}");
        }
    }
}

#[test]
fn recovery_probe_host_and_master_ui_endpoints_are_derived() {
    let mut inputs = Inputs {
        hostname: "h".into(),
        fqdn: "h.example.org".into(),
        fqdn_from: "/etc/hosts".into(),
        ..Inputs::default()
    };
    let role = || Sourced::new("master".to_string(), Source::Default);
    let cfg = resolve(&inputs, role(), "-", &BTreeMap::new()).unwrap();
    assert_eq!(setting(&cfg, "spark.recovery_mode").value, "NONE");
    assert_eq!(setting(&cfg, "spark.probe_host").value, "127.0.0.1");
    assert_eq!(
        setting(&cfg, "spark.master_ui_endpoints").value,
        "h.example.org:8080"
    );
    // /data mounted: FILESYSTEM recovery there.
    inputs.data_mounted = true;
    let cfg = resolve(&inputs, role(), "-", &BTreeMap::new()).unwrap();
    assert_eq!(setting(&cfg, "spark.recovery_mode").value, "FILESYSTEM");
    assert_eq!(
        setting(&cfg, "spark.recovery_dir").value,
        "/data/spark-recovery"
    );
    // ZooKeeper peers win; a bound address is where the probes go; two masters, two UIs.
    inputs.env.insert(
        "SPARKVISOR_PEERS".into(),
        "{zookeeper: [zk1, zk2], master: [m1, m2]}".into(),
    );
    inputs
        .env
        .insert("SPARK_LOCAL_IP".into(), "10.1.2.3".into());
    let inputs = Inputs::gather(inputs.env.clone()).map_or(inputs, |mut i| {
        i.data_mounted = true;
        i
    });
    let worker = Sourced::new("worker".to_string(), Source::Default);
    let cfg = resolve(&inputs, worker, "-", &BTreeMap::new()).unwrap();
    assert_eq!(setting(&cfg, "spark.recovery_mode").value, "ZOOKEEPER");
    assert_eq!(
        setting(&cfg, "spark.zookeeper_url").value,
        "zk1:2181,zk2:2181"
    );
    assert_eq!(setting(&cfg, "spark.probe_host").value, "10.1.2.3");
    assert_eq!(
        setting(&cfg, "spark.master_ui_endpoints").value,
        "m1:8080,m2:8080"
    );
}
