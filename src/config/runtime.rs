//! Resolving the injected runtime config: built-in defaults < role defaults < cluster file <
//! configmeta.json < env < `<NAME>_FILE` secrets, each value keeping its [`crate::config::Source`].
//!
//! [`Inputs::gather`] (in `config::inputs`) does all the reading (files, hostname, mounts); a
//! [`Resolver`] is a pure function of the gathered inputs, so every precedence rule is
//! unit-testable. It makes one pass over the inputs: each file is parsed once, the role map, the
//! node's identity and the peers are resolved once, and each problem is recorded once, with its
//! position ([`crate::config::source::SourceText`]). Validation collects every problem before
//! failing (docs/configuration.md "Configuration inputs and precedence"); the value rules live in
//! `config::validate`.
//!
//! This module holds the layering machinery (origins, the parsed files, the settings layers) and
//! the [`Resolver`], which runs one resolver per thing it resolves: `role` (the node's role and
//! the KubeDirector role map), `identity` (hostname, FQDN), `peers`, `settings` (built-in defaults,
//! configmeta.json offers, derived settings) and `spark_conf` (spark-defaults.conf properties,
//! secrets, the bitnami rules); `features` derives the optional features' settings.

use std::collections::BTreeMap;

mod features;
mod identity;
mod peers;
mod role;
mod settings;
mod spark_conf;

pub use role::NO_ROLE;

use crate::config::cluster_file::{self, ClusterFile, Settings};
use crate::config::configmeta::{self, ConfigMeta};
use crate::config::env as vars;
use crate::config::model::NodeIdentity;
use crate::config::source::SourceText;
use crate::config::validate::check_property_key;
use crate::config::{ResolvedConfig, Source, Sourced};
use crate::error::{Diagnostic, Diagnostics};

pub use crate::config::inputs::{find_fqdn, is_mount_point, FileValue, Inputs};
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

/// The parsed files, each parsed once by [`Resolver::new`]; parse errors are collected.
struct Parsed<'a> {
    cluster: Option<(ClusterFile, &'a SourceText)>,
    meta: Option<(ConfigMeta, &'a SourceText)>,
}

impl<'a> Parsed<'a> {
    fn new(inputs: &'a Inputs, problems: &mut Diagnostics) -> Parsed<'a> {
        let cluster = inputs.cluster_file.as_ref().and_then(|f| {
            cluster_file::parse(f)
                .map_err(|d| problems.push(d))
                .ok()
                .map(|c| (c, f))
        });
        let meta = inputs.configmeta.as_ref().and_then(|f| {
            configmeta::parse(f)
                .map_err(|d| problems.push(d))
                .ok()
                .map(|m| (m, f))
        });
        Parsed { cluster, meta }
    }

    fn cluster_origin(&self, key: &str) -> Option<Origin> {
        self.cluster.as_ref().map(|(_, f)| {
            Origin::at(
                Source::ClusterFile {
                    file: f.path.clone(),
                },
                f.key_position(key)
                    .or_else(|| key.rsplit('.').next().and_then(|last| f.key_position(last))),
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
                f.key_position(last),
            )
        })
    }
}

/// A YAML/JSON mapping given in variable `var` (e.g. SPARKVISOR_SETTINGS), parsed as a text of its
/// own (`env VAR`, or the `_FILE`'s path): `T` with that text, to place each key.
fn env_document<T: for<'de> serde::Deserialize<'de> + Default>(
    inputs: &Inputs,
    var: &str,
    problems: &mut Diagnostics,
) -> Option<(T, SourceText, Origin)> {
    let (text, origin) = env_value(inputs, var)?;
    let source = SourceText::new(origin.file.clone(), text);
    match cluster_file::parse_document::<T>(&source) {
        Ok(value) => Some((value, source, origin)),
        Err(d) => {
            problems.push(d);
            None
        }
    }
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

/// One pass over the gathered inputs: [`Resolver::new`] parses the cluster file and configmeta.json
/// once and resolves what does not depend on the role definition (the role map, the node's names,
/// the peers), recording the inputs' problems once ([`Resolver::problems`]); [`Resolver::role`]
/// and [`Resolver::resolve`] then report only what is their own, so nothing is found twice.
pub struct Resolver<'a> {
    inputs: &'a Inputs,
    parsed: Parsed<'a>,
    map: BTreeMap<String, String>,
    node: NodeIdentity,
    peers: BTreeMap<String, Sourced<Vec<String>>>,
    problems: Diagnostics,
}

impl<'a> Resolver<'a> {
    /// Parses the inputs' files and resolves the role map, the node's names and the peers.
    pub fn new(inputs: &'a Inputs) -> Resolver<'a> {
        let mut problems = Diagnostics::default();
        let parsed = Parsed::new(inputs, &mut problems);
        let map = role::role_map(inputs, &parsed, &mut problems);
        role::check_file_roles(&parsed, &map, &mut problems);
        let node = identity::resolve_identity(inputs, &parsed, &mut problems);
        let peers = peers::resolve_peers(inputs, &parsed, &map, &mut problems);
        Resolver {
            inputs,
            parsed,
            map,
            node,
            peers,
            problems,
        }
    }

    /// The inputs this resolver reads.
    pub fn inputs(&self) -> &'a Inputs {
        self.inputs
    }

    /// The inputs' own problems (a file that does not parse, a bad role mapping, host name or
    /// peer), each once; neither [`Resolver::role`] nor [`Resolver::resolve`] repeats them.
    pub fn problems(&self) -> &Diagnostics {
        &self.problems
    }

    /// The node's role: --role flag > SPARKVISOR_ROLE > SPARK_MODE > configmeta node.role_id
    /// (mapped through the role map) > cluster file `nodes:` entry for this host > cluster file
    /// `role`. The error lists the role's own problem: an invalid name, or [`NO_ROLE`]; it is empty
    /// when no role was found and the inputs have problems (a file that did not parse may hold the
    /// role: its error says enough).
    pub fn role(&self, cli_role: Option<&str>) -> Result<Sourced<String>, Diagnostics> {
        match role::pick_role(self.inputs, cli_role, &self.parsed, &self.map, &self.node) {
            Some((role, origin)) => match check_role_name(&role) {
                Ok(()) => Ok(Sourced::new(role, origin.source)),
                Err(message) => Err(origin.diagnostic(message).into()),
            },
            None if !self.problems.is_empty() => Err(Diagnostics::default()),
            None => Err(Diagnostic::new("config", NO_ROLE).into()),
        }
    }

    /// Settings, spark-defaults.conf properties and secrets for `role`, with the role's
    /// `defaults:` (from `role_file`) as the lowest settings layer. The error lists this pass's
    /// problems only (the inputs' are in [`Resolver::problems`]); the role's name is taken as
    /// checked (it comes from [`Resolver::role`]).
    pub fn resolve(
        &self,
        role: Sourced<String>,
        role_file: &str,
        role_defaults: &BTreeMap<String, String>,
    ) -> Result<ResolvedConfig, Diagnostics> {
        let mut problems = Diagnostics::default();
        let (inputs, parsed) = (self.inputs, &self.parsed);
        // Settings, lowest precedence first.
        let mut layers = Layers::default();
        for (key, value) in settings::BUILT_IN {
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
            settings::configmeta_settings(meta, parsed, &mut layers, &mut problems);
        }
        if let Some((settings, source, origin)) =
            env_document::<Settings>(inputs, vars::SETTINGS_VAR, &mut problems)
        {
            for (key, value) in settings.0 {
                let at = Origin::at(origin.source.clone(), source.key_position(&key));
                layers.set(&key, value, at, &mut problems);
            }
        }
        for (var, key) in vars::SETTING_VARS {
            if let Some((value, origin)) = env_value(inputs, var) {
                layers.set(key, value, origin, &mut problems);
            }
        }
        settings::derive_settings(&mut layers, inputs, &role.value, &self.node, &self.peers);
        settings::check_prefix_collisions(&layers, &mut problems);

        let (spark_conf, secrets) =
            spark_conf::resolve_conf_and_secrets(inputs, parsed, &layers, &mut problems);

        let settings = layers
            .values
            .into_iter()
            .map(|(k, (v, o))| (k, Sourced::new(v, o.source)))
            .collect();
        problems.into_result(ResolvedConfig {
            role,
            node: self.node.clone(),
            peers: self.peers.clone(),
            settings,
            spark_conf,
            secrets,
        })
    }
}

/// The node's role ([`Resolver::role`]), with the inputs' problems: `Ok` only when there are none.
pub fn resolve_role(
    inputs: &Inputs,
    cli_role: Option<&str>,
) -> Result<Sourced<String>, Diagnostics> {
    let resolver = Resolver::new(inputs);
    let mut problems = resolver.problems().clone();
    match resolver.role(cli_role) {
        Ok(role) => problems.into_result(role),
        Err(d) => {
            problems.extend(d);
            Err(problems)
        }
    }
}

/// Everything else ([`Resolver::resolve`]) for a role given by the caller (its name is checked),
/// with the inputs' problems: `Ok` only when there are none.
pub fn resolve(
    inputs: &Inputs,
    role: Sourced<String>,
    role_file: &str,
    role_defaults: &BTreeMap<String, String>,
) -> Result<ResolvedConfig, Diagnostics> {
    let resolver = Resolver::new(inputs);
    let mut problems = resolver.problems().clone();
    if let Err(message) = check_role_name(&role.value) {
        problems.push(Origin::of(role.source.clone()).diagnostic(message));
    }
    match resolver.resolve(role, role_file, role_defaults) {
        Ok(config) => problems.into_result(config),
        Err(d) => {
            problems.extend(d);
            Err(problems)
        }
    }
}
