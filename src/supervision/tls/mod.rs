//! The TLS client identity of the probes (docs/ha.md, "TLS"): with Spark's SSL on
//! (`spark.ssl.enabled`, `SPARK_SSL_ENABLED`), a Spark web UI's plain port only redirects to its
//! HTTPS port, so the readiness probes and `wait_for` gates follow that redirect and speak HTTPS
//! with what Spark itself is configured with: the server is verified against the certificates of
//! `spark.ssl.trustStore`, and the key and chain of `spark.ssl.keyStore` are presented when the
//! server asks for a client certificate (`spark.ssl.needClientAuth`, on by default in the
//! bitnami-compatible settings).
//!
//! Host names are not checked, as Spark's own TLS connections do not check them: a cluster's
//! certificate rarely names `127.0.0.1` or every node; the chain must still end at a trusted
//! certificate. The identity is read once at start (before the agent drops the capabilities that
//! let root read a service user's files) and kept in one process-wide slot, so the probe threads
//! and the `wait_for` threads reach it without threading it through the supervisor.

pub mod der;
mod error;
pub mod jks;
pub mod pkcs12;
pub mod store;

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

use crate::config::ResolvedConfig;
pub use error::{Advice, StoreProblem, TlsError};
use store::{KeyEntry, ProtectedKey, Store};

/// The probes' TLS client config: `None` until [`install`]; `Err` says why HTTPS cannot be used.
static CLIENT: OnceLock<Result<Arc<ClientConfig>, TlsError>> = OnceLock::new();

/// Sets the probes' TLS identity from the resolved Spark SSL settings (once; later calls are
/// ignored). Returns a problem to log when SSL is on but its stores cannot be used.
pub fn install(config: &ResolvedConfig) -> Option<TlsError> {
    let built = from_spark(config)?;
    let problem = built.as_ref().err().cloned();
    let _ = CLIENT.set(built.map(Arc::new));
    problem
}

/// The probes' TLS client config, or why there is none.
pub fn client() -> Result<Arc<ClientConfig>, TlsError> {
    match CLIENT.get() {
        Some(result) => result.clone(),
        None => Err(TlsError::NotEnabled),
    }
}

fn is_true(config: &ResolvedConfig, key: &str) -> bool {
    config
        .spark_conf
        .get(key)
        .is_some_and(|v| matches!(v.value.trim(), "true" | "yes" | "1"))
}

fn secret<'a>(config: &'a ResolvedConfig, key: &str) -> Option<&'a str> {
    config
        .secrets
        .get(key)
        .map(|s| s.expose())
        .filter(|s| !s.is_empty())
}

/// The client config for Spark's SSL settings: `None` when SSL is off.
pub fn from_spark(config: &ResolvedConfig) -> Option<Result<ClientConfig, TlsError>> {
    if !is_true(config, "spark.ssl.enabled") {
        return None;
    }
    let conf = |key: &str| config.spark_conf.get(key).map(|v| v.value.clone());
    let Some(truststore) = conf("spark.ssl.trustStore") else {
        return Some(Err(TlsError::NoTrustStore));
    };
    let keystore = conf("spark.ssl.keyStore");
    let store_password = secret(config, "spark.ssl.keyStorePassword");
    let key_password = secret(config, "spark.ssl.keyPassword").or(store_password);
    Some(build(
        &truststore,
        secret(config, "spark.ssl.trustStorePassword"),
        keystore
            .as_deref()
            .map(|k| (k, store_password, key_password)),
    ))
}

/// Reads a key or trust store, JKS or PKCS#12, told apart by content as Java does
/// (`keystore.type.compat`): whatever `spark.ssl.*StoreType` says, a JKS file starts with the
/// magic `FEEDFEED` and a PKCS#12 file with a DER SEQUENCE.
pub fn read_store(path: &str, password: Option<&str>) -> Result<Store, TlsError> {
    let data = std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_string(),
        source: Arc::new(e),
    })?;
    let store_error = |problem, advice| TlsError::Store {
        path: path.to_string(),
        entry: None,
        problem,
        advice,
    };
    if data.first() == Some(&der::SEQUENCE) {
        return pkcs12::parse(&data, password).map_err(|e| {
            let advice = match e {
                pkcs12::Pkcs12Error::Unsupported(_) => Advice::Convert,
                _ => Advice::None,
            };
            store_error(StoreProblem::Pkcs12(e), advice)
        });
    }
    jks::parse(&data, password).map_err(|e| {
        let advice = match e {
            jks::JksError::NotJks(_) => Advice::Formats,
            _ => Advice::None,
        };
        store_error(StoreProblem::Jks(e), advice)
    })
}

/// The PKCS#8 private key of `entry` (of the store at `path`), decrypted with `password`.
pub fn decrypt_key(path: &str, entry: &KeyEntry, password: &str) -> Result<Vec<u8>, TlsError> {
    let alias = &entry.alias;
    let store_error = |entry, problem, advice| TlsError::Store {
        path: path.to_string(),
        entry,
        problem,
        advice,
    };
    match &entry.key {
        ProtectedKey::Jks(protected) => jks::decrypt_key(alias, protected, password).map_err(|e| {
            let advice = match e {
                jks::JksError::KeyAlgorithm(_) => Advice::Convert,
                _ => Advice::None,
            };
            store_error(None, StoreProblem::Jks(e), advice)
        }),
        ProtectedKey::Pkcs12(protected) => {
            pkcs12::decrypt_key(alias, protected, password).map_err(|e| match e {
                pkcs12::Pkcs12Error::Unsupported(_) => store_error(
                    Some(alias.clone()),
                    StoreProblem::Pkcs12(e),
                    Advice::Convert,
                ),
                _ => store_error(None, StoreProblem::Pkcs12(e), Advice::None),
            })
        }
        ProtectedKey::Plain(key) => Ok(key.clone()),
    }
}

/// A client config trusting the certificates of `truststore` and presenting the first key entry
/// of `keystore` (path, store password, key password) when asked for a client certificate.
pub fn build(
    truststore: &str,
    trust_password: Option<&str>,
    keystore: Option<(&str, Option<&str>, Option<&str>)>,
) -> Result<ClientConfig, TlsError> {
    let trust = read_store(truststore, trust_password)?;
    let mut trusted: Vec<CertificateDer<'static>> = trust
        .trusted
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    // A store used as both (one file for keyStore and trustStore) trusts its own chains too.
    trusted.extend(
        trust
            .keys
            .iter()
            .flat_map(|k| k.chain.iter().cloned().map(CertificateDer::from)),
    );
    if trusted.is_empty() {
        return Err(TlsError::NoCertificate(truststore.to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(trusted.iter().cloned());
    let webpki = if roots.is_empty() {
        None
    } else {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .ok()
    };
    let verifier = TrustStoreVerifier {
        trusted,
        webpki,
        schemes: provider
            .signature_verification_algorithms
            .supported_schemes(),
        provider: Arc::clone(&provider),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocol)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let Some((path, store_password, key_password)) = keystore else {
        return Ok(builder.with_no_client_auth());
    };
    let store = read_store(path, store_password)?;
    let entry = store
        .keys
        .first()
        .ok_or_else(|| TlsError::NoKey(path.to_string()))?;
    let key = decrypt_key(path, entry, key_password.unwrap_or_default())?;
    let chain: Vec<CertificateDer<'static>> = entry
        .chain
        .iter()
        .cloned()
        .map(CertificateDer::from)
        .collect();
    builder
        .with_client_auth_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .map_err(|source| TlsError::ClientKey {
            path: path.to_string(),
            alias: entry.alias.clone(),
            source,
        })
}

/// Accepts a server whose certificate is one of the trusted ones (self-signed cluster
/// certificates, as `keytool -genkeypair` makes them), or whose chain ends at one, whatever
/// names it carries.
#[derive(Debug)]
struct TrustStoreVerifier {
    trusted: Vec<CertificateDer<'static>>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    schemes: Vec<SignatureScheme>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for TrustStoreVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self
            .trusted
            .iter()
            .any(|t| t.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(webpki) = &self.webpki else {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
