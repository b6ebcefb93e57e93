//! The cluster file (`SPARKVISOR_CONFIG`): YAML or JSON, strict (unknown keys are errors).
//!
//! ```yaml
//! role: worker                 # optional: this node's role
//! role_map: {spark-master: master}   # optional: extra KubeDirector role id → role mappings
//! nodes: {spark-w1: worker}    # optional: hostname or FQDN → role (beats `role`)
//! peers: {master: [m1.example, m2.example]}
//! settings: {spark.master_port: 7077, sizing_policy: {cpu_overcommit: 2}}   # nested maps flatten
//! spark_conf: {spark.eventLog.enabled: true}
//! secrets: {spark.authenticate.secret: s3cret}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::config::scan::check_nesting;
use crate::config::source::SourceText;
use crate::error::Diagnostic;

/// The parsed cluster file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// This node's role.
    #[serde(default)]
    pub role: Option<String>,
    /// Extra KubeDirector role id → sparkvisor role mappings.
    #[serde(default, deserialize_with = "unique_map")]
    pub role_map: BTreeMap<String, String>,
    /// Hostname or FQDN → role.
    #[serde(default, deserialize_with = "unique_map")]
    pub nodes: BTreeMap<String, String>,
    /// Role → FQDNs of the nodes in it.
    #[serde(default, deserialize_with = "unique_map")]
    pub peers: BTreeMap<String, Vec<String>>,
    /// Settings; nested maps are flattened into dotted keys.
    #[serde(default)]
    pub settings: Settings,
    /// spark-defaults.conf properties.
    #[serde(default, deserialize_with = "unique_map")]
    pub spark_conf: BTreeMap<String, Scalar>,
    /// Secrets by name.
    #[serde(default, deserialize_with = "unique_map")]
    pub secrets: BTreeMap<String, Scalar>,
}

/// A map whose keys must be unique: a key given twice is an error at its line (serde's maps keep the
/// last silently). A value of the wrong type is reported by its type only, never echoed: the map
/// may be `secrets`.
pub fn unique_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueMap<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a string"), &self))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a number"), &self))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a number"), &self))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a number"), &self))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a boolean"), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            // `secrets:` with nothing after it: an empty map, as before.
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key_seed(NewKey(&out))? {
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    // `any`, not `map`: the YAML parser would otherwise report a wrong scalar itself, echoing it.
    d.deserialize_any(UniqueMap(std::marker::PhantomData))
}

/// A map key that must not be in the map yet. The check runs inside the key's own deserialization,
/// so the parser places a "given twice" error at the second occurrence of the key itself (checked
/// after the key was read, the YAML parser would place it at the start of the map).
struct NewKey<'a, V>(&'a BTreeMap<String, V>);

impl<'de, V> de::DeserializeSeed<'de> for NewKey<'_, V> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_string(self)
    }
}

impl<'de, V> Visitor<'de> for NewKey<'_, V> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        if self.0.contains_key(key) {
            return Err(E::custom(format!("key {key:?} given twice")));
        }
        Ok(key.to_string())
    }
}

/// A string, number or boolean, kept as the text a template or a properties file will see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor).map(Scalar)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// Settings as flat dotted keys (`{spark: {home: /x}}` and `{spark.home: /x}` are the same).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = BTreeMap::new();
        d.deserialize_map(SettingsVisitor {
            prefix: String::new(),
            out: &mut out,
        })?;
        Ok(Settings(out))
    }
}

struct SettingsVisitor<'a> {
    prefix: String,
    out: &'a mut BTreeMap<String, String>,
}

/// One settings value: a scalar, or a nested map flattened under `prefix`.
struct SettingsValue<'a> {
    key: String,
    out: &'a mut BTreeMap<String, String>,
}

impl<'de> de::DeserializeSeed<'de> for SettingsValue<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(SettingsValueVisitor {
            key: self.key,
            out: self.out,
        })
    }
}

struct SettingsValueVisitor<'a> {
    key: String,
    out: &'a mut BTreeMap<String, String>,
}

impl SettingsValueVisitor<'_> {
    fn put<E: de::Error>(self, value: String) -> Result<(), E> {
        if self.out.insert(self.key.clone(), value).is_some() {
            return Err(E::custom(format!("setting {:?} given twice", self.key)));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for SettingsValueVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or a map of settings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.put(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.put(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.put(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.put(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.put(v.to_string())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        SettingsVisitor {
            prefix: format!("{}.", self.key),
            out: self.out,
        }
        .visit_map(map)
    }
}

impl<'de> Visitor<'de> for SettingsVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of settings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(SettingsValue {
                key: format!("{}{key}", self.prefix),
                out: self.out,
            })?;
        }
        Ok(())
    }
}

/// True when the text is JSON rather than YAML: it opens with `{` followed by `"` or `}`
/// (a YAML flow mapping such as `{spark.home: /x}` has an unquoted key).
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start()
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim_start().starts_with(['"', '}']))
}

/// Parses YAML or JSON into `T`, turning a parse error into a Diagnostic at the position the parser
/// gives. Whitespace-only text parses as `T::default()`.
pub fn parse_document<T: for<'de> Deserialize<'de> + Default>(
    source: &SourceText,
) -> Result<T, Diagnostic> {
    let text = source.text.as_str();
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    check_nesting(&source.path, text)?;
    if looks_like_json(text) {
        serde_json::from_str(text).map_err(|e| source.json_error(&e))
    } else {
        serde_yaml::from_str(text).map_err(|e| source.yaml_error(&e))
    }
}

/// Parses a cluster file.
pub fn parse(source: &SourceText) -> Result<ClusterFile, Diagnostic> {
    parse_document(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: &str, text: &str) -> Result<ClusterFile, Diagnostic> {
        super::parse(&SourceText::new(file, text))
    }

    #[test]
    fn nested_settings_flatten() {
        let c = parse(
            "c.yaml",
            "settings:\n  spark:\n    home: /x\n  sizing_policy.cpu_overcommit: 2\n",
        )
        .unwrap();
        assert_eq!(c.settings.0["spark.home"], "/x");
        assert_eq!(c.settings.0["sizing_policy.cpu_overcommit"], "2");
    }

    #[test]
    fn unknown_key_has_position() {
        let d = parse("c.yaml", "role: worker\nrols: x\n").unwrap_err();
        assert_eq!(d.line, Some(2));
        assert!(d.message.contains("unknown field"), "{d}");
        let d = parse("c.json", "{\"role\": \"w\",\n \"bogus\": 1}").unwrap_err();
        assert_eq!(d.line, Some(2));
    }

    #[test]
    fn duplicate_keys_are_refused_and_secrets_never_echoed() {
        for (section, text) in [
            ("secrets", "secrets:\n  a: x\n  b: y\n  a: z\n"),
            ("spark_conf", "spark_conf:\n  a: x\n  b: y\n  a: z\n"),
            ("peers", "peers:\n  a: [x]\n  b: [y]\n  a: [z]\n"),
        ] {
            let d = parse("c.yaml", text).unwrap_err();
            assert_eq!(d.line, Some(4), "{section}: {d}");
            assert!(d.message.contains("\"a\" given twice"), "{section}: {d}");
        }
        let d = parse("c.json", "{\"secrets\": {\"a\": \"x\",\n \"a\": \"y\"}}").unwrap_err();
        assert_eq!(d.line, Some(2), "{d}");
        let d = parse("c.yaml", "secrets: s3cret-value\n").unwrap_err();
        assert!(!d.to_string().contains("s3cret-value"), "{d}");
        let d = parse("c.json", "{\"secrets\": \"s3cret-value\"}").unwrap_err();
        assert!(!d.to_string().contains("s3cret-value"), "{d}");
    }
}
