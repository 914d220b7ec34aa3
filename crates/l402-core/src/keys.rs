//! Root keys without a database.
//!
//! Aperture stores 32 random bytes per token and reads them back on every request. We derive them
//! instead: `root_key = HMAC-SHA256(master_secret[key_id], token_id)`, where a token id's first four
//! bytes name the master secret (big-endian [`KeyId`]) and the other 28 are random. Verification is
//! then pure computation, and several master secrets can be live at once so that keys rotate.

use std::collections::{HashMap, HashSet};

use hmac::Mac;
use thiserror::Error;

use crate::crypto::{self, HmacSha256};
use crate::identifier::TokenId;

/// Shortest master secret accepted: 256 bits, the HMAC-SHA256 key size.
pub const MIN_MASTER_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TokenId {
    /// A token id naming `key` followed by caller-supplied randomness.
    pub fn derived(key: KeyId, random: [u8; 28]) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&key.0.to_be_bytes());
        bytes[4..].copy_from_slice(&random);
        Self(bytes)
    }

    pub fn key_id(&self) -> KeyId {
        KeyId(u32::from_be_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3],
        ]))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("no master secret with key id {0}")]
    UnknownKeyId(KeyId),
    #[error("master secret {id} is {len} bytes; at least {MIN_MASTER_SECRET_BYTES} are required")]
    SecretTooShort { id: KeyId, len: usize },
    #[error("key id {0} is given more than once")]
    DuplicateKeyId(KeyId),
    #[error("no master secrets configured")]
    Empty,
    #[error("root key is empty")]
    EmptyRootKey,
    #[error("master key must be written `ID:HEX` with a decimal id and a hex secret")]
    MalformedSpec,
}

/// Secret key material. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RootKey(Vec<u8>);

impl RootKey {
    pub fn new(bytes: Vec<u8>) -> Result<Self, KeyError> {
        if bytes.is_empty() {
            return Err(KeyError::EmptyRootKey);
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

/// Master secrets by key id, each kept as a ready-keyed HMAC so that deriving a root key on the
/// request path costs one HMAC and no key setup.
#[derive(Clone)]
pub struct KeyRing {
    keys: HashMap<KeyId, HmacSha256>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("KeyRing")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    pub fn new<I>(secrets: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = (KeyId, Vec<u8>)>,
    {
        let mut keys = HashMap::new();
        for (id, secret) in secrets {
            if secret.len() < MIN_MASTER_SECRET_BYTES {
                return Err(KeyError::SecretTooShort {
                    id,
                    len: secret.len(),
                });
            }
            if keys.insert(id, crypto::keyed(&secret)).is_some() {
                return Err(KeyError::DuplicateKeyId(id));
            }
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self { keys })
    }

    /// Parses `ID:HEX`, the form used on command lines and in environment variables.
    pub fn parse_spec(spec: &str) -> Result<(KeyId, Vec<u8>), KeyError> {
        let (id, secret) = spec.split_once(':').ok_or(KeyError::MalformedSpec)?;
        let id = id
            .trim()
            .parse::<u32>()
            .map_err(|_| KeyError::MalformedSpec)?;
        let secret = hex::decode(secret.trim()).map_err(|_| KeyError::MalformedSpec)?;
        Ok((KeyId(id), secret))
    }

    pub fn contains(&self, id: KeyId) -> bool {
        self.keys.contains_key(&id)
    }

    pub fn root_key(&self, token_id: &TokenId) -> Result<RootKey, KeyError> {
        let id = token_id.key_id();
        let mut mac = self
            .keys
            .get(&id)
            .ok_or(KeyError::UnknownKeyId(id))?
            .clone();
        mac.update(&token_id.0);
        Ok(RootKey(mac.finalize().into_bytes().to_vec()))
    }
}

/// Why [`KeyRing::from_env`] refused the master secrets; `index` is the position in the list given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvKeyError {
    #[error("at least one master key is required")]
    None,
    #[error("environment variable `{var}` is not set")]
    NotSet { index: usize, var: String },
    #[error("environment variable `{var}` is not hex")]
    NotHex { index: usize, var: String },
    #[error(transparent)]
    Ring(#[from] KeyError),
}

impl EnvKeyError {
    /// The configuration field at fault (`keys[1].env` or `keys`), the same in every
    /// configuration that lists [`KeySpec`]s under `keys`.
    pub fn field(&self) -> String {
        match self {
            Self::NotSet { index, .. } | Self::NotHex { index, .. } => format!("keys[{index}].env"),
            Self::None | Self::Ring(_) => "keys".into(),
        }
    }
}

/// A master secret as every configuration names it: `{"id": 1, "env": "L402_MASTER_KEY_1"}`. The
/// secret is the hex value of the environment variable, so no configuration file holds one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct KeySpec {
    pub id: u32,
    pub env: String,
}

impl KeyRing {
    /// The ring of the master secrets `specs` name; `env` reads an environment variable.
    pub fn from_env(
        specs: &[KeySpec],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, EnvKeyError> {
        if specs.is_empty() {
            return Err(EnvKeyError::None);
        }
        let mut secrets = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let var = || spec.env.clone();
            let value = env(&spec.env).ok_or_else(|| EnvKeyError::NotSet { index, var: var() })?;
            let secret =
                hex::decode(value.trim()).map_err(|_| EnvKeyError::NotHex { index, var: var() })?;
            secrets.push((KeyId(spec.id), secret));
        }
        Ok(Self::new(secrets)?)
    }
}

/// Where the root key of a token comes from.
#[derive(Debug, Clone)]
pub enum RootKeySource {
    /// One root key for every token: tests, tools and single-token set-ups.
    Static(RootKey),
    /// Derived per token from master secrets: what the filter and the invoice service use.
    Derived(KeyRing),
}

impl RootKeySource {
    pub fn root_key(&self, token_id: &TokenId) -> Result<RootKey, KeyError> {
        match self {
            Self::Static(key) => Ok(key.clone()),
            Self::Derived(ring) => ring.root_key(token_id),
        }
    }
}

/// Token ids that must no longer be accepted, whatever their signature.
#[derive(Debug, Clone, Default)]
pub struct RevocationList(HashSet<TokenId>);

impl RevocationList {
    pub fn new(ids: impl IntoIterator<Item = TokenId>) -> Self {
        Self(ids.into_iter().collect())
    }

    pub fn is_revoked(&self, id: &TokenId) -> bool {
        self.0.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hmac;

    fn ring() -> KeyRing {
        KeyRing::new([(KeyId(1), vec![1; 32]), (KeyId(7), vec![7; 48])]).unwrap()
    }

    #[test]
    fn token_id_starts_with_the_key_id() {
        let t = TokenId::derived(KeyId(0x0102_0304), [9; 28]);
        assert_eq!(&t.0[..4], &[1, 2, 3, 4]);
        assert_eq!(&t.0[4..], &[9; 28]);
        assert_eq!(t.key_id(), KeyId(0x0102_0304));
    }

    #[test]
    fn root_key_is_hmac_of_token_id_under_the_named_master_secret() {
        let t = TokenId::derived(KeyId(7), [3; 28]);
        let key = ring().root_key(&t).unwrap();
        assert_eq!(key.as_bytes(), hmac(&[7; 48], &t.0));
        let other = TokenId::derived(KeyId(1), [3; 28]);
        assert_ne!(ring().root_key(&other).unwrap(), key);
    }

    #[test]
    fn unknown_key_id_is_an_error() {
        let t = TokenId::derived(KeyId(2), [0; 28]);
        assert_eq!(ring().root_key(&t), Err(KeyError::UnknownKeyId(KeyId(2))));
    }

    #[test]
    fn weak_duplicate_or_missing_secrets_are_refused() {
        assert_eq!(
            KeyRing::new([(KeyId(1), vec![0; 31])]).unwrap_err(),
            KeyError::SecretTooShort {
                id: KeyId(1),
                len: 31
            }
        );
        assert_eq!(
            KeyRing::new([(KeyId(1), vec![0; 32]), (KeyId(1), vec![1; 32])]).unwrap_err(),
            KeyError::DuplicateKeyId(KeyId(1))
        );
        assert_eq!(KeyRing::new([]).unwrap_err(), KeyError::Empty);
    }

    #[test]
    fn spec_parsing_never_echoes_the_secret() {
        let (id, secret) = KeyRing::parse_spec(&format!("42:{}", "ab".repeat(32))).unwrap();
        assert_eq!((id, secret), (KeyId(42), vec![0xab; 32]));
        let err = KeyRing::parse_spec("x:SECRETSECRET").unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
        assert_eq!(KeyRing::parse_spec("1:zz"), Err(KeyError::MalformedSpec));
    }

    #[test]
    fn debug_output_hides_key_material() {
        let shown = format!("{:?} {:?}", RootKey::new(vec![0xab; 4]).unwrap(), ring());
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn revocation_list_membership() {
        let t = TokenId([5; 32]);
        let list = RevocationList::new([t]);
        assert!(list.is_revoked(&t));
        assert!(!list.is_revoked(&TokenId([6; 32])));
    }

    #[test]
    fn ring_from_env_names_the_variable_and_never_the_value() {
        let env = |name: &str| match name {
            "A" => Some("01".repeat(32)),
            "B" => Some("zz-secret".to_string()),
            _ => None,
        };
        let spec = |id, env: &str| KeySpec {
            id,
            env: env.into(),
        };
        let ring = KeyRing::from_env(&[spec(1, "A")], &env).unwrap();
        assert!(ring.contains(KeyId(1)));
        let missing = KeyRing::from_env(&[spec(1, "A"), spec(2, "C")], &env).unwrap_err();
        assert_eq!(
            missing,
            EnvKeyError::NotSet {
                index: 1,
                var: "C".into()
            }
        );
        assert_eq!(missing.field(), "keys[1].env");
        let bad = KeyRing::from_env(&[spec(2, "B")], &env).unwrap_err();
        assert_eq!(bad.to_string(), "environment variable `B` is not hex");
        assert!(!bad.to_string().contains("secret"));
        let dup = KeyRing::from_env(&[spec(1, "A"), spec(1, "A")], &env).unwrap_err();
        assert_eq!(dup, EnvKeyError::Ring(KeyError::DuplicateKeyId(KeyId(1))));
        assert_eq!(dup.field(), "keys");
        assert_eq!(KeyRing::from_env(&[], &env).unwrap_err().field(), "keys");
    }
}
