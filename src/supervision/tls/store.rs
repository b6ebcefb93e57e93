//! What the probes take from a key or trust store, whatever its format (JKS or PKCS#12): the
//! trusted certificates, and the private key entries with their certificate chains. Plain data;
//! the readers fill it, and `tls::build` decrypts the key it presents.

/// What a store holds.
#[derive(Debug, Default)]
pub struct Store {
    /// DER certificates of the trusted-certificate entries.
    pub trusted: Vec<Vec<u8>>,
    /// Private key entries.
    pub keys: Vec<KeyEntry>,
}

/// A private key entry.
#[derive(Debug)]
pub struct KeyEntry {
    /// The entry's alias (PKCS#12: its friendly name).
    pub alias: String,
    /// The key as stored, decrypted only when presented.
    pub key: ProtectedKey,
    /// The certificate chain, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
}

/// A private key as its store keeps it.
#[derive(Debug)]
pub enum ProtectedKey {
    /// A JKS `EncryptedPrivateKeyInfo` under Sun's key protector.
    Jks(Vec<u8>),
    /// A PKCS#12 `EncryptedPrivateKeyInfo` (a pkcs8ShroudedKeyBag).
    Pkcs12(Vec<u8>),
    /// A PKCS#8 `PrivateKeyInfo` stored unencrypted (a PKCS#12 keyBag).
    Plain(Vec<u8>),
}
