//! Verifying a credential: all the checks an L402 needs, cheapest first, with no I/O.
//!
//! Order (Aperture's, plus our own steps): identifier version, `sha256(preimage) == payment_hash`,
//! revocation, root key, HMAC chain, caveats.

use thiserror::Error;

pub use crate::caveat::Requirement;
use crate::caveat::{self, CaveatError};
use crate::credentials::{self, Credential, CredentialError};
use crate::crypto;
use crate::identifier::{Identifier, IdentifierError};
use crate::keys::{KeyError, RevocationList, RootKeySource};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("{0}")]
    Credential(#[from] CredentialError),
    #[error("{0}")]
    Identifier(#[from] IdentifierError),
    #[error("preimage does not match the payment hash")]
    PreimageMismatch,
    #[error("token was revoked")]
    Revoked,
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("token carries a third-party caveat; discharge macaroons are not supported")]
    ThirdPartyCaveat,
    #[error("macaroon signature does not verify")]
    BadSignature,
    #[error("{0}")]
    Caveat(#[from] CaveatError),
}

impl Rejection {
    /// A short stable label, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Credential(CredentialError::Missing) => "missing",
            Self::Credential(_) => "malformed",
            Self::Identifier(IdentifierError::UnsupportedVersion(_)) => "unsupported_version",
            Self::Identifier(_) => "malformed",
            Self::PreimageMismatch => "preimage_mismatch",
            Self::Revoked => "revoked",
            Self::Key(_) => "unknown_key",
            Self::ThirdPartyCaveat => "third_party_caveat",
            Self::BadSignature => "bad_signature",
            Self::Caveat(CaveatError::ServiceNotAllowed(_)) => "wrong_service",
            Self::Caveat(CaveatError::Expired) => "expired",
            Self::Caveat(CaveatError::MissingCapability(_)) => "missing_capability",
            Self::Caveat(_) => "invalid_caveat",
        }
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub identifier: Identifier,
}

#[derive(Debug, Clone)]
pub struct Verifier {
    keys: RootKeySource,
    revoked: RevocationList,
}

impl Verifier {
    pub fn new(keys: RootKeySource, revoked: RevocationList) -> Self {
        Self { keys, revoked }
    }

    /// Reads the credential from request headers and verifies it.
    pub fn verify_headers<'a, I>(
        &self,
        headers: I,
        req: &Requirement<'_>,
    ) -> Result<(Credential, Verified), Rejection>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let credential = credentials::from_headers(headers)?;
        let verified = self.verify(&credential, req)?;
        Ok((credential, verified))
    }

    pub fn verify(
        &self,
        credential: &Credential,
        req: &Requirement<'_>,
    ) -> Result<Verified, Rejection> {
        let macaroon = &credential.macaroon;
        let identifier = Identifier::decode(&macaroon.identifier)?;
        if !crypto::ct_eq(
            &crypto::sha256(&credential.preimage),
            &identifier.payment_hash,
        ) {
            return Err(Rejection::PreimageMismatch);
        }
        if self.revoked.is_revoked(&identifier.token_id) {
            return Err(Rejection::Revoked);
        }
        if macaroon.third_party_caveat_count() > 0 {
            return Err(Rejection::ThirdPartyCaveat);
        }
        let root_key = self.keys.root_key(&identifier.token_id)?;
        if !macaroon.verify_signature(root_key.as_bytes()) {
            return Err(Rejection::BadSignature);
        }
        caveat::check(macaroon.first_party_caveats(), req)?;
        Ok(Verified { identifier })
    }
}
