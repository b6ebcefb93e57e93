//! Resolving the injected runtime config: built-in defaults < role defaults < cluster file <
//! configmeta.json < env < `<NAME>_FILE` secrets, each value keeping its [`crate::config::Source`].
//!
//! [`Inputs::gather`] (in `config::inputs`) does all the reading (files, hostname, mounts);
//! [`resolve_role`] and [`resolve`] are pure functions of the gathered inputs, so every precedence
//! rule is unit-testable. Validation collects every problem before failing (docs/configuration.md "Configuration
//! inputs and precedence"); the value rules live in `config::validate`.

use std::collections::BTreeMap;

mod features;

use crate::config::cluster_file::{self, ClusterFile, Scalar, Settings};
use crate::config::configmeta::{self, ConfigMeta};
use crate::config::env as vars;
use crate::config::model::NodeIdentity;
use crate::config::scan::KeyIndex;
use crate::config::units;
use crate::config::validate::{check_host, check_property_key};
use crate::config::{ResolvedConfig, Secret, Source, Sourced};
use crate::error::{Diagnostic, Diagnostics};

pub use crate::config::inputs::{find_fqdn, is_mount_point, FileValue, InputFile, Inputs};
pub use crate::config::validate::{
    check_role_name, check_setting_key, check_setting_value, RESERVED_ROOTS,
};

pub use crate::config::model::source_location;

/// Where a value was given: its source, and a position for diagnostics when it is in a file.
#[derive(Debug, Clone)]
struct Origin {
    source: Source,
    file: String,
    position: Option<(usize, usize)>,
}

impl Origin {
    fn of(source: Source) -> Origin {
        Origin {
            file: source_location(&source),
            source,
            position: None,
        }
    }
    fn at(source: Source, position: Option<(usize, usize)>) -> Origin {
        Origin {
            position,
            ..Origin::of(source)
        }
    }
    fn diagnostic(&self, message: impl Into<String>) -> Diagnostic {
        match self.position {
            Some((line, column)) => Diagnostic::at(self.file.clone(), line, column, message),
            None => Diagnostic::new(self.file.clone(), message),
        }
    }
}

fn env_origin(name: &str) -> Origin {
    Origin::of(Source::Env {
        name: name.to_string(),
    })
}

/// The value of variable `name`: its `<NAME>_FILE` when given (it wins), else the variable when
/// set and non-empty (compose files often pass empty variables meaning "unset").
fn env_value(inputs: &Inputs, name: &str) -> Option<(String, Origin)> {
    if let Some(fv) = inputs.file_values.get(name) {
        return Some((
            fv.value.clone(),
            Origin::of(Source::SecretFile {
                name: format!("{name}_FILE"),
                file: fv.file.clone(),
            }),
        ));
    }
    inputs
        .env
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| (v.clone(), env_origin(name)))
}

/// The parsed files, each parsed once per resolution; parse errors are collected.
struct Parsed<'a> {
    cluster: Option<(ClusterFile, &'a InputFile)>,
    meta: Option<(ConfigMeta, &'a InputFile)>,
    /// Key positions of each file, scanned once (a per-key search of the text was quadratic).
    cluster_keys: KeyIndex,
    meta_keys: KeyIndex,
}

impl<'a> Parsed<'a> {
    fn new(inputs: &'a Inputs, problems: &mut Diagnostics) -> Parsed<'a> {
        let cluster = inputs.cluster_file.as_ref().and_then(|f| {
            cluster_file::parse(&f.path, &f.text)
                .map_err(|d| problems.push(d))
                .ok()
                .map(|c| (c, f))
        });
        let meta = inputs.configmeta.as_ref().and_then(|f| {
            configmeta::parse(&f.path, &f.text)
                .map_err(|d| problems.push(d))
                .ok()
                .map(|m| (m, f))
        });
        let index = |f: Option<&InputFile>| f.map(|f| KeyIndex::new(&f.text)).unwrap_or_default();
        Parsed {
            cluster_keys: index(cluster.as_ref().map(|(_, f)| *f)),
            meta_keys: index(meta.as_ref().map(|(_, f)| *f)),
            cluster,
            meta,
        }
    }

    fn cluster_origin(&self, key: &str) -> Option<Origin> {
        self.cluster.as_ref().map(|(_, f)| {
            Origin::at(
                Source::ClusterFile {
                    file: f.path.clone(),
                },
                self.cluster_keys.get(key).or_else(|| {
                    key.rsplit('.')
                        .next()
                        .and_then(|last| self.cluster_keys.get(last))
                }),
            )
        })
    }

    fn meta_origin(&self, key: &str) -> Option<Origin> {
        self.meta.as_ref().map(|(_, f)| {
            let last = key.rsplit('.').next().unwrap_or(key);
            Origin::at(
                Source::ConfigMeta {
                    file: f.path.clone(),
                    key: key.to_string(),
                },
                self.meta_keys.get(last),
            )
        })
    }
}

/// KubeDirector role id → sparkvisor role: built-in table < cluster file `role_map` <
/// SPARKVISOR_ROLE_MAP (`kd-id=role,...`).
fn role_map(
    inputs: &Inputs,
    parsed: &Parsed,
    problems: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = configmeta::DEFAULT_ROLE_MAP
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some((cluster, _)) = &parsed.cluster {
        map.extend(cluster.role_map.clone());
    }
    if let Some((text, origin)) = env_value(inputs, vars::ROLE_MAP_VAR) {
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((kd, ours)) if !kd.trim().is_empty() && !ours.trim().is_empty() => {
                    map.insert(kd.trim().to_string(), ours.trim().to_string());
                }
                _ => problems.push(origin.diagnostic(format!(
                    "invalid role mapping {pair:?}: expected KUBEDIRECTOR_ROLE=ROLE, e.g. spark-master=master"
                ))),
            }
        }
    }
    map
}

fn mapped_role(map: &BTreeMap<String, String>, kd_role: &str) -> String {
    map.get(kd_role)
        .cloned()
        .unwrap_or_else(|| kd_role.to_string())
}

/// The node's role: --role flag > SPARKVISOR_ROLE > SPARK_MODE > configmeta node.role_id (mapped
/// through the role map) > cluster file `nodes:` entry for this host > cluster file `role`.
pub fn resolve_role(
    inputs: &Inputs,
    cli_role: Option<&str>,
) -> Result<Sourced<String>, Diagnostics> {
    let mut problems = Diagnostics::default();
    let parsed = Parsed::new(inputs, &mut problems);
    let map = role_map(inputs, &parsed, &mut problems);
    let candidate = pick_role(inputs, cli_role, &parsed, &map);
    match candidate {
        Some((role, origin)) => {
            if let Err(message) = check_role_name(&role) {
                problems.push(origin.diagnostic(message));
            }
            problems.into_result(Sourced::new(role, origin.source))
        }
        // A file that did not parse may hold the role: its error says enough.
        None if !problems.is_empty() => Err(problems),
        None => {
            problems.push(Diagnostic::new("config", NO_ROLE));
            Err(problems)
        }
    }
}

/// The problem reported when no source names a role. `check` tolerates exactly this one (an image
/// build validates roles with no role injected); compare whole messages, never prefixes.
pub const NO_ROLE: &str = "no role: pass --role, set SPARKVISOR_ROLE or SPARK_MODE, give `role:` in the cluster file (SPARKVISOR_CONFIG), or provide a configmeta.json with node.role_id";

fn pick_role(
    inputs: &Inputs,
    cli_role: Option<&str>,
    parsed: &Parsed,
    map: &BTreeMap<String, String>,
) -> Option<(String, Origin)> {
    if let Some(role) = cli_role {
        return Some((
            role.to_string(),
            Origin::of(Source::Cli {
                flag: "--role".into(),
            }),
        ));
    }
    for name in vars::ROLE_VARS.iter().rev() {
        if let Some(found) = env_value(inputs, name) {
            return Some(found);
        }
    }
    if let Some((meta, _)) = &parsed.meta {
        if let Some(origin) = parsed.meta_origin("node.role_id") {
            return Some((mapped_role(map, &meta.node.role_id), origin));
        }
    }
    let (cluster, _) = parsed.cluster.as_ref()?;
    // The node's names as resolved (env and configmeta overrides included); problems with them are
    // reported by `resolve`.
    let node = resolve_identity(inputs, parsed, &mut Diagnostics::default());
    for host in [&node.fqdn.value, &node.hostname.value] {
        if let Some(role) = cluster.nodes.get(host.as_str()) {
            return Some((role.clone(), parsed.cluster_origin(host)?));
        }
    }
    let role = cluster.role.clone()?;
    Some((role, parsed.cluster_origin("role")?))
}

/// Settings being layered, each with where it was given.
#[derive(Default)]
struct Layers {
    values: BTreeMap<String, (String, Origin)>,
}

impl Layers {
    /// Sets `key` (a later call wins), after checking its name and value.
    fn set(&mut self, key: &str, value: String, origin: Origin, problems: &mut Diagnostics) {
        if let Err(message) = check_setting_key(key) {
            problems.push(origin.diagnostic(message));
            return;
        }
        if let Err(message) = check_setting_value(key, &value) {
            problems.push(origin.diagnostic(format!("{key}: {message}")));
            return;
        }
        self.values.insert(key.to_string(), (value, origin));
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }
    /// Sets `key` to a derived or default value unless something set it already.
    fn fill(&mut self, key: &str, value: String, source: Source) {
        self.values
            .entry(key.to_string())
            .or_insert_with(|| (value, Origin::of(source)));
    }
}

/// Properties or secrets being layered.
type Props = BTreeMap<String, (String, Origin)>;

fn set_prop(
    props: &mut Props,
    key: &str,
    value: String,
    origin: Origin,
    problems: &mut Diagnostics,
) {
    match check_property_key(key) {
        Ok(()) => {
            props.insert(key.to_string(), (value, origin));
        }
        Err(message) => problems.push(origin.diagnostic(message)),
    }
}

/// Everything else, with the role's `defaults:` (from role_file) as the lowest layer.
pub fn resolve(
    inputs: &Inputs,
    role: Sourced<String>,
    role_file: &str,
    role_defaults: &BTreeMap<String, String>,
) -> Result<ResolvedConfig, Diagnostics> {
    let mut problems = Diagnostics::default();
    let parsed = Parsed::new(inputs, &mut problems);
    let map = role_map(inputs, &parsed, &mut problems);
    if let Err(message) = check_role_name(&role.value) {
        problems.push(Origin::of(role.source.clone()).diagnostic(message));
    }

    check_file_roles(&parsed, &map, &mut problems);
    let node = resolve_identity(inputs, &parsed, &mut problems);
    let peers = resolve_peers(inputs, &parsed, &map, &mut problems);

    // Settings, lowest precedence first.
    let mut layers = Layers::default();
    for (key, value) in [
        ("spark.home", "/opt/spark"),
        ("spark.user", "spark"),
        ("spark.master_port", "7077"),
        ("spark.master_webui_port", "8080"),
        ("spark.worker_webui_port", "8081"),
    ] {
        layers.set(
            key,
            value.to_string(),
            Origin::of(Source::Default),
            &mut problems,
        );
    }
    let role_source = Source::Role {
        file: role_file.to_string(),
    };
    for (key, value) in role_defaults {
        layers.set(
            key,
            value.clone(),
            Origin::of(role_source.clone()),
            &mut problems,
        );
    }
    if let Some((cluster, _)) = &parsed.cluster {
        for (key, value) in &cluster.settings.0 {
            if let Some(origin) = parsed.cluster_origin(key) {
                layers.set(key, value.clone(), origin, &mut problems);
            }
        }
    }
    if let Some((meta, _)) = &parsed.meta {
        configmeta_settings(meta, &parsed, &mut layers, &mut problems);
    }
    if let Some((text, origin)) = env_value(inputs, vars::SETTINGS_VAR) {
        match cluster_file::parse_document::<Settings>(&origin.file, &text) {
            Ok(settings) => {
                let keys = KeyIndex::new(&text);
                for (key, value) in settings.0 {
                    let at = Origin {
                        position: keys.get(&key),
                        ..origin.clone()
                    };
                    layers.set(&key, value, at, &mut problems);
                }
            }
            Err(d) => problems.push(d),
        }
    }
    for (var, key) in vars::SETTING_VARS {
        if let Some((value, origin)) = env_value(inputs, var) {
            layers.set(key, value, origin, &mut problems);
        }
    }
    derive_settings(&mut layers, inputs, &role.value, &node, &peers);
    check_prefix_collisions(&layers, &mut problems);

    let (spark_conf, secrets) = resolve_conf_and_secrets(inputs, &parsed, &layers, &mut problems);

    let settings = layers
        .values
        .into_iter()
        .map(|(k, (v, o))| (k, Sourced::new(v, o.source)))
        .collect();
    problems.into_result(ResolvedConfig {
        role,
        node,
        peers,
        settings,
        spark_conf,
        secrets,
    })
}

/// Role names in the cluster file and the role map are checked even when a higher source wins:
/// `check` validates everything injected, not only what this node uses.
fn check_file_roles(parsed: &Parsed, map: &BTreeMap<String, String>, problems: &mut Diagnostics) {
    if let Some((cluster, _)) = &parsed.cluster {
        let named = cluster
            .role
            .iter()
            .map(|r| ("role", r))
            .chain(cluster.nodes.iter().map(|(host, r)| (host.as_str(), r)));
        for (key, role) in named {
            if let Err(message) = check_role_name(role) {
                if let Some(origin) = parsed.cluster_origin(key) {
                    problems.push(origin.diagnostic(message));
                }
            }
        }
    }
    for (kd_role, role) in map {
        if let Err(message) = check_role_name(role) {
            let origin = parsed
                .cluster_origin(kd_role)
                .unwrap_or_else(|| env_origin(vars::ROLE_MAP_VAR));
            problems.push(origin.diagnostic(format!("role map {kd_role:?}: {message}")));
        }
    }
}

/// Hostname and FQDN: system < configmeta `node.hostname`/`node.fqdn` < SPARKVISOR_HOSTNAME/_FQDN.
fn resolve_identity(inputs: &Inputs, parsed: &Parsed, problems: &mut Diagnostics) -> NodeIdentity {
    let mut hostname = (
        inputs.hostname.clone(),
        Origin::of(Source::System {
            from: "hostname".into(),
        }),
    );
    let mut fqdn = (
        inputs.fqdn.clone(),
        Origin::of(Source::System {
            from: inputs.fqdn_from.clone(),
        }),
    );
    if let Some((meta, _)) = &parsed.meta {
        if let (Some(h), Some(origin)) = (&meta.node.hostname, parsed.meta_origin("node.hostname"))
        {
            let short = h.split('.').next().unwrap_or(h).to_string();
            if h.contains('.') {
                fqdn = (h.clone(), origin.clone());
            }
            hostname = (short, origin);
        }
        if let (Some(f), Some(origin)) = (&meta.node.fqdn, parsed.meta_origin("node.fqdn")) {
            fqdn = (f.clone(), origin);
        }
    }
    if let Some(found) = env_value(inputs, vars::HOSTNAME_VAR) {
        // A system FQDN belongs to the system hostname: a new name without a domain is its own FQDN.
        if matches!(fqdn.1.source, Source::System { .. }) {
            fqdn = found.clone();
        }
        hostname = found;
    }
    if let Some(found) = env_value(inputs, vars::FQDN_VAR) {
        fqdn = found;
    }
    for (value, origin) in [&hostname, &fqdn] {
        if let Err(message) = check_host(value) {
            problems.push(origin.diagnostic(message));
        }
    }
    NodeIdentity {
        hostname: Sourced::new(hostname.0, hostname.1.source),
        fqdn: Sourced::new(fqdn.0, fqdn.1.source),
    }
}

/// Peers by role: cluster file `peers:` < configmeta (every node group's roles, mapped) <
/// SPARKVISOR_PEERS; each layer replaces a role's whole list.
fn resolve_peers(
    inputs: &Inputs,
    parsed: &Parsed,
    map: &BTreeMap<String, String>,
    problems: &mut Diagnostics,
) -> BTreeMap<String, Sourced<Vec<String>>> {
    let mut peers: BTreeMap<String, (Vec<String>, Origin)> = BTreeMap::new();
    if let Some((cluster, _)) = &parsed.cluster {
        for (role, hosts) in &cluster.peers {
            if let Some(origin) = parsed.cluster_origin(role) {
                peers.insert(role.clone(), (hosts.clone(), origin));
            }
        }
    }
    if let Some((meta, _)) = &parsed.meta {
        let mut from_meta: BTreeMap<String, (Vec<String>, Origin)> = BTreeMap::new();
        for (ng_id, ng) in &meta.nodegroups {
            for (kd_role, kd) in &ng.roles {
                if kd.fqdns.is_empty() {
                    continue;
                }
                let key = format!("nodegroups.{ng_id}.roles.{kd_role}.fqdns");
                let Some(origin) = parsed.meta_origin(&key) else {
                    continue;
                };
                let entry = from_meta
                    .entry(mapped_role(map, kd_role))
                    .or_insert_with(|| (Vec::new(), origin));
                entry.0.extend(kd.fqdns.iter().cloned());
            }
        }
        peers.extend(from_meta);
    }
    if let Some((text, origin)) = env_value(inputs, vars::PEERS_VAR) {
        match cluster_file::parse_document::<BTreeMap<String, Vec<String>>>(&origin.file, &text) {
            Ok(env_peers) => {
                for (role, hosts) in env_peers {
                    peers.insert(role, (hosts, origin.clone()));
                }
            }
            Err(d) => problems.push(d),
        }
    }
    let mut out = BTreeMap::new();
    for (role, (hosts, origin)) in peers {
        if let Err(message) = check_role_name(&role) {
            problems.push(origin.diagnostic(format!("peers: {message}")));
            continue;
        }
        let mut ok = true;
        for host in &hosts {
            if let Err(message) = check_host(host) {
                problems.push(origin.diagnostic(format!("peers.{role}: {message}")));
                ok = false;
            }
        }
        if ok {
            out.insert(role, Sourced::new(hosts, origin.source));
        }
    }
    out
}

/// configmeta.json values offered as settings: `kubedirector.role_id`, `.cluster_name`,
/// `.domain`, and this node's role's `kubedirector.flavor.cores` / `kubedirector.flavor.memory_mb`.
fn configmeta_settings(
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
    let ng_id = meta.node.nodegroup_id.clone().unwrap_or_else(|| "1".into());
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
fn derive_settings(
    layers: &mut Layers,
    inputs: &Inputs,
    role: &str,
    node: &NodeIdentity,
    peers: &BTreeMap<String, Sourced<Vec<String>>>,
) {
    let derived = |from: &str| Source::Derived { from: from.into() };
    let home = layers.get("spark.home").unwrap_or("/opt/spark").to_string();
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
        .unwrap_or("7077")
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
        .unwrap_or("8080")
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
        .unwrap_or("2181")
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
fn check_prefix_collisions(layers: &Layers, problems: &mut Diagnostics) {
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

/// spark-defaults.conf properties and secrets: cluster file < configmeta (role `secret_keys`) <
/// SPARKVISOR_SPARK_CONF < the bitnami-compatible variables; then the bitnami consistency rules.
fn resolve_conf_and_secrets(
    inputs: &Inputs,
    parsed: &Parsed,
    layers: &Layers,
    problems: &mut Diagnostics,
) -> (BTreeMap<String, Sourced<String>>, BTreeMap<String, Secret>) {
    let mut conf: Props = BTreeMap::new();
    let mut secrets: Props = BTreeMap::new();
    if let Some((cluster, _)) = &parsed.cluster {
        for (key, Scalar(value)) in &cluster.spark_conf {
            if let Some(origin) = parsed.cluster_origin(key) {
                set_prop(&mut conf, key, value.clone(), origin, problems);
            }
        }
        for (key, Scalar(value)) in &cluster.secrets {
            if let Some(origin) = parsed.cluster_origin(key) {
                set_prop(&mut secrets, key, value.clone(), origin, problems);
            }
        }
    }
    if let Some((meta, _)) = &parsed.meta {
        let ng_id = meta.node.nodegroup_id.clone().unwrap_or_else(|| "1".into());
        if let Some(role) = meta
            .nodegroups
            .get(&ng_id)
            .and_then(|ng| ng.roles.get(&meta.node.role_id))
        {
            for (key, Scalar(value)) in &role.secret_keys {
                let meta_key = format!(
                    "nodegroups.{ng_id}.roles.{}.secret_keys.{key}",
                    meta.node.role_id
                );
                if let Some(origin) = parsed.meta_origin(&meta_key) {
                    let name = format!("kubedirector.{key}");
                    set_prop(&mut secrets, &name, value.clone(), origin, problems);
                }
            }
        }
    }
    if let Some((text, origin)) = env_value(inputs, vars::SPARK_CONF_VAR) {
        match cluster_file::parse_document::<BTreeMap<String, Scalar>>(&origin.file, &text) {
            Ok(props) => {
                for (key, Scalar(value)) in props {
                    set_prop(&mut conf, &key, value, origin.clone(), problems);
                }
            }
            Err(d) => problems.push(d),
        }
    }
    for (var, key) in vars::BOOL_CONF_VARS {
        if let Some((value, origin)) = env_value(inputs, var) {
            match units::parse_bool(&value) {
                Ok(b) => set_prop(&mut conf, key, b.to_string(), origin, problems),
                Err(message) => problems.push(origin.diagnostic(message)),
            }
        }
    }
    for (var, key) in vars::CONF_VARS {
        if let Some((value, origin)) = env_value(inputs, var) {
            set_prop(&mut conf, key, value, origin, problems);
        }
    }
    for (var, key) in vars::SECRET_VARS {
        if let Some((value, origin)) = env_value(inputs, var) {
            set_prop(&mut secrets, key, value, origin, problems);
        }
    }
    features::expand(&mut conf, layers);
    bitnami_rules(&mut conf, &secrets, layers, problems);
    let conf = conf
        .into_iter()
        .map(|(k, (v, o))| (k, Sourced::new(v, o.source)))
        .collect();
    let secrets = secrets
        .into_iter()
        .map(|(k, (v, o))| (k, Secret::new(v, o.source)))
        .collect();
    (conf, secrets)
}

fn is_true(props: &Props, key: &str) -> Option<Origin> {
    props
        .get(key)
        .filter(|(v, _)| units::parse_bool(v) == Ok(true))
        .map(|(_, o)| o.clone())
}

/// What the bitnami image enforces and defaults, so its users get the same behaviour.
fn bitnami_rules(conf: &mut Props, secrets: &Props, layers: &Layers, problems: &mut Diagnostics) {
    if let Some(origin) = is_true(conf, "spark.authenticate") {
        if !secrets.contains_key("spark.authenticate.secret") {
            problems.push(origin.diagnostic(
                "spark.authenticate is enabled but no secret is set: set SPARK_RPC_AUTHENTICATION_SECRET (or _FILE), or secrets.spark.authenticate.secret in the cluster file",
            ));
        }
    }
    for key in [
        "spark.network.crypto.enabled",
        "spark.io.encryption.enabled",
    ] {
        if let Some(origin) = is_true(conf, key) {
            if key == "spark.network.crypto.enabled"
                && is_true(conf, "spark.authenticate").is_none()
            {
                problems.push(origin.diagnostic(
                    "RPC encryption needs RPC authentication: also set SPARK_RPC_AUTHENTICATION_ENABLED=yes",
                ));
            }
        }
    }
    if let Some(origin) = is_true(conf, "spark.ssl.enabled") {
        for (secret, var) in [
            ("spark.ssl.keyPassword", "SPARK_SSL_KEY_PASSWORD"),
            ("spark.ssl.keyStorePassword", "SPARK_SSL_KEYSTORE_PASSWORD"),
            (
                "spark.ssl.trustStorePassword",
                "SPARK_SSL_TRUSTSTORE_PASSWORD",
            ),
        ] {
            if !secrets.contains_key(secret) {
                problems.push(origin.diagnostic(format!(
                    "SSL is enabled but {secret} is not set: set {var} (or {var}_FILE)"
                )));
            }
        }
        let conf_dir = layers.get("spark.conf_dir").unwrap_or("/opt/spark/conf");
        let defaults = [
            (
                "spark.ssl.keyStore",
                format!("{conf_dir}/certs/spark-keystore.jks"),
            ),
            (
                "spark.ssl.trustStore",
                format!("{conf_dir}/certs/spark-truststore.jks"),
            ),
            ("spark.ssl.keyStoreType", "JKS".to_string()),
            ("spark.ssl.trustStoreType", "JKS".to_string()),
            ("spark.ssl.protocol", "TLSv1.2".to_string()),
            ("spark.ssl.needClientAuth", "true".to_string()),
        ];
        for (key, value) in defaults {
            conf.entry(key.to_string()).or_insert_with(|| {
                (
                    value,
                    Origin::of(Source::Derived {
                        from: "SSL enabled (bitnami default)".into(),
                    }),
                )
            });
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
