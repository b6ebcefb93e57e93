//! KubeDirector's `configmeta.json` (reference: spark-containers.md §3.2).
//!
//! Only the keys sparkvisor uses are read, strictly typed; other keys are ignored because KubeDirector
//! owns this format and adds to it. Read: `node.role_id`, `node.hostname`, `node.fqdn`,
//! `node.nodegroup_id`, `node.domain`, `cluster.name`, and for every role of every node group
//! `nodegroups.<ng>.roles.<role>.fqdns`, `.flavor.cores`, `.flavor.memory`, `.secret_keys`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::cluster_file::Scalar;
use crate::config::source::SourceText;
use crate::error::Diagnostic;

/// The parts of configmeta.json sparkvisor reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ConfigMeta {
    /// This node.
    pub node: Node,
    /// Node groups by id (KubeDirector only uses "1").
    #[serde(default)]
    pub nodegroups: BTreeMap<String, NodeGroup>,
    /// The cluster.
    #[serde(default)]
    pub cluster: Option<Cluster>,
}

/// `node`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Node {
    /// The KubeDirector role id (e.g. `spark-master`), mapped to a sparkvisor role.
    pub role_id: String,
    /// This node's host name (KubeDirector writes the FQDN here).
    #[serde(default)]
    pub hostname: Option<String>,
    /// This node's FQDN.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// The cluster's DNS domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// The node group this node is in.
    #[serde(default)]
    pub nodegroup_id: Option<String>,
}

/// `nodegroups.<id>`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NodeGroup {
    /// Roles by KubeDirector role id.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
}

/// `nodegroups.<id>.roles.<role>`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Role {
    /// FQDNs of the role's members.
    #[serde(default)]
    pub fqdns: Vec<String>,
    /// Per-member resources KubeDirector derived from the role's limits.
    #[serde(default)]
    pub flavor: Option<Flavor>,
    /// Secret key-values attached to the role.
    #[serde(default)]
    pub secret_keys: BTreeMap<String, Scalar>,
}

/// `flavor`: `cores` (limits.cpu rounded up, "0" without a limit) and `memory` (MiB).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Flavor {
    /// Cores, as text.
    #[serde(default)]
    pub cores: Option<Scalar>,
    /// Memory in MiB, as text.
    #[serde(default)]
    pub memory: Option<Scalar>,
}

/// `cluster`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Cluster {
    /// The KubeDirectorCluster's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Parses configmeta.json (always JSON).
pub fn parse(source: &SourceText) -> Result<ConfigMeta, Diagnostic> {
    crate::config::scan::check_nesting(&source.path, &source.text)?;
    serde_json::from_str(&source.text).map_err(|e| source.json_error(&e))
}

/// KubeDirector role ids mapped to sparkvisor roles by default (docs/configuration.md).
/// Ids not listed map to themselves.
pub const DEFAULT_ROLE_MAP: &[(&str, &str)] = &[
    ("spark-master", "master"),
    ("spark-worker", "worker"),
    ("spark-notebook", "notebook"),
    // The notebook role id of kubedirector/spark-app.yaml (and of KubeDirector's own Spark apps).
    ("notebook-server", "notebook"),
    ("jupyter", "notebook"),
    ("jupyter-notebook", "notebook"),
    ("spark-zeppelin", "zeppelin"),
];
