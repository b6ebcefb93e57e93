//! Why the probes cannot speak HTTPS with Spark's stores: one error for JKS and PKCS#12 alike
//! (the format's own error is kept inside, [`StoreProblem`]), turned into a logged warning or a
//! probe failure by the callers.

use std::sync::Arc;

use super::jks::JksError;
use super::pkcs12::Pkcs12Error;

/// Why there is no TLS client identity for the probes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// Spark's SSL is off: the probes never need HTTPS.
    #[error("Spark SSL is not enabled (spark.ssl.enabled)")]
    NotEnabled,
    /// SSL is on but no truststore is configured.
    #[error("spark.ssl.trustStore is not set: the probes cannot verify Spark's HTTPS UIs")]
    NoTrustStore,
    /// A store file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The store's path.
        path: String,
        /// The OS error (shared: the installed result is handed to every probe).
        source: Arc<std::io::Error>,
    },
    /// A store (or one of its key entries) cannot be used as it is.
    #[error("{path}: {}{problem}{}", entry_prefix(entry.as_deref()), advice_suffix(*advice, path))]
    Store {
        /// The store's path.
        path: String,
        /// The key entry, when the problem is one entry's (named before the problem).
        entry: Option<String>,
        /// What the format's reader found.
        problem: StoreProblem,
        /// What the user can do about it, when there is something.
        advice: Advice,
    },
    /// The truststore holds no certificate.
    #[error("{0}: no certificate in the truststore")]
    NoCertificate(String),
    /// The keystore holds no private key entry.
    #[error("{0}: no private key entry in the keystore")]
    NoKey(String),
    /// rustls refused the protocol versions.
    #[error("TLS: {0}")]
    Protocol(rustls::Error),
    /// rustls refused the key entry as a client identity.
    #[error("{path}: key entry {alias:?}: {source}")]
    ClientKey {
        /// The keystore's path.
        path: String,
        /// The key entry.
        alias: String,
        /// rustls's reason.
        source: rustls::Error,
    },
}

/// A store format's own error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreProblem {
    /// From the JKS reader.
    #[error("{0}")]
    Jks(JksError),
    /// From the PKCS#12 reader.
    #[error("{0}")]
    Pkcs12(Pkcs12Error),
}

/// Advice added to a store problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Nothing to add.
    None,
    /// The protection is one the probes do not read: convert the store with keytool.
    Convert,
    /// The file is neither JKS nor PKCS#12: say which formats are read, and how to convert.
    Formats,
}

fn entry_prefix(entry: Option<&str>) -> String {
    entry.map_or_else(String::new, |alias| format!("key entry {alias:?}: "))
}

fn advice_suffix(advice: Advice, path: &str) -> String {
    match advice {
        Advice::None => String::new(),
        Advice::Convert => format!("; {}", convert_hint(path)),
        Advice::Formats => format!(
            "; the probes read JKS and PKCS#12 stores: {}",
            convert_hint(path)
        ),
    }
}

/// The keytool command that rewrites `path` as a PKCS#12 store with Java 17's default
/// protection, for stores whose algorithms the probes do not read.
fn convert_hint(path: &str) -> String {
    format!(
        "convert it with `keytool -importkeystore -srckeystore {path} -destkeystore NEW.p12 \
         -deststoretype PKCS12` (keytool of Java 17 or later)"
    )
}
