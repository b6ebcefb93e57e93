//! spark-defaults.conf properties and secrets, and the consistency rules of the bitnami image
//! (authentication, encryption, SSL) so its users get the same behaviour.

use std::collections::BTreeMap;

use super::settings::{DEFAULT_NODEGROUP, SPARK_HOME};
use super::{env_document, env_value, features, set_prop, Layers, Origin, Parsed, Props};
use crate::config::cluster_file::Scalar;
use crate::config::env as vars;
use crate::config::inputs::Inputs;
use crate::config::units;
use crate::config::{Secret, Source, Sourced};
use crate::error::Diagnostics;

/// spark-defaults.conf properties and secrets: cluster file < configmeta (role `secret_keys`) <
/// SPARKVISOR_SPARK_CONF < the bitnami-compatible variables; then the bitnami consistency rules.
pub(super) fn resolve_conf_and_secrets(
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
        let ng_id = meta
            .node
            .nodegroup_id
            .clone()
            .unwrap_or_else(|| DEFAULT_NODEGROUP.into());
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
    if let Some((props, _, origin)) =
        env_document::<BTreeMap<String, Scalar>>(inputs, vars::SPARK_CONF_VAR, problems)
    {
        for (key, Scalar(value)) in props {
            set_prop(&mut conf, &key, value, origin.clone(), problems);
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
        let default_conf_dir = format!("{SPARK_HOME}/conf");
        let conf_dir = layers
            .get("spark.conf_dir")
            .unwrap_or(default_conf_dir.as_str());
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
