//! A probe's expected JSON value: one string, or a list of strings any of which matches
//! (`status: [ALIVE, STANDBY]`: a Spark master is ready as the active or as a standby master).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One or more accepted values; written as a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOf(pub Vec<String>);

impl OneOf {
    /// Whether `text` is one of the accepted values.
    pub fn accepts(&self, text: &str) -> bool {
        self.0.iter().any(|v| v == text)
    }
}

impl std::fmt::Display for OneOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one:?}"),
            many => write!(f, "one of {many:?}"),
        }
    }
}

impl From<&str> for OneOf {
    fn from(s: &str) -> Self {
        OneOf(vec![s.to_string()])
    }
}

impl<'de> Deserialize<'de> for OneOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::One(s) => Ok(OneOf(vec![s])),
            Raw::Many(v) if v.is_empty() => Err(serde::de::Error::custom(
                "an empty list accepts nothing: give at least one value",
            )),
            Raw::Many(v) => Ok(OneOf(v)),
        }
    }
}

impl Serialize for OneOf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}
