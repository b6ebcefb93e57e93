//! The settings layers: built-in defaults, what configmeta.json offers as settings, the settings
//! derived from the node and its peers, and the check that no name is both a value and a group.

use std::collections::BTreeMap;

use super::{features, Layers, Parsed};
use crate::config::cluster_file::Scalar;
use crate::config::configmeta::ConfigMeta;
use crate::config::inputs::Inputs;
use crate::config::model::NodeIdentity;
use crate::config::{Source, Sourced};
use crate::error::Diagnostics;

/// Where Spark is installed unless `spark.home` says otherwise.
pub(super) const SPARK_HOME: &str = crate::config::env::DEFAULT_SPARK_HOME;
/// The user services run as unless `spark.user` says otherwise.
const SPARK_USER: &str = "spark";
/// The master's RPC port (`spark.master_port`).
const MASTER_PORT: &str = "7077";
/// The master's web UI port (`spark.master_webui_port`).
const MASTER_WEBUI_PORT: &str = "8080";
/// The worker's web UI port (`spark.worker_webui_port`).
const WORKER_WEBUI_PORT: &str = "8081";
/// ZooKeeper's client port when `zookeeper.client_port` is not set.
const ZOOKEEPER_CLIENT_PORT: &str = "2181";
/// The configmeta.json node group of a node that names none.
pub(super) const DEFAULT_NODEGROUP: &str = "1";

/// The built-in settings, the lowest layer.
pub(super) const BUILT_IN: [(&str, &str); 5] = [
    ("spark.home", SPARK_HOME),
    ("spark.user", SPARK_USER),
    ("spark.master_port", MASTER_PORT),
    ("spark.master_webui_port", MASTER_WEBUI_PORT),
    ("spark.worker_webui_port", WORKER_WEBUI_PORT),
];

/// configmeta.json values offered as settings: `kubedirector.role_id`, `.cluster_name`,
/// `.domain`, and this node's role's `kubedirector.flavor.cores` / `kubedirector.flavor.memory_mb`.
pub(super) fn configmeta_settings(
    meta: &ConfigMeta,
    parsed: &Parsed,
    layers: &mut Layers,
    problems: &mut Diagnostics,
) {
    let mut offer = |key: &str, value: String, meta_key: &str| {
        if let Some(origin) = parsed.meta_origin(meta_key) {
            layers.set(key, value, origin, problems);
        }
    };
    offer(
        "kubedirector.role_id",
        meta.node.role_id.clone(),
        "node.role_id",
    );
    if let Some(name) = meta.cluster.as_ref().and_then(|c| c.name.clone()) {
        offer("kubedirector.cluster_name", name, "cluster.name");
    }
    if let Some(domain) = &meta.node.domain {
        offer("kubedirector.domain", domain.clone(), "node.domain");
    }
    let ng_id = meta
        .node
        .nodegroup_id
        .clone()
        .unwrap_or_else(|| DEFAULT_NODEGROUP.into());
    let flavor = meta
        .nodegroups
        .get(&ng_id)
        .and_then(|ng| ng.roles.get(&meta.node.role_id))
        .and_then(|r| r.flavor.clone());
    if let Some(flavor) = flavor {
        let prefix = format!("nodegroups.{ng_id}.roles.{}.flavor", meta.node.role_id);
        // KubeDirector writes "0" cores without a limit and "n/a" for unknowns: only numbers count.
        if let Some(Scalar(cores)) = flavor
            .cores
            .filter(|c| c.0.parse::<u32>().is_ok_and(|n| n > 0))
        {
            offer(
                "kubedirector.flavor.cores",
                cores,
                &format!("{prefix}.cores"),
            );
        }
        if let Some(Scalar(mem)) = flavor
            .memory
            .filter(|m| m.0.parse::<u64>().is_ok_and(|n| n > 0))
        {
            offer(
                "kubedirector.flavor.memory_mb",
                mem,
                &format!("{prefix}.memory"),
            );
        }
    }
}

/// Fills in the settings every role may rely on, unless a user layer set them.
pub(super) fn derive_settings(
    layers: &mut Layers,
    inputs: &Inputs,
    role: &str,
    node: &NodeIdentity,
    peers: &BTreeMap<String, Sourced<Vec<String>>>,
) {
    let derived = |from: &str| Source::Derived { from: from.into() };
    let home = layers.get("spark.home").unwrap_or(SPARK_HOME).to_string();
    layers.fill(
        "spark.conf_dir",
        format!("{}/conf", home.trim_end_matches('/')),
        derived("spark.home"),
    );
    let masters = peers
        .get("master")
        .map(|p| p.value.clone())
        .unwrap_or_default();
    let master_host_explicit = layers.get("spark.master_host").is_some();
    // A non-master given a master URL (SPARK_MASTER_URL) but no master peers: its master host is the
    // URL's first host, never its own name (`spark.advertise=address` routes toward it).
    let url_host = (role != "master" && masters.is_empty())
        .then(|| layers.get("spark.master_url").and_then(first_host_of_url))
        .flatten();
    match (masters.first(), url_host) {
        (Some(first), _) if role != "master" => {
            layers.fill("spark.master_host", first.clone(), derived("peers.master"))
        }
        (_, Some(host)) => layers.fill("spark.master_host", host, derived("spark.master_url")),
        _ => layers.fill(
            "spark.master_host",
            node.fqdn.value.clone(),
            derived("node.fqdn"),
        ),
    }
    let port = layers
        .get("spark.master_port")
        .unwrap_or(MASTER_PORT)
        .to_string();
    if !master_host_explicit && !masters.is_empty() {
        let url = masters
            .iter()
            .map(|m| format!("{m}:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        layers.fill(
            "spark.master_url",
            format!("spark://{url}"),
            derived("peers.master, spark.master_port"),
        );
    } else {
        let host = layers
            .get("spark.master_host")
            .unwrap_or_default()
            .to_string();
        layers.fill(
            "spark.master_url",
            format!("spark://{host}:{port}"),
            derived("spark.master_host, spark.master_port"),
        );
    }
    let (name, from) = crate::config::advertise::advertised_name(
        layers.get("spark.advertise"),
        layers.get("spark.master_host"),
        &node.fqdn.value,
    );
    layers.fill("spark.public_dns", name.clone(), derived(from));
    layers.fill("spark.local_hostname", name, derived(from));
    // Every master's UI as `host:port[,host:port]` (the hosts of the master URL), for the worker's
    // and notebook's `wait_for` on an ALIVE master (docs/ha.md).
    let ui_port = layers
        .get("spark.master_webui_port")
        .unwrap_or(MASTER_WEBUI_PORT)
        .to_string();
    if let Ok(rpc) = crate::config::role::endpoints_of(layers.get("spark.master_url").unwrap_or(""))
    {
        let hosts: Vec<String> = rpc
            .iter()
            .filter_map(|e| e.rsplit_once(':').map(|(h, _)| format!("{h}:{ui_port}")))
            .collect();
        layers.fill(
            "spark.master_ui_endpoints",
            hosts.join(","),
            derived("spark.master_url, spark.master_webui_port"),
        );
    }
    // Where the probes reach Spark's UIs: the address Spark binds them to (SPARK_LOCAL_IP binds
    // only that address), else loopback.
    let probe_host = match layers.get("spark.local_ip") {
        Some(ip) if !ip.is_empty() && ip != "0.0.0.0" && ip != "::" => {
            if ip.contains(':') && !ip.starts_with('[') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            }
        }
        _ => "127.0.0.1".to_string(),
    };
    layers.fill("spark.probe_host", probe_host, derived("spark.local_ip"));
    let zookeepers = peers
        .get("zookeeper")
        .map(|p| p.value.clone())
        .unwrap_or_default();
    let zk_port = layers
        .get("zookeeper.client_port")
        .unwrap_or(ZOOKEEPER_CLIENT_PORT)
        .to_string();
    for (key, value, from) in
        crate::config::recovery::derive(&zookeepers, &zk_port, inputs.data_mounted)
    {
        layers.fill(key, value, derived(from));
    }
    let (base, source) = if inputs.data_mounted {
        ("/data/spark", derived("/data is a mount point"))
    } else {
        ("/tmp/spark", Source::Default)
    };
    layers.fill("spark.work_dir", format!("{base}/work"), source.clone());
    layers.fill("spark.local_dirs", format!("{base}/local"), source.clone());
    layers.fill("spark.log_dir", format!("{base}/logs"), source.clone());
    features::derive(layers, base, source);
}

/// A key `a.b` and a key `a.b.c` cannot both exist: templates see `a.b` as a value and a map at once.
pub(super) fn check_prefix_collisions(layers: &Layers, problems: &mut Diagnostics) {
    for (key, (_, _)) in &layers.values {
        let prefix = format!("{key}.");
        if let Some((longer, (_, origin))) = layers
            .values
            .range(prefix.clone()..)
            .next()
            .filter(|(k, _)| k.starts_with(&prefix))
        {
            problems.push(origin.diagnostic(format!(
                "setting {longer:?} conflicts with setting {key:?}: a name cannot be both a value and a group"
            )));
        }
    }
}

/// The first host of a `spark://h1:p1,h2:p2` URL, without IPv6 brackets.
fn first_host_of_url(url: &str) -> Option<String> {
    let endpoints = crate::config::role::endpoints_of(url).ok()?;
    let (host, _port) = endpoints.first()?.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_string())
}
