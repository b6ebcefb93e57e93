//! A reader for Java KeyStore (JKS) files, the store type Spark's `spark.ssl.keyStoreType` and
//! `trustStoreType` default to in the bitnami-compatible settings (docs/ha.md, "TLS"): the trusted
//! certificates, and the private key entries with their certificate chains.
//!
//! The format (all integers big-endian): magic `FEEDFEED`, version (1 or 2), entry count, then per
//! entry a tag (1 = private key, 2 = trusted certificate), an alias (Java's modified UTF-8 with a
//! u16 length), a u64 timestamp and the entry itself; at the end a SHA-1 over the store password
//! (UTF-16BE), the words "Mighty Aphrodite" and every byte before it. A private key is Sun's
//! "key protector": salt(20) ‖ ciphertext ‖ check(20), where the key stream is SHA-1 chained over
//! the password and the salt, and the check is SHA-1 of password ‖ plaintext (a PKCS#8 key).
//! Pure code: bytes in, DER out.

use ring::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};

use super::der;
use super::store::{KeyEntry, ProtectedKey, Store};

const MAGIC: u32 = 0xFEED_FEED;
const SHA1_LEN: usize = 20;
/// OID 1.3.6.1.4.1.42.2.17.1.1 (Sun's JKS key protector), DER-encoded contents.
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

/// Why a store cannot be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JksError {
    /// Not a JKS file; says what it looks like instead.
    #[error("not a JKS keystore ({0})")]
    NotJks(&'static str),
    /// Truncated or malformed.
    #[error("malformed keystore: {0}")]
    Malformed(&'static str),
    /// The integrity digest does not match the password.
    #[error("keystore password is incorrect (or the file was altered)")]
    Integrity,
    /// A key entry's protection is not Sun's JKS key protector.
    #[error("key entry {0:?} is not protected by the JKS key protector")]
    KeyAlgorithm(String),
    /// A key entry does not decrypt with the password.
    #[error("key password is incorrect for entry {0:?}")]
    KeyPassword(String),
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(JksError::Malformed("length overflow"))?;
        let out = self
            .data
            .get(self.pos..end)
            .ok_or(JksError::Malformed("truncated"))?;
        self.pos = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, JksError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([
            *b.first().unwrap_or(&0),
            *b.get(1).unwrap_or(&0),
        ]))
    }

    fn u32(&mut self) -> Result<u32, JksError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, JksError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn utf(&mut self) -> Result<String, JksError> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn certificate(&mut self, version: u32) -> Result<Vec<u8>, JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(JksError::Malformed("certificate type is not X.509"));
            }
        }
        self.bytes()
    }
}

/// A password as Java hashes it: each UTF-16 code unit, big-endian.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Parses a JKS file. With `password`, its integrity digest is checked as `keytool` does.
pub fn parse(data: &[u8], password: Option<&str>) -> Result<Store, JksError> {
    if data.first() == Some(&der::SEQUENCE) {
        return Err(JksError::NotJks("it is PKCS#12"));
    }
    let mut r = Reader { data, pos: 0 };
    match r.u32() {
        Ok(MAGIC) => {}
        Ok(0xCECE_CECE) => return Err(JksError::NotJks("it is JCEKS")),
        _ => return Err(JksError::NotJks("unknown format")),
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::Malformed("unknown version"));
    }
    let count = r.u32()?;
    let mut store = Store::default();
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        r.take(8)?; // creation time
        match tag {
            1 => {
                let protected = r.bytes()?;
                let n = r.u32()?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    chain.push(r.certificate(version)?);
                }
                store.keys.push(KeyEntry {
                    alias,
                    key: ProtectedKey::Jks(protected),
                    chain,
                });
            }
            2 => store.trusted.push(r.certificate(version)?),
            _ => return Err(JksError::Malformed("unknown entry tag")),
        }
    }
    let signed = r.pos;
    let check = r.take(SHA1_LEN)?;
    if let Some(password) = password {
        let mut input = password_bytes(password);
        input.extend_from_slice(b"Mighty Aphrodite");
        input.extend_from_slice(data.get(..signed).unwrap_or_default());
        if digest(&SHA1_FOR_LEGACY_USE_ONLY, &input).as_ref() != check {
            return Err(JksError::Integrity);
        }
    }
    Ok(store)
}

/// Decrypts the JKS-protected key of entry `alias`: a PKCS#8 private key.
pub fn decrypt_key(alias: &str, protected: &[u8], password: &str) -> Result<Vec<u8>, JksError> {
    let refused = || JksError::KeyAlgorithm(alias.to_string());
    // EncryptedPrivateKeyInfo ::= SEQUENCE { SEQUENCE { OID, params }, OCTET STRING }
    let mut info = der::Reader::new(protected)
        .sequence("EncryptedPrivateKeyInfo")
        .map_err(|_| refused())?;
    let oid = info
        .sequence("AlgorithmIdentifier")
        .and_then(|mut alg| alg.expect(der::OID, "algorithm"))
        .map_err(|_| refused())?;
    if oid != KEY_PROTECTOR_OID {
        return Err(refused());
    }
    let encrypted = info
        .expect(der::OCTET_STRING, "encrypted key")
        .map_err(|_| refused())?;
    if encrypted.len() < 2 * SHA1_LEN {
        return Err(refused());
    }
    let (salt, rest) = encrypted.split_at(SHA1_LEN);
    let (cipher, check) = rest.split_at(rest.len() - SHA1_LEN);
    let pw = password_bytes(password);
    let mut plain = Vec::with_capacity(cipher.len());
    let mut block = salt.to_vec();
    for chunk in cipher.chunks(SHA1_LEN) {
        let mut input = pw.clone();
        input.extend_from_slice(&block);
        block = digest(&SHA1_FOR_LEGACY_USE_ONLY, &input).as_ref().to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let mut input = pw;
    input.extend_from_slice(&plain);
    if digest(&SHA1_FOR_LEGACY_USE_ONLY, &input).as_ref() != check {
        return Err(JksError::KeyPassword(alias.to_string()));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A store with one trusted certificate ("abc"), written as keytool lays it out.
    fn store_bytes(password: &str) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&MAGIC.to_be_bytes());
        d.extend_from_slice(&2u32.to_be_bytes());
        d.extend_from_slice(&1u32.to_be_bytes());
        d.extend_from_slice(&2u32.to_be_bytes());
        d.extend_from_slice(&2u16.to_be_bytes());
        d.extend_from_slice(b"ca");
        d.extend_from_slice(&0u64.to_be_bytes());
        d.extend_from_slice(&5u16.to_be_bytes());
        d.extend_from_slice(b"X.509");
        d.extend_from_slice(&3u32.to_be_bytes());
        d.extend_from_slice(b"abc");
        let mut input = password_bytes(password);
        input.extend_from_slice(b"Mighty Aphrodite");
        input.extend_from_slice(&d);
        d.extend_from_slice(digest(&SHA1_FOR_LEGACY_USE_ONLY, &input).as_ref());
        d
    }

    #[test]
    fn trusted_certificates_and_the_integrity_check() {
        let d = store_bytes("changeit");
        let store = parse(&d, Some("changeit")).unwrap();
        assert_eq!(store.trusted, vec![b"abc".to_vec()]);
        assert!(parse(&d, None).is_ok());
        assert_eq!(parse(&d, Some("wrong")).err(), Some(JksError::Integrity));
        assert!(matches!(
            parse(&d[..d.len() - 5], None),
            Err(JksError::Malformed(_))
        ));
        assert!(matches!(parse(b"\x30\x82", None), Err(JksError::NotJks(_))));
        assert!(matches!(parse(b"hello", None), Err(JksError::NotJks(_))));
    }

    #[test]
    fn a_protected_key_round_trips() {
        // Encrypt "pkcs8-bytes-longer-than-one-sha1-block" as Sun's key protector does.
        let plain = b"pkcs8-bytes-longer-than-one-sha1-block".to_vec();
        let pw = password_bytes("secret");
        let salt = [7u8; SHA1_LEN];
        let mut block = salt.to_vec();
        let mut cipher = Vec::new();
        for chunk in plain.chunks(SHA1_LEN) {
            let mut input = pw.clone();
            input.extend_from_slice(&block);
            block = digest(&SHA1_FOR_LEGACY_USE_ONLY, &input).as_ref().to_vec();
            cipher.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
        }
        let mut input = pw;
        input.extend_from_slice(&plain);
        let mut encrypted = salt.to_vec();
        encrypted.extend_from_slice(&cipher);
        encrypted.extend_from_slice(digest(&SHA1_FOR_LEGACY_USE_ONLY, &input).as_ref());
        let mut alg = vec![0x06, KEY_PROTECTOR_OID.len() as u8];
        alg.extend_from_slice(KEY_PROTECTOR_OID);
        alg.extend_from_slice(&[0x05, 0x00]);
        let mut info = vec![0x30, alg.len() as u8];
        info.extend_from_slice(&alg);
        info.extend_from_slice(&[0x04, encrypted.len() as u8]);
        info.extend_from_slice(&encrypted);
        let mut protected = vec![0x30, info.len() as u8];
        protected.extend_from_slice(&info);
        assert_eq!(decrypt_key("k", &protected, "secret").unwrap(), plain);
        assert_eq!(
            decrypt_key("k", &protected, "other").err(),
            Some(JksError::KeyPassword("k".into()))
        );
    }
}
