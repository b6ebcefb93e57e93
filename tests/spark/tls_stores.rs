//! The probes' store readers against stores written by the real tools: Java 17's `keytool` in its
//! default store type (PKCS#12: PBES2 with AES-256-CBC and an HMAC-SHA256 MAC), in the legacy
//! algorithms older keytools wrote (3DES keys, RC2-40 certificates, HMAC-SHA1), without any
//! protection, and OpenSSL 3's `pkcs12 -export` (default and legacy). Java itself is the oracle
//! for the keys: it converts each PKCS#12 store to JKS, whose reader the key must match.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use std::path::Path;
use std::process::Command;

use sparkvisor::supervision::tls::{build, decrypt_key, read_store};

const PW: &str = "storepass1";

/// The key of `alias` as Java reads it: keytool converts the store to JKS (decrypting the
/// PKCS#12 entry itself), and the JKS reader decrypts that.
fn key_as_java_reads_it(store: &Path, alias: &str) -> Vec<u8> {
    let jks = store.with_extension("converted.jks");
    let (src, dest) = (store.to_str().unwrap(), jks.to_str().unwrap());
    common::keytool(&[
        "-importkeystore",
        "-srckeystore",
        src,
        "-srcstorepass",
        PW,
        "-srcalias",
        alias,
        "-destkeystore",
        dest,
        "-deststoretype",
        "JKS",
        "-deststorepass",
        PW,
        "-noprompt",
    ]);
    let read = read_store(dest, Some(PW)).unwrap();
    decrypt_key(dest, &read.keys[0], PW).unwrap()
}

/// A PKCS#12 file starts with a DER SEQUENCE, a JKS file with FEEDFEED.
fn is_pkcs12(path: &Path) -> bool {
    std::fs::read(path).unwrap().first() == Some(&0x30)
}

/// Java 17's `keytool` without `-storetype`: PKCS#12 stores, read by content; the truststore's
/// certificate is the one keytool exports, the key entry carries it and decrypts to Java's key;
/// the probes' TLS config builds; wrong or missing passwords are refused naming the file.
#[test]
fn keytool_default_pkcs12_stores_give_the_probes_their_tls_identity() {
    if !common::require_keytool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ks_path, ts_path) = common::keytool_default_stores(dir.path(), PW);
    assert!(is_pkcs12(&ks_path) && is_pkcs12(&ts_path));
    let (ks, ts) = (ks_path.to_str().unwrap(), ts_path.to_str().unwrap());
    let cert = std::fs::read(dir.path().join("spark.crt")).unwrap();

    let trust = read_store(ts, Some(PW)).unwrap();
    assert_eq!(trust.trusted, vec![cert.clone()]);
    assert!(trust.keys.is_empty());
    let keys = read_store(ks, Some(PW)).unwrap();
    assert_eq!(keys.keys.len(), 1);
    assert!(keys.trusted.is_empty());
    let entry = &keys.keys[0];
    assert_eq!(entry.alias, "spark");
    assert_eq!(entry.chain, vec![cert]);
    let key = decrypt_key(ks, entry, PW).unwrap();
    assert_eq!(key, key_as_java_reads_it(&ks_path, "spark"));
    assert!(build(ts, Some(PW), Some((ks, Some(PW), Some(PW)))).is_ok());

    let wrong = build(ts, Some("nope"), None).unwrap_err().to_string();
    assert!(
        wrong.starts_with(ts) && wrong.contains("password is incorrect"),
        "{wrong}"
    );
    let wrong = build(ts, Some(PW), Some((ks, Some("nope"), Some(PW))))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.starts_with(ks) && wrong.contains("password is incorrect"),
        "{wrong}"
    );
    let wrong = build(ts, Some(PW), Some((ks, Some(PW), Some("nope"))))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.starts_with(ks) && wrong.contains("key password is incorrect for entry \"spark\""),
        "{wrong}"
    );
    let missing = build(ts, None, None).unwrap_err().to_string();
    assert!(
        missing.starts_with(ts) && missing.contains("no store password"),
        "{missing}"
    );
}

/// What older keytools wrote (Java 8 before 8u301): 3DES-protected keys, RC2-40-encrypted
/// certificates, an HMAC-SHA1 MAC; and a truststore written with no protection at all, which
/// reads without a password.
#[test]
fn legacy_and_unprotected_keytool_pkcs12_stores_read() {
    if !common::require_keytool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.p12");
    let ks = legacy.to_str().unwrap();
    common::keytool(&[
        "-J-Dkeystore.pkcs12.keyProtectionAlgorithm=PBEWithSHA1AndDESede",
        "-J-Dkeystore.pkcs12.certProtectionAlgorithm=PBEWithSHA1AndRC2_40",
        "-J-Dkeystore.pkcs12.macAlgorithm=HmacPBESHA1",
        "-genkeypair",
        "-alias",
        "old",
        "-keyalg",
        "EC",
        "-dname",
        "CN=legacy",
        "-storetype",
        "PKCS12",
        "-keystore",
        ks,
        "-storepass",
        PW,
        "-noprompt",
    ]);
    let store = read_store(ks, Some(PW)).unwrap();
    assert_eq!(store.keys.len(), 1);
    assert_eq!(store.keys[0].chain.len(), 1);
    let key = decrypt_key(ks, &store.keys[0], PW).unwrap();
    assert_eq!(key, key_as_java_reads_it(&legacy, "old"));
    let wrong = read_store(ks, Some("nope")).unwrap_err().to_string();
    assert!(wrong.contains("password is incorrect"), "{wrong}");

    let crt = dir.path().join("old.crt");
    common::keytool(&[
        "-exportcert",
        "-alias",
        "old",
        "-keystore",
        ks,
        "-storepass",
        PW,
        "-file",
        crt.to_str().unwrap(),
    ]);
    let plain = dir.path().join("plain-trust.p12");
    common::keytool(&[
        "-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE",
        "-J-Dkeystore.pkcs12.macAlgorithm=NONE",
        "-importcert",
        "-alias",
        "old",
        "-file",
        crt.to_str().unwrap(),
        "-storetype",
        "PKCS12",
        "-keystore",
        plain.to_str().unwrap(),
        "-storepass",
        PW,
        "-noprompt",
    ]);
    let trust = read_store(plain.to_str().unwrap(), None).unwrap();
    assert_eq!(trust.trusted, vec![std::fs::read(&crt).unwrap()]);
    assert_eq!(trust.trusted[0], store.keys[0].chain[0]);
}

/// OpenSSL 3's `pkcs12 -export` (PBES2/AES-256, HMAC-SHA256) and its `-legacy` form (RC2-40,
/// 3DES, HMAC-SHA1) of keytool's key: the same key and certificate come out.
#[test]
fn openssl_written_pkcs12_stores_read() {
    if !common::require_keytool()
        || !common::require(common::has_command("openssl"), "openssl is not installed")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ks_path, _) = common::keytool_default_stores(dir.path(), PW);
    let cert = std::fs::read(dir.path().join("spark.crt")).unwrap();
    let java_key = key_as_java_reads_it(&ks_path, "spark");
    let pem = dir.path().join("spark.pem");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let passin = format!("pass:{PW}");
    openssl(&[
        "pkcs12",
        "-in",
        ks_path.to_str().unwrap(),
        "-passin",
        &passin,
        "-nodes",
        "-out",
        pem.to_str().unwrap(),
    ]);
    for (name, extra) in [("openssl.p12", &[][..]), ("legacy.p12", &["-legacy"][..])] {
        let p12 = dir.path().join(name);
        let p12 = p12.to_str().unwrap();
        let export = [
            "pkcs12",
            "-export",
            "-in",
            pem.to_str().unwrap(),
            "-name",
            "exported",
            "-passout",
            &passin,
            "-out",
            p12,
        ];
        openssl(&[&export[..], extra].concat());
        let store = read_store(p12, Some(PW)).unwrap();
        assert_eq!(store.keys.len(), 1, "{name}");
        assert_eq!(store.keys[0].alias, "exported");
        assert_eq!(store.keys[0].chain, vec![cert.clone()], "{name}");
        assert_eq!(
            decrypt_key(p12, &store.keys[0], PW).unwrap(),
            java_key,
            "{name}"
        );
    }
}
