//! The resolved node config: every value remembers where it came from ([`Source`]).
//!
//! Contract shared by `config::runtime` (which builds it), `render` (which turns it into the template
//! context), `supervisor` (service environment) and `status`/`inspect` (which show it, secrets redacted).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Where a resolved value came from, lowest precedence first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Built into sparkvisor (documented default).
    Default,
    /// A role definition's `defaults:`.
    Role {
        /// The role file.
        file: String,
    },
    /// The cluster file (`SPARKVISOR_CONFIG`).
    ClusterFile {
        /// Path of the file.
        file: String,
    },
    /// KubeDirector's configmeta.json.
    ConfigMeta {
        /// Path of the file.
        file: String,
        /// The JSON path inside it, e.g. `node.role_id`.
        key: String,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        name: String,
    },
    /// A `<NAME>_FILE` secret file.
    SecretFile {
        /// The variable that named the file.
        name: String,
        /// The file.
        file: String,
    },
    /// Derived by sparkvisor from other values or from detected resources.
    Derived {
        /// How, in a few words (e.g. `from peers.master`).
        from: String,
    },
    /// The running system (hostname, /proc, cgroups).
    System {
        /// What was read.
        from: String,
    },
    /// A command-line flag (e.g. `--role`).
    Cli {
        /// The flag.
        flag: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Role { file } => write!(f, "role {file}"),
            Source::ClusterFile { file } => write!(f, "cluster file {file}"),
            Source::ConfigMeta { file, key } => write!(f, "{file} {key}"),
            Source::Env { name } => write!(f, "env {name}"),
            Source::SecretFile { name, file } => write!(f, "{name} ({file})"),
            Source::Derived { from } => write!(f, "derived {from}"),
            Source::System { from } => write!(f, "system {from}"),
            Source::Cli { flag } => write!(f, "command line {flag}"),
        }
    }
}

/// A value with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Sourced<T> {
    /// Pairs a value with its source.
    pub fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }
}

/// A secret value. `Debug` and `Serialize` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from (shown; the value is not).
    pub source: Source,
}

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String, source: Source) -> Self {
        Self { value, source }
    }
    /// The clear value: only for rendering into 0600 files and service environments.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted>, {})", self.source)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Secret", 2)?;
        st.serialize_field("value", "<redacted>")?;
        st.serialize_field("source", &self.source)?;
        st.end()
    }
}

/// The node's own identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeIdentity {
    /// Short hostname.
    pub hostname: Sourced<String>,
    /// Fully qualified name (equal to the hostname when no domain is known).
    pub fqdn: Sourced<String>,
}

/// One node's resolved runtime config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedConfig {
    /// The role this node plays (`master`, `worker`, ...).
    pub role: Sourced<String>,
    /// This node's identity.
    pub node: NodeIdentity,
    /// Peers by role name: FQDNs of the nodes in each role (e.g. `master` → the masters, several for HA).
    pub peers: BTreeMap<String, Sourced<Vec<String>>>,
    /// Named settings with dotted keys (`spark.home`, `spark.master_url`, `spark.worker_cores`, ...).
    /// Templates see them nested (`{{ spark.master_url }}`). Explicit user values beat derived ones.
    pub settings: BTreeMap<String, Sourced<String>>,
    /// Properties for spark-defaults.conf (`spark.authenticate` → `true`, ...).
    pub spark_conf: BTreeMap<String, Sourced<String>>,
    /// Secrets by name (`spark.authenticate.secret`, ...). Never printed.
    pub secrets: BTreeMap<String, Secret>,
}

/// The file (or pseudo-file such as `env SPARK_MODE`) a value from `source` is reported against.
pub fn source_location(source: &Source) -> String {
    match source {
        Source::Default => "built-in default".to_string(),
        Source::Role { file } | Source::ClusterFile { file } => file.clone(),
        Source::ConfigMeta { file, .. } => file.clone(),
        Source::Env { name } => format!("env {name}"),
        Source::SecretFile { file, .. } => file.clone(),
        Source::Derived { from } => format!("derived {from}"),
        Source::System { from } => from.clone(),
        Source::Cli { flag } => format!("command line {flag}"),
    }
}
