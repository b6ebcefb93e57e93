//! A reader for PKCS#12 key and trust stores (RFC 7292), the type `keytool` of Java 9 and later
//! writes by default, and which Java reads even where the store type says JKS
//! (`keystore.type.compat`): the trusted certificates, and the private key entries with their
//! certificate chains.
//!
//! The layout: `PFX { version 3, authSafe ContentInfo (data), macData }`; the authenticated safe is
//! a sequence of ContentInfos, each plain (`data`) or password-encrypted (`encryptedData`), holding
//! SafeContents: bags of certificates (`certBag`), keys (`pkcs8ShroudedKeyBag`, or a plain
//! `keyBag`) and nested SafeContents. A key and its certificate share a `localKeyId` attribute;
//! certificates without one are the trusted entries (keytool marks them with Oracle's
//! trusted-key-usage attribute; OpenSSL writes CA certificates so). The cryptography is in
//! [`pbe`]. Pure code: bytes in, DER out.

mod pbe;

use super::der::{self, DerError, Reader};
use super::store::{KeyEntry, ProtectedKey, Store};

/// DER contents of the OIDs of the PKCS#12 structure.
mod oid {
    /// 1.2.840.113549.1.7.1 and .6: pkcs7-data, pkcs7-encryptedData.
    pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    pub const ENCRYPTED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];
    /// 1.2.840.113549.1.12.10.1.N: the bag types (keyBag 1, pkcs8ShroudedKeyBag 2, certBag 3,
    /// crlBag 4, secretBag 5, safeContentsBag 6).
    pub const BAG: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01];
    /// 1.2.840.113549.1.9.22.1: an X.509 certificate in a certBag.
    pub const X509_CERTIFICATE: &[u8] =
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01];
    /// 1.2.840.113549.1.9.20 and .21: the friendlyName and localKeyId bag attributes.
    pub const FRIENDLY_NAME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14];
    pub const LOCAL_KEY_ID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x15];
}

/// How deep safeContentsBags may nest: writers use none; this only bounds hostile input.
const MAX_NESTING: usize = 4;

/// Why a PKCS#12 store cannot be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Pkcs12Error {
    /// Truncated or malformed; says which part.
    #[error("malformed PKCS#12 store: bad {0}")]
    Malformed(&'static str),
    /// The integrity MAC does not match the password.
    #[error("keystore password is incorrect (or the file was altered)")]
    Integrity,
    /// Encrypted certificates, and no password to decrypt them with.
    #[error("its certificates are encrypted and no store password is set")]
    NoPassword,
    /// Protection this reader does not implement; names the algorithm.
    #[error("unsupported PKCS#12 protection: {0}")]
    Unsupported(String),
    /// A key entry does not decrypt with the password.
    #[error("key password is incorrect for entry {0:?}")]
    KeyPassword(String),
}

impl From<DerError> for Pkcs12Error {
    fn from(e: DerError) -> Self {
        Pkcs12Error::Malformed(e.0)
    }
}

/// A bag's contents with the attributes the store needs.
#[derive(Debug)]
struct Bag {
    item: Item,
    local_key_id: Option<Vec<u8>>,
    friendly_name: Option<String>,
}

#[derive(Debug)]
enum Item {
    Certificate(Vec<u8>),
    Key(ProtectedKey),
}

/// Parses a PKCS#12 file. With `password`, the integrity MAC is checked as `keytool` does, and
/// encrypted certificates are decrypted; without, only unencrypted certificates can be read.
pub fn parse(data: &[u8], password: Option<&str>) -> Result<Store, Pkcs12Error> {
    let mut pfx = Reader::new(data).sequence("PFX")?;
    if pfx.uint("PFX version")? != 3 {
        return Err(Pkcs12Error::Malformed("PFX version (not 3)"));
    }
    let (content_type, content) = content_info(&mut pfx)?;
    if content_type != oid::DATA {
        return Err(Pkcs12Error::Unsupported(
            "public-key integrity mode (the authenticated safe is signed data)".into(),
        ));
    }
    let auth_safe = data_contents(content)?;
    if let (Some(mac_data), Some(password)) = (pfx.optional(der::SEQUENCE, "MacData")?, password) {
        pbe::verify_mac(mac_data, auth_safe, password)?;
    }
    let mut bags = Vec::new();
    let mut safes = Reader::new(auth_safe).sequence("AuthenticatedSafe")?;
    while !safes.is_empty() {
        let (content_type, content) = content_info(&mut safes)?;
        if content_type == oid::DATA {
            read_bags(data_contents(content)?, &mut bags, 0)?;
        } else if content_type == oid::ENCRYPTED_DATA {
            let password = password.ok_or(Pkcs12Error::NoPassword)?;
            let plain = decrypt_data(content, password)?.ok_or(Pkcs12Error::Integrity)?;
            read_bags(&plain, &mut bags, 0)?;
        } else {
            return Err(Pkcs12Error::Unsupported(format!(
                "a safe of content type {} (public-key privacy mode)",
                pbe::dotted(content_type)
            )));
        }
    }
    Ok(assemble(bags))
}

/// `ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }`: (type, content).
fn content_info<'a>(r: &mut Reader<'a>) -> Result<(&'a [u8], &'a [u8]), Pkcs12Error> {
    let mut info = r.sequence("ContentInfo")?;
    let content_type = info.expect(der::OID, "ContentInfo type")?;
    let content = info.expect(der::CONTEXT_0, "ContentInfo content")?;
    Ok((content_type, content))
}

/// The OCTET STRING inside a pkcs7-data content.
fn data_contents(content: &[u8]) -> Result<&[u8], Pkcs12Error> {
    Ok(Reader::new(content).expect(der::OCTET_STRING, "data content (not a DER OCTET STRING)")?)
}

/// `EncryptedData ::= SEQUENCE { version, EncryptedContentInfo ::= SEQUENCE { contentType,
/// contentEncryptionAlgorithm, encryptedContent [0] IMPLICIT OCTET STRING } }`, decrypted.
fn decrypt_data(content: &[u8], password: &str) -> Result<Option<Vec<u8>>, Pkcs12Error> {
    let mut encrypted = Reader::new(content).sequence("EncryptedData")?;
    encrypted.uint("EncryptedData version")?;
    let mut info = encrypted.sequence("EncryptedContentInfo")?;
    info.expect(der::OID, "EncryptedContentInfo type")?;
    let algorithm = info.expect(der::SEQUENCE, "content encryption algorithm")?;
    let element = info.element("encrypted content")?;
    let ciphertext = match element.tag {
        der::CONTEXT_0_PRIMITIVE => element.contents.to_vec(),
        // The constructed form: a series of OCTET STRINGs (BER writers).
        der::CONTEXT_0 => {
            let mut parts = Reader::new(element.contents);
            let mut out = Vec::new();
            while !parts.is_empty() {
                out.extend_from_slice(parts.expect(der::OCTET_STRING, "encrypted content")?);
            }
            out
        }
        _ => return Err(Pkcs12Error::Malformed("encrypted content")),
    };
    pbe::decrypt(algorithm, &ciphertext, password)
}

/// `SafeContents ::= SEQUENCE OF SafeBag`, `SafeBag ::= SEQUENCE { bagId OID, bagValue [0]
/// EXPLICIT ANY, bagAttributes SET OF Attribute OPTIONAL }`: the certificates and keys.
fn read_bags(safe_contents: &[u8], out: &mut Vec<Bag>, depth: usize) -> Result<(), Pkcs12Error> {
    let mut bags = Reader::new(safe_contents).sequence("SafeContents")?;
    while !bags.is_empty() {
        let mut bag = bags.sequence("SafeBag")?;
        let bag_id = bag.expect(der::OID, "SafeBag type")?;
        let value = bag.expect(der::CONTEXT_0, "SafeBag value")?;
        let item = match bag_id.strip_prefix(oid::BAG) {
            Some([1]) => Item::Key(ProtectedKey::Plain(single(value, "keyBag")?.to_vec())),
            Some([2]) => Item::Key(ProtectedKey::Pkcs12(
                single(value, "pkcs8ShroudedKeyBag")?.to_vec(),
            )),
            Some([3]) => match certificate(value)? {
                Some(cert) => Item::Certificate(cert),
                None => continue, // an SDSI certificate: nothing TLS can use
            },
            Some([6]) if depth < MAX_NESTING => {
                read_bags(single(value, "safeContentsBag")?, out, depth + 1)?;
                continue;
            }
            Some([6]) => return Err(Pkcs12Error::Malformed("safeContentsBag (nested too deep)")),
            // CRLs, secret keys and unknown bags: not the probes' business.
            _ => continue,
        };
        let (local_key_id, friendly_name) = match bag.optional(der::SET, "bag attributes")? {
            Some(attributes) => bag_attributes(attributes)?,
            None => (None, None),
        };
        out.push(Bag {
            item,
            local_key_id,
            friendly_name,
        });
    }
    Ok(())
}

/// The one SEQUENCE `value` holds, all of its bytes.
fn single<'a>(value: &'a [u8], what: &'static str) -> Result<&'a [u8], Pkcs12Error> {
    let mut r = Reader::new(value);
    let element = r.element(what)?;
    if element.tag != der::SEQUENCE || !r.is_empty() {
        return Err(Pkcs12Error::Malformed(what));
    }
    Ok(element.raw)
}

/// `CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT OCTET STRING }`: the DER of an
/// X.509 certificate, `None` for other certificate types.
fn certificate(value: &[u8]) -> Result<Option<Vec<u8>>, Pkcs12Error> {
    let mut bag = Reader::new(value).sequence("certBag")?;
    let cert_type = bag.expect(der::OID, "certBag type")?;
    let cert_value = bag.expect(der::CONTEXT_0, "certBag value")?;
    if cert_type != oid::X509_CERTIFICATE {
        return Ok(None);
    }
    let cert = Reader::new(cert_value).expect(der::OCTET_STRING, "certificate")?;
    Ok(Some(cert.to_vec()))
}

/// The localKeyId and friendlyName among a bag's attributes (`SEQUENCE { OID, SET OF value }`).
fn bag_attributes(set: &[u8]) -> Result<(Option<Vec<u8>>, Option<String>), Pkcs12Error> {
    let (mut local_key_id, mut friendly_name) = (None, None);
    let mut attributes = Reader::new(set);
    while !attributes.is_empty() {
        let mut attribute = attributes.sequence("bag attribute")?;
        let attribute_type = attribute.expect(der::OID, "bag attribute type")?;
        let mut values = Reader::new(attribute.expect(der::SET, "bag attribute values")?);
        if attribute_type == oid::LOCAL_KEY_ID {
            local_key_id = Some(values.expect(der::OCTET_STRING, "localKeyId")?.to_vec());
        } else if attribute_type == oid::FRIENDLY_NAME {
            let bmp = values.expect(der::BMP_STRING, "friendlyName")?;
            let units: Vec<u16> = bmp
                .chunks_exact(2)
                .filter_map(|c| <[u8; 2]>::try_from(c).ok())
                .map(u16::from_be_bytes)
                .collect();
            friendly_name = Some(String::from_utf16_lossy(&units));
        }
    }
    Ok((local_key_id, friendly_name))
}

/// The store from its bags: each key with the certificate sharing its localKeyId and the chain
/// above it; the certificates that belong to no key are the trusted ones.
fn assemble(bags: Vec<Bag>) -> Store {
    let mut certs: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::new();
    let mut keys = Vec::new();
    for bag in bags {
        match bag.item {
            Item::Certificate(cert) => certs.push((bag.local_key_id, cert)),
            Item::Key(key) => keys.push((bag.local_key_id, bag.friendly_name, key)),
        }
    }
    let all: Vec<&[u8]> = certs.iter().map(|(_, c)| c.as_slice()).collect();
    let mut store = Store::default();
    for (id, name, key) in keys {
        let leaf = id.as_ref().and_then(|id| {
            certs
                .iter()
                .find(|(cert_id, _)| cert_id.as_ref() == Some(id))
                .map(|(_, cert)| cert.as_slice())
        });
        store.keys.push(KeyEntry {
            alias: name.unwrap_or_default(),
            key,
            chain: leaf.map(|leaf| chain_from(leaf, &all)).unwrap_or_default(),
        });
    }
    store.trusted = certs
        .into_iter()
        .filter(|(id, _)| id.is_none())
        .map(|(_, cert)| cert)
        .collect();
    store
}

/// `leaf` followed by its issuers among `certs`, as far as they go (and no cert twice).
fn chain_from(leaf: &[u8], certs: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut chain = vec![leaf.to_vec()];
    let mut current = leaf;
    while let Some((issuer, subject)) = names(current) {
        if issuer == subject {
            break; // self-signed: the top
        }
        let next = certs
            .iter()
            .find(|c| names(c).is_some_and(|(_, s)| s == issuer) && !chain.iter().any(|k| k == *c));
        let Some(next) = next else { break };
        chain.push(next.to_vec());
        current = next;
    }
    chain
}

/// A certificate's issuer and subject Names (raw DER), to link a chain.
fn names(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut cert = Reader::new(cert).sequence("Certificate").ok()?;
    let mut tbs = cert.sequence("TBSCertificate").ok()?;
    tbs.optional(der::CONTEXT_0, "version").ok()?;
    tbs.expect(der::INTEGER, "serialNumber").ok()?;
    tbs.expect(der::SEQUENCE, "signature").ok()?;
    let issuer = tbs.element("issuer").ok()?.raw;
    tbs.expect(der::SEQUENCE, "validity").ok()?;
    let subject = tbs.element("subject").ok()?.raw;
    Some((issuer, subject))
}

/// Decrypts a pkcs8ShroudedKeyBag (`EncryptedPrivateKeyInfo ::= SEQUENCE { algorithm,
/// encryptedData OCTET STRING }`) of entry `alias`: a PKCS#8 private key.
pub fn decrypt_key(alias: &str, protected: &[u8], password: &str) -> Result<Vec<u8>, Pkcs12Error> {
    let mut info = Reader::new(protected).sequence("EncryptedPrivateKeyInfo")?;
    let algorithm = info.expect(der::SEQUENCE, "key encryption algorithm")?;
    let ciphertext = info.expect(der::OCTET_STRING, "encrypted key")?;
    let wrong = || Pkcs12Error::KeyPassword(alias.to_string());
    let plain = pbe::decrypt(algorithm, ciphertext, password)?.ok_or_else(wrong)?;
    // Padding that happens to look right: a wrong password still yields no PKCS#8 SEQUENCE.
    let mut r = Reader::new(&plain);
    match r.element("PrivateKeyInfo") {
        Ok(e) if e.tag == der::SEQUENCE && r.is_empty() => Ok(plain),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::supervision::tls::der::write::{seq, tlv};

    /// A certificate shaped enough for chain linking: issuer and subject names.
    fn cert(issuer: &str, subject: &str) -> Vec<u8> {
        let name = |cn: &str| seq(&[tlv(der::SET, &seq(&[tlv(0x0c, cn.as_bytes())]))]);
        let tbs = seq(&[
            tlv(der::CONTEXT_0, &tlv(der::INTEGER, &[2])),
            tlv(der::INTEGER, subject.as_bytes()),
            seq(&[tlv(der::OID, &[0x2a, 3])]),
            name(issuer),
            seq(&[]),
            name(subject),
        ]);
        seq(&[tbs])
    }

    fn attributes(id: Option<&[u8]>, name: Option<&str>) -> Vec<u8> {
        let mut attrs = Vec::new();
        if let Some(id) = id {
            attrs.push(seq(&[
                tlv(der::OID, oid::LOCAL_KEY_ID),
                tlv(der::SET, &tlv(der::OCTET_STRING, id)),
            ]));
        }
        if let Some(name) = name {
            let bmp: Vec<u8> = name.encode_utf16().flat_map(u16::to_be_bytes).collect();
            attrs.push(seq(&[
                tlv(der::OID, oid::FRIENDLY_NAME),
                tlv(der::SET, &tlv(der::BMP_STRING, &bmp)),
            ]));
        }
        tlv(der::SET, &attrs.concat())
    }

    fn bag(kind: u8, value: Vec<u8>, attrs: Vec<u8>) -> Vec<u8> {
        seq(&[
            tlv(der::OID, &[oid::BAG, &[kind]].concat()),
            tlv(der::CONTEXT_0, &value),
            attrs,
        ])
    }

    fn cert_bag(cert: &[u8], id: Option<&[u8]>) -> Vec<u8> {
        let value = seq(&[
            tlv(der::OID, oid::X509_CERTIFICATE),
            tlv(der::CONTEXT_0, &tlv(der::OCTET_STRING, cert)),
        ]);
        bag(3, value, attributes(id, None))
    }

    fn data(contents: &[u8]) -> Vec<u8> {
        seq(&[
            tlv(der::OID, oid::DATA),
            tlv(der::CONTEXT_0, &tlv(der::OCTET_STRING, contents)),
        ])
    }

    /// A PFX without a MAC, as `keytool -J-Dkeystore.pkcs12.macAlgorithm=NONE` writes it.
    fn pfx(safes: &[Vec<u8>]) -> Vec<u8> {
        seq(&[tlv(der::INTEGER, &[3]), data(&seq(safes))])
    }

    #[test]
    fn keys_get_their_chain_and_certificates_of_no_key_are_trusted() {
        let (root, ca, leaf, other) = (
            cert("root", "root"),
            cert("root", "ca"),
            cert("ca", "leaf"),
            cert("other", "other"),
        );
        let key = seq(&[tlv(der::INTEGER, &[0]), tlv(der::OCTET_STRING, b"k")]);
        let certs = seq(&[
            cert_bag(&other, None),
            cert_bag(&root, None),
            cert_bag(&leaf, Some(b"id1")),
            cert_bag(&ca, None),
        ]);
        // The key sits in a nested safeContentsBag, with its friendly name.
        let keys = seq(&[bag(
            6,
            seq(&[bag(1, key.clone(), attributes(Some(b"id1"), Some("spark")))]),
            attributes(None, None),
        )]);
        let store = parse(&pfx(&[data(&certs), data(&keys)]), None).unwrap();
        assert_eq!(store.keys.len(), 1);
        let entry = &store.keys[0];
        assert_eq!(entry.alias, "spark");
        assert_eq!(entry.chain, vec![leaf, ca.clone(), root.clone()]);
        assert!(matches!(&entry.key, ProtectedKey::Plain(k) if *k == key));
        assert_eq!(store.trusted, vec![other, root, ca]);
    }

    #[test]
    fn encrypted_safes_need_a_password_and_other_modes_are_refused() {
        let encrypted = seq(&[
            tlv(der::OID, oid::ENCRYPTED_DATA),
            tlv(der::CONTEXT_0, &seq(&[tlv(der::INTEGER, &[0])])),
        ]);
        assert_eq!(
            parse(&pfx(&[encrypted]), None).err(),
            Some(Pkcs12Error::NoPassword)
        );
        let enveloped = seq(&[
            tlv(
                der::OID,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03],
            ),
            tlv(der::CONTEXT_0, &[]),
        ]);
        assert!(matches!(
            parse(&pfx(&[enveloped]), Some("pw")),
            Err(Pkcs12Error::Unsupported(m)) if m.contains("1.2.840.113549.1.7.3")
        ));
        let v2 = seq(&[tlv(der::INTEGER, &[2]), data(&seq(&[]))]);
        assert!(matches!(parse(&v2, None), Err(Pkcs12Error::Malformed(_))));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let certs = seq(&[cert_bag(&cert("a", "b"), Some(b"id"))]);
        let whole = pfx(&[data(&certs)]);
        assert!(parse(&whole, None).is_ok());
        for len in 0..whole.len() {
            assert!(parse(&whole[..len], None).is_err(), "{len}");
        }
    }

    #[test]
    fn a_key_decrypts_to_pkcs8_or_is_refused() {
        let shrouded = |password: &str, plain: &[u8]| {
            let (algorithm, ciphertext) = pbe::tests::pbes2_aes256(password, plain);
            seq(&[
                tlv(der::SEQUENCE, &algorithm),
                tlv(der::OCTET_STRING, &ciphertext),
            ])
        };
        let pkcs8 = seq(&[tlv(der::INTEGER, &[0]), tlv(der::OCTET_STRING, b"key")]);
        let info = shrouded("storepass1", &pkcs8);
        assert_eq!(decrypt_key("k", &info, "storepass1"), Ok(pkcs8));
        assert_eq!(
            decrypt_key("k", &info, "storepass2"),
            Err(Pkcs12Error::KeyPassword("k".into()))
        );
        // Padding that passes by chance still yields no PKCS#8 SEQUENCE: a wrong password.
        let garbage = shrouded("storepass1", b"\x04\x01not a key");
        assert_eq!(
            decrypt_key("k", &garbage, "storepass1"),
            Err(Pkcs12Error::KeyPassword("k".into()))
        );
        let unknown = seq(&[
            seq(&[tlv(der::OID, &[0x2a, 0x03])]),
            tlv(der::OCTET_STRING, &[0; 16]),
        ]);
        assert!(matches!(
            decrypt_key("k", &unknown, "pw"),
            Err(Pkcs12Error::Unsupported(m)) if m.contains("1.2.3")
        ));
    }
}
