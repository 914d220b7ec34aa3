//! Macaroons: the bearer token inside every L402.
//!
//! The in-memory form is format-neutral; [`v2`] reads and writes the binary V2 format Aperture emits,
//! [`v1`] reads the older text-packet format that go-macaroon still accepts.

mod error;
pub mod v1;
pub mod v2;

pub use error::DecodeError;

use crate::crypto;
use crate::limits::{MAX_CAVEATS, MAX_MACAROON_BYTES};

/// A caveat as it appears on the wire. First-party caveats carry only an id (`condition=value` in
/// L402); a verification id marks a third-party caveat, which needs a discharge macaroon.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawCaveat {
    /// Unsigned hint; empty when absent.
    pub location: Vec<u8>,
    pub id: Vec<u8>,
    pub verification_id: Option<Vec<u8>>,
}

impl RawCaveat {
    pub fn first_party(id: impl Into<Vec<u8>>) -> Self {
        Self {
            location: Vec::new(),
            id: id.into(),
            verification_id: None,
        }
    }

    pub fn is_third_party(&self) -> bool {
        self.verification_id.is_some()
    }
}

impl std::fmt::Debug for RawCaveat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCaveat")
            .field("location", &String::from_utf8_lossy(&self.location))
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("third_party", &self.is_third_party())
            .finish()
    }
}

/// The serialization a macaroon was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V1 = 1,
    V2 = 2,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Macaroon {
    /// Unsigned hint; Aperture always writes `lsat`. Empty when absent.
    pub location: Vec<u8>,
    pub identifier: Vec<u8>,
    pub caveats: Vec<RawCaveat>,
    pub signature: [u8; 32],
}

impl std::fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Macaroon")
            .field("location", &String::from_utf8_lossy(&self.location))
            .field("identifier", &hex::encode(&self.identifier))
            .field("caveats", &self.caveats)
            .finish_non_exhaustive()
    }
}

impl Macaroon {
    /// A new macaroon signed with `root_key`, with no caveats.
    pub fn new(
        root_key: &[u8],
        identifier: impl Into<Vec<u8>>,
        location: impl Into<Vec<u8>>,
    ) -> Self {
        let identifier = identifier.into();
        let signature = crypto::signature(root_key, &identifier, std::iter::empty());
        Self {
            location: location.into(),
            identifier,
            caveats: Vec::new(),
            signature,
        }
    }

    /// Appends a first-party caveat. Needs no key: anyone holding a macaroon may narrow it.
    pub fn add_first_party_caveat(&mut self, id: impl Into<Vec<u8>>) {
        let caveat = RawCaveat::first_party(id);
        self.signature = crypto::hmac(&self.signature, &caveat.id);
        self.caveats.push(caveat);
    }

    pub fn first_party_caveats(&self) -> impl Iterator<Item = &[u8]> {
        self.caveats
            .iter()
            .filter(|c| !c.is_third_party())
            .map(|c| c.id.as_slice())
    }

    pub fn third_party_caveat_count(&self) -> usize {
        self.caveats.iter().filter(|c| c.is_third_party()).count()
    }

    /// Whether `root_key` produced this macaroon's signature. Only first-party chains verify: a
    /// macaroon with a third-party caveat never does, as no discharge macaroons are supported.
    pub fn verify_signature(&self, root_key: &[u8]) -> bool {
        if self.third_party_caveat_count() > 0 {
            return false;
        }
        let expected = crypto::signature(root_key, &self.identifier, self.first_party_caveats());
        crypto::ct_eq(&expected, &self.signature)
    }

    /// Reads the binary form, V2 or V1, as go-macaroon's `UnmarshalBinary` does: the first byte
    /// picks the format and bytes after the signature are ignored.
    pub fn decode(data: &[u8]) -> Result<(Self, Format), DecodeError> {
        if data.len() > MAX_MACAROON_BYTES {
            return Err(DecodeError::TooLarge {
                len: data.len(),
                max: MAX_MACAROON_BYTES,
            });
        }
        let (macaroon, format) = match data.first() {
            None => return Err(DecodeError::Empty),
            Some(2) => (v2::decode(data)?, Format::V2),
            Some(b'0'..=b'9' | b'a'..=b'f') => (v1::decode(data)?, Format::V1),
            Some(_) => return Err(DecodeError::UnknownFormat),
        };
        if macaroon.caveats.len() > MAX_CAVEATS {
            return Err(DecodeError::TooManyCaveats { max: MAX_CAVEATS });
        }
        Ok((macaroon, format))
    }

    /// The V2 binary form, as Aperture emits it.
    pub fn encode(&self) -> Vec<u8> {
        v2::encode(self)
    }
}
