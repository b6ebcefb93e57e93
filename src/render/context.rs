//! The template context: one JSON object built from the resolved config, resources and sizing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::role::LoadedRole;
use crate::config::validate::RESERVED_ROOTS;
use crate::config::{model::NodeIdentity, ResolvedConfig, Secret, Source, Sourced};
use crate::resources::{Resources, Sizing};

/// The template context (JSON object): `node` {hostname, fqdn}, `role` (name), `peers` {role: \[fqdn\]},
/// `resources` (as detected), `sizing` {cpus, worker_cores, worker_memory_mb, daemon_memory_mb, memory_mb, overhead_mb} as
/// plain numbers (absent when there is no sizing), `spark_conf` {key: value}, `secrets` {name: value},
/// `settings` {dotted key: value}, and every dotted setting nested at the top level
/// (`spark.master_url` → `{{ spark.master_url }}`). Sources stay in the config; templates see values.
pub fn build_context(
    config: &ResolvedConfig,
    resources: &Resources,
    sizing: Option<&Sizing>,
) -> Value {
    let mut root = Map::new();
    let mut settings = Map::new();
    for (key, value) in &config.settings {
        settings.insert(key.clone(), Value::String(value.value.clone()));
        let first = key.split('.').next().unwrap_or_default();
        // A setting under a reserved name is only reachable as `settings["..."]`.
        if !RESERVED_ROOTS.contains(&first) {
            insert_nested(&mut root, key, &value.value);
        }
    }
    root.insert("settings".into(), Value::Object(settings));
    root.insert(
        "node".into(),
        serde_json::json!({
            "hostname": config.node.hostname.value,
            "fqdn": config.node.fqdn.value,
        }),
    );
    root.insert("role".into(), Value::String(config.role.value.clone()));
    let peers: Map<String, Value> = config
        .peers
        .iter()
        .map(|(role, nodes)| {
            let list = nodes.value.iter().cloned().map(Value::String).collect();
            (role.clone(), Value::Array(list))
        })
        .collect();
    root.insert("peers".into(), Value::Object(peers));
    root.insert(
        "resources".into(),
        serde_json::to_value(resources).unwrap_or(Value::Null),
    );
    if let Some(sizing) = sizing {
        root.insert(
            "sizing".into(),
            serde_json::json!({
                "cpus": sizing.cpus.value,
                "worker_cores": sizing.worker_cores.value,
                "worker_memory_mb": sizing.worker_memory_mb.value,
                "daemon_memory_mb": sizing.daemon_memory_mb.value,
                "memory_mb": sizing.memory_mb.value,
                "overhead_mb": sizing.overhead_mb.value,
            }),
        );
    }
    let spark_conf: Map<String, Value> = config
        .spark_conf
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.value.clone())))
        .collect();
    root.insert("spark_conf".into(), Value::Object(spark_conf));
    // An empty secret is unset (as an empty environment variable is): a template can never tell
    // it from a missing one, so `"token": ""` (authentication off in Jupyter) cannot be rendered.
    let secrets: Map<String, Value> = config
        .secrets
        .iter()
        .filter(|(_, v)| !v.expose().is_empty())
        .map(|(k, v)| (k.clone(), Value::String(v.expose().to_string())))
        .collect();
    root.insert("secrets".into(), Value::Object(secrets));
    Value::Object(root)
}

/// Puts `a.b.c = value` at `root.a.b.c`. A key that would nest under an existing plain value (or
/// replace an object) is skipped: settings are sorted, so `a.b` wins over `a.b.c`.
fn insert_nested(root: &mut Map<String, Value>, key: &str, value: &str) {
    let mut parts = key.split('.').peekable();
    let mut node = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            if !node.contains_key(part) {
                node.insert(part.to_string(), Value::String(value.to_string()));
            }
            return;
        }
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        match entry {
            Value::Object(map) => node = map,
            _ => return,
        }
    }
}

/// Secret values as they appear in the context (to mark files that hold one as secret).
pub fn secret_values(context: &Value) -> Vec<&str> {
    context
        .get("secrets")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A fixed, plausible config for validating a role's templates (`check`) and for golden tests:
/// every setting the config resolver guarantees, the role's own `defaults:`, a master peer, one
/// `spark_conf` entry and one secret.
pub fn sample_config(role: &LoadedRole) -> ResolvedConfig {
    let sample = |v: &str| Sourced::new(v.to_string(), Source::Default);
    let mut settings: BTreeMap<String, Sourced<String>> = [
        ("spark.home", "/opt/spark"),
        ("spark.conf_dir", "/opt/spark/conf"),
        ("spark.user", "spark"),
        ("spark.master_host", "master-1.example"),
        ("spark.master_port", "7077"),
        ("spark.master_webui_port", "8080"),
        ("spark.worker_webui_port", "8081"),
        ("spark.master_url", "spark://master-1.example:7077"),
        ("spark.master_ui_endpoints", "master-1.example:8080"),
        ("spark.recovery_mode", "NONE"),
        ("spark.probe_host", "127.0.0.1"),
        ("spark.public_dns", "node-1.example"),
        ("spark.local_hostname", "node-1.example"),
        ("spark.work_dir", "/data/work"),
        ("spark.local_dirs", "/data/local"),
        ("spark.log_dir", "/opt/spark/logs"),
        ("spark.event_log_dir", "/data/spark/events"),
        ("history.log_dir", "file:/data/spark/events"),
        ("spark.warehouse_dir", "/data/spark/warehouse"),
        ("spark.metastore_dir", "/data/spark/metastore_db"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), sample(v)))
    .collect();
    for (k, v) in &role.def.defaults {
        settings.insert(
            k.clone(),
            Sourced::new(
                v.clone(),
                Source::Role {
                    file: role.file.display().to_string(),
                },
            ),
        );
    }
    ResolvedConfig {
        role: sample(&role.name),
        node: NodeIdentity {
            hostname: sample("node-1"),
            fqdn: sample("node-1.example"),
        },
        peers: [(
            "master".to_string(),
            Sourced::new(vec!["master-1.example".to_string()], Source::Default),
        )]
        .into_iter()
        .collect(),
        settings,
        spark_conf: [("spark.authenticate".to_string(), sample("true"))]
            .into_iter()
            .collect(),
        secrets: [(
            "spark.authenticate.secret".to_string(),
            Secret::new("sample-secret".to_string(), Source::Default),
        )]
        .into_iter()
        .collect(),
    }
}

/// Fixed resources for [`sample_config`]: 4 CPUs, 8 GiB, a 2-CPU / 4 GiB limit.
pub fn sample_resources() -> Resources {
    Resources {
        host_cpus: 4,
        visible_cpus: 4,
        cpu_quota: Some(2.0),
        host_memory: 8 << 30,
        memory_limit: Some(4 << 30),
        sources: vec!["sample".to_string()],
        cgroup: "/".to_string(),
        cpuset_cpus: None,
    }
}

/// Fixed sizing for [`sample_resources`].
pub fn sample_sizing() -> Sizing {
    let derived = || Source::Derived {
        from: "sample".to_string(),
    };
    Sizing {
        cpus: Sourced::new(2, derived()),
        worker_cores: Sourced::new(2, derived()),
        worker_memory_mb: Sourced::new(2560, derived()),
        daemon_memory_mb: Sourced::new(512, derived()),
        memory_mb: Sourced::new(4096, derived()),
        overhead_mb: Sourced::new(1024, derived()),
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::role::RoleDef;

    #[test]
    fn nesting_keeps_the_shorter_key() {
        let mut root = Map::new();
        insert_nested(&mut root, "a.b", "1");
        insert_nested(&mut root, "a.b.c", "2");
        insert_nested(&mut root, "a.d", "3");
        assert_eq!(
            Value::Object(root),
            serde_json::json!({"a": {"b": "1", "d": "3"}})
        );
    }

    #[test]
    fn settings_nest_sizing_flattens_and_reserved_names_stay_flat() {
        let role = LoadedRole {
            name: "r".into(),
            file: "r.yaml".into(),
            def: RoleDef {
                description: String::new(),
                include: Vec::new(),
                warnings: Vec::new(),
                defaults: [("node.evil".to_string(), "x".to_string())]
                    .into_iter()
                    .collect(),
                render: Vec::new(),
                services: BTreeMap::new(),
                adjust: BTreeMap::new(),
            },
            service_files: BTreeMap::new(),
            sources: BTreeMap::new(),
            render_files: Vec::new(),
        };
        let ctx = build_context(
            &sample_config(&role),
            &sample_resources(),
            Some(&sample_sizing()),
        );
        assert_eq!(ctx["spark"]["master_url"], "spark://master-1.example:7077");
        assert_eq!(
            ctx["settings"]["spark.master_url"],
            "spark://master-1.example:7077"
        );
        assert_eq!(ctx["sizing"]["worker_cores"], 2);
        assert_eq!(ctx["node"]["fqdn"], "node-1.example");
        assert!(ctx["node"].get("evil").is_none());
        assert_eq!(ctx["settings"]["node.evil"], "x");
        assert_eq!(ctx["secrets"]["spark.authenticate.secret"], "sample-secret");
        assert_eq!(ctx["peers"]["master"][0], "master-1.example");
        let without = build_context(&sample_config(&role), &sample_resources(), None);
        assert!(without.get("sizing").is_none());
    }
}
