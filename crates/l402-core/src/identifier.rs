//! The L402 macaroon identifier: `u16 BE version (0) | payment_hash[32] | token_id[32]`.
//!
//! Part of the client contract: lnget reads the payment hash from it, and the token id is the
//! client's identity for rate limits, revocation and logs.

use thiserror::Error;

pub const IDENTIFIER_LEN: usize = 2 + 32 + 32;
pub const VERSION: u16 = 0;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentifierError {
    #[error("L402 identifier is {0} bytes, expected 66")]
    Length(usize),
    #[error("L402 identifier version {0} is not supported (only version 0 exists)")]
    UnsupportedVersion(u16),
}

/// 32 bytes naming one token. Ours start with a [`crate::KeyId`]; Aperture's are all random.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub [u8; 32]);

impl TokenId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl std::fmt::Debug for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenId({})", self.to_hex())
    }
}

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identifier {
    pub payment_hash: [u8; 32],
    pub token_id: TokenId,
}

impl Identifier {
    pub fn encode(&self) -> [u8; IDENTIFIER_LEN] {
        let mut out = [0u8; IDENTIFIER_LEN];
        out[..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..34].copy_from_slice(&self.payment_hash);
        out[34..].copy_from_slice(&self.token_id.0);
        out
    }

    /// The version is checked before the length, so a client on a future version is told so.
    pub fn decode(bytes: &[u8]) -> Result<Self, IdentifierError> {
        let version = match bytes {
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => return Err(IdentifierError::Length(bytes.len())),
        };
        if version != VERSION {
            return Err(IdentifierError::UnsupportedVersion(version));
        }
        let bytes: &[u8; IDENTIFIER_LEN] = bytes
            .try_into()
            .map_err(|_| IdentifierError::Length(bytes.len()))?;
        let mut payment_hash = [0u8; 32];
        let mut token_id = [0u8; 32];
        payment_hash.copy_from_slice(&bytes[2..34]);
        token_id.copy_from_slice(&bytes[34..]);
        Ok(Self {
            payment_hash,
            token_id: TokenId(token_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_version_hash_token_id() {
        let id = Identifier {
            payment_hash: [0xaa; 32],
            token_id: TokenId([0xbb; 32]),
        };
        let bytes = id.encode();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..34], &[0xaa; 32]);
        assert_eq!(&bytes[34..], &[0xbb; 32]);
        assert_eq!(Identifier::decode(&bytes), Ok(id));
    }

    #[test]
    fn wrong_version_is_rejected() {
        let mut bytes = Identifier {
            payment_hash: [1; 32],
            token_id: TokenId([2; 32]),
        }
        .encode();
        bytes[1] = 1;
        assert_eq!(
            Identifier::decode(&bytes),
            Err(IdentifierError::UnsupportedVersion(1))
        );
    }

    #[test]
    fn wrong_length_is_rejected() {
        let bytes = [0u8; 67];
        assert_eq!(Identifier::decode(&bytes), Err(IdentifierError::Length(67)));
        assert_eq!(
            Identifier::decode(&bytes[..65]),
            Err(IdentifierError::Length(65))
        );
        assert_eq!(Identifier::decode(&[0]), Err(IdentifierError::Length(1)));
    }

    #[test]
    fn token_id_hex_roundtrip() {
        let t = TokenId([0x5a; 32]);
        assert_eq!(TokenId::from_hex(&t.to_hex()), Some(t));
        assert_eq!(TokenId::from_hex("zz"), None);
    }
}
