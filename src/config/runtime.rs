//! Resolving the injected runtime config: built-in defaults < role defaults < cluster file <
//! configmeta.json < env < `<NAME>_FILE` secrets, each value keeping its [`crate::config::Source`].
//!
//! [`Inputs::gather`] (in `config::inputs`) does all the reading (files, hostname, mounts);
//! [`resolve_role`] and [`resolve`] are pure functions of the gathered inputs, so every precedence
//! rule is unit-testable. Validation collects every problem before failing (docs/configuration.md "Configuration
//! inputs and precedence"); the value rules live in `config::validate`.
//!
//! This module holds the layering machinery (origins, the parsed files, the settings layers) and
//! [`resolve`], which runs one resolver per thing it resolves: `role` (the node's role and the
//! KubeDirector role map), `identity` (hostname, FQDN), `peers`, `settings` (built-in defaults,
//! configmeta.json offers, derived settings) and `spark_conf` (spark-defaults.conf properties,
//! secrets, the bitnami rules); `features` derives the optional features' settings.

use std::collections::BTreeMap;

mod features;
mod identity;
mod peers;
mod role;
mod settings;
mod spark_conf;

pub use role::{resolve_role, NO_ROLE};

use crate::config::cluster_file::{self, ClusterFile, Settings};
use crate::config::configmeta::{self, ConfigMeta};
use crate::config::env as vars;
use crate::config::scan::KeyIndex;
use crate::config::validate::check_property_key;
use crate::config::{ResolvedConfig, Source, Sourced};
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
    let map = role::role_map(inputs, &parsed, &mut problems);
    if let Err(message) = check_role_name(&role.value) {
        problems.push(Origin::of(role.source.clone()).diagnostic(message));
    }

    role::check_file_roles(&parsed, &map, &mut problems);
    let node = identity::resolve_identity(inputs, &parsed, &mut problems);
    let peers = peers::resolve_peers(inputs, &parsed, &map, &mut problems);

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
        settings::configmeta_settings(meta, &parsed, &mut layers, &mut problems);
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
    settings::derive_settings(&mut layers, inputs, &role.value, &node, &peers);
    settings::check_prefix_collisions(&layers, &mut problems);

    let (spark_conf, secrets) =
        spark_conf::resolve_conf_and_secrets(inputs, &parsed, &layers, &mut problems);

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
