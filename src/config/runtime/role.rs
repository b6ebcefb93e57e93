//! The node's role, and the KubeDirector role map that names roles from configmeta.json.

use std::collections::BTreeMap;

use super::{check_role_name, env_origin, env_value, Origin, Parsed};
use crate::config::configmeta;
use crate::config::env as vars;
use crate::config::inputs::Inputs;
use crate::config::model::NodeIdentity;
use crate::config::Source;
use crate::error::Diagnostics;

/// KubeDirector role id → sparkvisor role: built-in table < cluster file `role_map` <
/// SPARKVISOR_ROLE_MAP (`kd-id=role,...`).
pub(super) fn role_map(
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

pub(super) fn mapped_role(map: &BTreeMap<String, String>, kd_role: &str) -> String {
    map.get(kd_role)
        .cloned()
        .unwrap_or_else(|| kd_role.to_string())
}

/// The problem reported when no source names a role. `check` tolerates exactly this one (an image
/// build validates roles with no role injected); compare whole messages, never prefixes.
pub const NO_ROLE: &str = "no role: pass --role, set SPARKVISOR_ROLE or SPARK_MODE, give `role:` in the cluster file (SPARKVISOR_CONFIG), or provide a configmeta.json with node.role_id";

/// The role and where it was given, by precedence (see [`super::Resolver::role`]); `node` is the
/// node's names as resolved (env and configmeta overrides included).
pub(super) fn pick_role(
    inputs: &Inputs,
    cli_role: Option<&str>,
    parsed: &Parsed,
    map: &BTreeMap<String, String>,
    node: &NodeIdentity,
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
    for host in [&node.fqdn.value, &node.hostname.value] {
        if let Some(role) = cluster.nodes.get(host.as_str()) {
            return Some((role.clone(), parsed.cluster_origin(host)?));
        }
    }
    let role = cluster.role.clone()?;
    Some((role, parsed.cluster_origin("role")?))
}

/// Role names in the cluster file and the role map are checked even when a higher source wins:
/// `check` validates everything injected, not only what this node uses.
pub(super) fn check_file_roles(
    parsed: &Parsed,
    map: &BTreeMap<String, String>,
    problems: &mut Diagnostics,
) {
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
