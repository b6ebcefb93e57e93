//! The other nodes of the cluster, by role.

use std::collections::BTreeMap;

use super::role::mapped_role;
use super::{check_role_name, env_document, Origin, Parsed};

use crate::config::env as vars;
use crate::config::inputs::Inputs;
use crate::config::validate::check_host;
use crate::config::Sourced;
use crate::error::Diagnostics;

/// Peers by role: cluster file `peers:` < configmeta (every node group's roles, mapped) <
/// SPARKVISOR_PEERS; each layer replaces a role's whole list.
pub(super) fn resolve_peers(
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
    if let Some((env_peers, _, origin)) =
        env_document::<BTreeMap<String, Vec<String>>>(inputs, vars::PEERS_VAR, problems)
    {
        for (role, hosts) in env_peers {
            peers.insert(role, (hosts, origin.clone()));
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
