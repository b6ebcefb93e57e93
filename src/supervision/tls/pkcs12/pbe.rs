//! The password-based cryptography of PKCS#12 stores: the integrity MAC over the authenticated
//! safe, and the decryption of encrypted content (certificate safes, shrouded key bags).
//!
//! - MAC: HMAC with the key from the PKCS#12 KDF (RFC 7292 appendix B, ID 3) over the store
//!   password; keytool 17 and OpenSSL 3 use SHA-256, older writers SHA-1.
//! - PBES2 (RFC 8018): PBKDF2 with an HMAC-SHA PRF, then AES-CBC (keytool 17 and OpenSSL 3 write
//!   AES-256 with HMAC-SHA256) or 3DES-CBC.
//! - PKCS#12 PBE (RFC 7292 appendix C): key and IV from the PKCS#12 KDF with SHA-1, then 3DES-CBC
//!   (keys, older keytool and OpenSSL 1.x) or RC2-CBC (certificates, the same writers).
//!
//! *ring* gives the hashes, HMAC and PBKDF2; the RustCrypto crates the block ciphers it lacks.

use std::num::NonZeroU32;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipher, BlockDecryptMut, InnerIvInit, KeyInit, KeyIvInit};
use ring::{digest, hmac, pbkdf2};

use super::Pkcs12Error;
use crate::supervision::tls::der::{self, Reader};

/// Java's ceiling for PKCS#12 iteration counts (`PKCS12KeyStore.MAX_ITERATION_COUNT`): a larger
/// count is refused rather than let it stall the agent's start.
const MAX_ITERATIONS: u64 = 5_000_000;

/// The KDF's diversifier: which secret is derived (RFC 7292 B.3).
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Key = 1,
    Iv = 2,
    Mac = 3,
}

/// DER contents of the algorithm OIDs this module knows.
mod oid {
    /// 1.3.14.3.2.26 and 2.16.840.1.101.3.4.2.{1,2,3}: the MAC digests.
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    /// 1.2.840.113549.1.5.{12,13,14}: PBKDF2, PBES2, and PBMAC1 (RFC 9579, not written by
    /// keytool 17).
    pub const PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
    pub const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    pub const PBMAC1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0e];
    /// 1.2.840.113549.2.{7,9,10,11}: PBKDF2's PRFs.
    pub const HMAC_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07];
    pub const HMAC_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
    pub const HMAC_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x0a];
    pub const HMAC_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x0b];
    /// 1.2.840.113549.3.7: des-ede3-cbc.
    pub const DES_EDE3_CBC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07];
    /// 1.2.840.113549.1.12.1.N: pbeWithSHAAnd{128BitRC4, 40BitRC4, 3-KeyTripleDES-CBC,
    /// 2-KeyTripleDES-CBC, 128BitRC2-CBC, 40BitRC2-CBC} for N = 1 to 6.
    pub const PKCS12_PBE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01];
    /// 2.16.840.1.101.3.4.1.N: aes128-CBC (N = 2), aes192-CBC (22), aes256-CBC (42).
    pub const AES: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01];
}

/// A password as the PKCS#12 KDF takes it: a BMPString (UTF-16BE) with a two-byte terminator.
fn bmp_password(password: &str) -> Vec<u8> {
    password
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .chain([0, 0])
        .collect()
}

fn iterations(count: u64, what: &'static str) -> Result<NonZeroU32, Pkcs12Error> {
    if count > MAX_ITERATIONS {
        return Err(Pkcs12Error::Unsupported(format!(
            "{what}: iteration count {count} (more than Java's limit of {MAX_ITERATIONS})"
        )));
    }
    u32::try_from(count)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or(Pkcs12Error::Malformed(what))
}

/// The PKCS#12 key derivation (RFC 7292 appendix B.2): `n` bytes for `purpose` from the BMP
/// password and the salt, with `iterations` rounds of `hash`.
fn pkcs12_kdf(
    hash: &'static digest::Algorithm,
    password: &[u8],
    salt: &[u8],
    purpose: Purpose,
    iterations: NonZeroU32,
    n: usize,
) -> Vec<u8> {
    let (u, v) = (hash.output_len(), hash.block_len());
    // S and P: salt and password each repeated to a multiple of v bytes (empty stays empty).
    let fill = |s: &[u8]| -> Vec<u8> {
        s.iter()
            .cycle()
            .take(s.len().div_ceil(v) * v)
            .copied()
            .collect()
    };
    let mut i = fill(salt);
    i.extend(fill(password));
    let d = vec![purpose as u8; v];
    let mut out = Vec::with_capacity(n.div_ceil(u) * u);
    while out.len() < n {
        let mut ctx = digest::Context::new(hash);
        ctx.update(&d);
        ctx.update(&i);
        let mut a = ctx.finish();
        for _ in 1..iterations.get() {
            a = digest::digest(hash, a.as_ref());
        }
        out.extend_from_slice(a.as_ref());
        // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block, B being A repeated to v bytes.
        let b: Vec<u8> = a.as_ref().iter().cycle().take(v).copied().collect();
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    out
}

/// Checks the store's MacData (`SEQUENCE { DigestInfo, macSalt, iterations }`) over `auth_safe`.
pub fn verify_mac(mac_data: &[u8], auth_safe: &[u8], password: &str) -> Result<(), Pkcs12Error> {
    let mut mac_data = Reader::new(mac_data);
    let mut digest_info = mac_data.sequence("MacData")?;
    let mut algorithm = digest_info.sequence("MAC algorithm")?;
    let hash_oid = algorithm.expect(der::OID, "MAC algorithm")?;
    let expected = digest_info.expect(der::OCTET_STRING, "MAC")?;
    let salt = mac_data.expect(der::OCTET_STRING, "MAC salt")?;
    let count = if mac_data.is_empty() {
        1 // DEFAULT 1
    } else {
        mac_data.uint("MAC iterations")?
    };
    let (hash, hmac_alg) = if hash_oid == oid::SHA256 {
        (&digest::SHA256, hmac::HMAC_SHA256)
    } else if hash_oid == oid::SHA1 {
        (
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        )
    } else if hash_oid == oid::SHA384 {
        (&digest::SHA384, hmac::HMAC_SHA384)
    } else if hash_oid == oid::SHA512 {
        (&digest::SHA512, hmac::HMAC_SHA512)
    } else if hash_oid == oid::PBMAC1 {
        return Err(Pkcs12Error::Unsupported("the PBMAC1 integrity MAC".into()));
    } else {
        return Err(Pkcs12Error::Unsupported(format!(
            "the MAC digest {}",
            dotted(hash_oid)
        )));
    };
    let count = iterations(count, "MAC iterations")?;
    let key = pkcs12_kdf(
        hash,
        &bmp_password(password),
        salt,
        Purpose::Mac,
        count,
        hash.output_len(),
    );
    hmac::verify(&hmac::Key::new(hmac_alg, &key), auth_safe, expected)
        .map_err(|_| Pkcs12Error::Integrity)
}

/// Decrypts `ciphertext` encrypted with the algorithm of `algorithm` (the contents of an
/// AlgorithmIdentifier: OID and parameters) under `password`. `None` when the padding is wrong,
/// which is what a wrong password gives.
pub fn decrypt(
    algorithm: &[u8],
    ciphertext: &[u8],
    password: &str,
) -> Result<Option<Vec<u8>>, Pkcs12Error> {
    let mut algorithm = Reader::new(algorithm);
    let alg_oid = algorithm.expect(der::OID, "encryption algorithm")?;
    if alg_oid == oid::PBES2 {
        return pbes2(
            algorithm.sequence("PBES2 parameters")?,
            ciphertext,
            password,
        );
    }
    let Some(&[kind]) = alg_oid.strip_prefix(oid::PKCS12_PBE) else {
        return Err(Pkcs12Error::Unsupported(format!(
            "the encryption algorithm {}",
            dotted(alg_oid)
        )));
    };
    let mut params = algorithm.sequence("PBE parameters")?;
    let salt = params.expect(der::OCTET_STRING, "PBE salt")?;
    let count = iterations(params.uint("PBE iterations")?, "PBE iterations")?;
    let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
    let pw = bmp_password(password);
    let derive = |purpose, n| pkcs12_kdf(sha1, &pw, salt, purpose, count, n);
    let iv = derive(Purpose::Iv, 8);
    let mut buf = ciphertext.to_vec();
    let plain = match kind {
        3 => cbc_decrypt::<des::TdesEde3>(&derive(Purpose::Key, 24), &iv, &mut buf),
        4 => cbc_decrypt::<des::TdesEde2>(&derive(Purpose::Key, 16), &iv, &mut buf),
        5 | 6 => {
            let bits = if kind == 5 { 128 } else { 40 };
            let key = derive(Purpose::Key, bits / 8);
            let cipher = rc2::Rc2::new_with_eff_key_len(&key, bits);
            cbc::Decryptor::inner_iv_slice_init(cipher, &iv)
                .ok()
                .and_then(|d| {
                    d.decrypt_padded_mut::<Pkcs7>(&mut buf)
                        .ok()
                        .map(<[u8]>::to_vec)
                })
        }
        1 => return Err(Pkcs12Error::Unsupported("pbeWithSHAAnd128BitRC4".into())),
        2 => return Err(Pkcs12Error::Unsupported("pbeWithSHAAnd40BitRC4".into())),
        _ => {
            return Err(Pkcs12Error::Unsupported(format!(
                "the encryption algorithm {}",
                dotted(alg_oid)
            )))
        }
    };
    Ok(plain)
}

/// PBES2: `SEQUENCE { keyDerivationFunc (PBKDF2), encryptionScheme }`.
fn pbes2(
    mut params: Reader<'_>,
    ciphertext: &[u8],
    password: &str,
) -> Result<Option<Vec<u8>>, Pkcs12Error> {
    let mut kdf = params.sequence("PBES2 key derivation")?;
    let kdf_oid = kdf.expect(der::OID, "PBES2 key derivation")?;
    if kdf_oid != oid::PBKDF2 {
        return Err(Pkcs12Error::Unsupported(format!(
            "the PBES2 key derivation {}",
            dotted(kdf_oid)
        )));
    }
    let mut kdf = kdf.sequence("PBKDF2 parameters")?;
    let salt = kdf.expect(der::OCTET_STRING, "PBKDF2 salt")?;
    let count = iterations(kdf.uint("PBKDF2 iterations")?, "PBKDF2 iterations")?;
    let key_len = if kdf.peek_tag() == Some(der::INTEGER) {
        Some(kdf.uint("PBKDF2 key length")?)
    } else {
        None
    };
    let prf = match kdf.optional(der::SEQUENCE, "PBKDF2 PRF")? {
        None => pbkdf2::PBKDF2_HMAC_SHA1, // DEFAULT hmacWithSHA1
        Some(prf) => {
            let prf = Reader::new(prf).expect(der::OID, "PBKDF2 PRF")?;
            if prf == oid::HMAC_SHA256 {
                pbkdf2::PBKDF2_HMAC_SHA256
            } else if prf == oid::HMAC_SHA1 {
                pbkdf2::PBKDF2_HMAC_SHA1
            } else if prf == oid::HMAC_SHA384 {
                pbkdf2::PBKDF2_HMAC_SHA384
            } else if prf == oid::HMAC_SHA512 {
                pbkdf2::PBKDF2_HMAC_SHA512
            } else {
                return Err(Pkcs12Error::Unsupported(format!(
                    "the PBKDF2 PRF {}",
                    dotted(prf)
                )));
            }
        }
    };
    let mut scheme = params.sequence("PBES2 encryption scheme")?;
    let cipher = scheme.expect(der::OID, "PBES2 encryption scheme")?;
    let iv = scheme.expect(der::OCTET_STRING, "PBES2 IV")?;
    let cipher_key_len = match cipher.strip_prefix(oid::AES) {
        Some([2]) => 16,
        Some([22]) => 24,
        Some([42]) => 32,
        _ if cipher == oid::DES_EDE3_CBC => 24,
        _ => 0,
    };
    if cipher_key_len == 0 {
        return Err(Pkcs12Error::Unsupported(format!(
            "the PBES2 cipher {}",
            dotted(cipher)
        )));
    }
    if key_len.is_some_and(|n| n != cipher_key_len as u64) {
        return Err(Pkcs12Error::Malformed("PBKDF2 key length"));
    }
    // PBKDF2 takes the password's bytes (UTF-8), as both keytool and OpenSSL give it.
    let mut key = vec![0u8; cipher_key_len];
    pbkdf2::derive(prf, count, salt, password.as_bytes(), &mut key);
    let mut buf = ciphertext.to_vec();
    Ok(match cipher_key_len {
        16 => cbc_decrypt::<aes::Aes128>(&key, iv, &mut buf),
        24 if cipher == oid::DES_EDE3_CBC => cbc_decrypt::<des::TdesEde3>(&key, iv, &mut buf),
        24 => cbc_decrypt::<aes::Aes192>(&key, iv, &mut buf),
        _ => cbc_decrypt::<aes::Aes256>(&key, iv, &mut buf),
    })
}

/// CBC decryption with PKCS#7 padding; `None` for a wrong key or IV length, or bad padding.
fn cbc_decrypt<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Option<Vec<u8>>
where
    C: BlockDecryptMut + BlockCipher + KeyInit,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_mut::<Pkcs7>(buf)
        .ok()
        .map(<[u8]>::to_vec)
}

/// An OID's dotted form, for error messages.
pub fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value = 0u64;
    for b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = value.min(80) / 40;
                arcs.extend([first, value - first * 40]);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use cbc::cipher::{BlockEncryptMut, KeyIvInit};

    use super::*;
    use crate::supervision::tls::der::write::{seq, tlv};

    /// CBC encryption with PKCS#7 padding, as the store writers do.
    fn encrypt<C>(key: &[u8], iv: &[u8], plain: &[u8]) -> Vec<u8>
    where
        C: BlockEncryptMut + BlockCipher + KeyInit,
    {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + 16, 0);
        cbc::Encryptor::<C>::new_from_slices(key, iv)
            .unwrap()
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .unwrap()
            .to_vec()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn n(count: u32) -> NonZeroU32 {
        NonZeroU32::new(count).unwrap()
    }

    /// Known answers of the PKCS#12 KDF (RFC 7292 B.2). The first is a published vector (the
    /// Crypt::OpenSSL::PKCS::Func tests: password "123456", MAC key, SHA-256); all four agree with
    /// OpenSSL 3's `openssl kdf ... PKCS12KDF`. The SHA-512 case needs two rounds of the B+1
    /// update; "ge@äheim" checks the BMP encoding past ASCII.
    #[test]
    fn the_pkcs12_kdf_gives_the_known_answers() {
        let cases: [(&'static digest::Algorithm, &str, &str, Purpose, u32, &str); 4] = [
            (
                &digest::SHA256,
                "123456",
                "e241f01650dbeae4",
                Purpose::Mac,
                2048,
                "721259f14aad70b58839f71566b433da1b8ad08f650f4d02faaa0b9b095bb51d",
            ),
            (
                &digest::SHA1_FOR_LEGACY_USE_ONLY,
                "ge@äheim",
                "0102030405060708",
                Purpose::Key,
                100,
                "f681007c3c547572a78d9f8b6abd8d66a418b2d29bc055af",
            ),
            (
                &digest::SHA1_FOR_LEGACY_USE_ONLY,
                "ge@äheim",
                "0102030405060708",
                Purpose::Iv,
                100,
                "680dc32697a1007c",
            ),
            (
                &digest::SHA512,
                "ge@äheim",
                "0102030405060708",
                Purpose::Key,
                100,
                "b14a9f01bfd9dce4c9d66d2fe9937e5fd9f1afa59e370a6fa4fc81c1cc8ec8eec73b0229d2e1b3f55c2d33d21f9541eecaa29783a0a6244e0bcf209902cb4a0945bfc605cc7919d6650a1af0e9f9c04a9531f419f1df10232312a91f787aefb8c2d972db",
            ),
        ];
        for (hash, password, salt, purpose, count, expected) in cases {
            let expected = hex(expected);
            let got = pkcs12_kdf(
                hash,
                &bmp_password(password),
                &hex(salt),
                purpose,
                n(count),
                expected.len(),
            );
            assert_eq!(got, expected, "{password} {purpose:?}");
        }
        assert_eq!(bmp_password(""), vec![0, 0]);
        assert_eq!(bmp_password("ä"), vec![0, 0xe4, 0, 0]);
    }

    #[test]
    fn oids_print_dotted_and_iteration_counts_are_bounded() {
        assert_eq!(dotted(oid::PBES2), "1.2.840.113549.1.5.13");
        assert_eq!(dotted(oid::SHA256), "2.16.840.1.101.3.4.2.1");
        assert_eq!(dotted(&[0x2b, 0x0e, 0x03, 0x02, 0x1a]), "1.3.14.3.2.26");
        assert!(iterations(10_000, "x").is_ok());
        assert_eq!(iterations(0, "x"), Err(Pkcs12Error::Malformed("x")));
        assert!(matches!(
            iterations(MAX_ITERATIONS + 1, "x"),
            Err(Pkcs12Error::Unsupported(_))
        ));
    }

    /// keytool 17's protection, built here (algorithm identifier contents, ciphertext): PBES2, PBKDF2 with HMAC-SHA256, AES-256-CBC.
    pub fn pbes2_aes256(password: &str, plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (salt, iv) = ([5u8; 20], [9u8; 16]);
        let mut key = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            n(1000),
            &salt,
            password.as_bytes(),
            &mut key,
        );
        let ciphertext = encrypt::<aes::Aes256>(&key, &iv, plain);
        let kdf = seq(&[
            tlv(der::OID, oid::PBKDF2),
            seq(&[
                tlv(der::OCTET_STRING, &salt),
                tlv(der::INTEGER, &[0x03, 0xe8]),
                seq(&[tlv(der::OID, oid::HMAC_SHA256), tlv(0x05, &[])]),
            ]),
        ]);
        let mut aes256 = oid::AES.to_vec();
        aes256.push(42);
        let scheme = seq(&[tlv(der::OID, &aes256), tlv(der::OCTET_STRING, &iv)]);
        let algorithm = [tlv(der::OID, oid::PBES2), seq(&[kdf, scheme])].concat();
        (algorithm, ciphertext)
    }

    #[test]
    fn pbes2_with_aes_256_decrypts_and_a_wrong_password_does_not() {
        let plain = b"a PKCS#8 key, longer than one AES block".to_vec();
        let (algorithm, ciphertext) = pbes2_aes256("storepass1", &plain);
        assert_eq!(
            decrypt(&algorithm, &ciphertext, "storepass1").unwrap(),
            Some(plain.clone())
        );
        // A wrong key gives bad padding (almost always: the PKCS#8 check in decrypt_key
        // catches the rest).
        assert_ne!(
            decrypt(&algorithm, &ciphertext, "storepass2").unwrap(),
            Some(plain)
        );
        let rc4 = [
            tlv(der::OID, &[oid::PKCS12_PBE, &[1]].concat()),
            seq(&[tlv(der::OCTET_STRING, &[1; 8]), tlv(der::INTEGER, &[1])]),
        ]
        .concat();
        assert_eq!(
            decrypt(&rc4, b"x", "pw"),
            Err(Pkcs12Error::Unsupported("pbeWithSHAAnd128BitRC4".into()))
        );
    }

    #[test]
    fn the_legacy_triple_des_pbe_decrypts() {
        // pbeWithSHAAnd3-KeyTripleDES-CBC: key and IV from the PKCS#12 KDF with SHA-1.
        let (salt, count, password) = ([3u8; 8], 2048u32, "storepass1");
        let pw = bmp_password(password);
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        let key = pkcs12_kdf(sha1, &pw, &salt, Purpose::Key, n(count), 24);
        let iv = pkcs12_kdf(sha1, &pw, &salt, Purpose::Iv, n(count), 8);
        let plain = b"an older keytool's key".to_vec();
        let ciphertext = encrypt::<des::TdesEde3>(&key, &iv, &plain);
        let algorithm = [
            tlv(der::OID, &[oid::PKCS12_PBE, &[3]].concat()),
            seq(&[
                tlv(der::OCTET_STRING, &salt),
                tlv(der::INTEGER, &[0x08, 0x00]),
            ]),
        ]
        .concat();
        assert_eq!(
            decrypt(&algorithm, &ciphertext, password).unwrap(),
            Some(plain)
        );
    }

    #[test]
    fn the_mac_is_checked_with_the_password() {
        let auth_safe = b"the authenticated safe";
        let salt = [7u8; 20];
        let key = pkcs12_kdf(
            &digest::SHA256,
            &bmp_password("storepass1"),
            &salt,
            Purpose::Mac,
            n(10_000),
            32,
        );
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), auth_safe);
        let mac_data = |alg: &[u8]| {
            let digest_info = seq(&[
                seq(&[tlv(der::OID, alg), tlv(0x05, &[])]),
                tlv(der::OCTET_STRING, mac.as_ref()),
            ]);
            [
                digest_info,
                tlv(der::OCTET_STRING, &salt),
                tlv(der::INTEGER, &[0x27, 0x10]),
            ]
            .concat()
        };
        let sha256 = mac_data(oid::SHA256);
        assert_eq!(verify_mac(&sha256, auth_safe, "storepass1"), Ok(()));
        assert_eq!(
            verify_mac(&sha256, auth_safe, "storepass2"),
            Err(Pkcs12Error::Integrity)
        );
        assert_eq!(
            verify_mac(&sha256, b"an altered safe", "storepass1"),
            Err(Pkcs12Error::Integrity)
        );
        assert_eq!(
            verify_mac(&mac_data(oid::SHA1), auth_safe, "storepass1"),
            Err(Pkcs12Error::Integrity)
        );
        assert_eq!(
            verify_mac(&mac_data(oid::PBMAC1), auth_safe, "storepass1"),
            Err(Pkcs12Error::Unsupported("the PBMAC1 integrity MAC".into()))
        );
    }
}
