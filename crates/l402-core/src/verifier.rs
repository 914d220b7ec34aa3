//! Verifying a credential: all the checks an L402 needs, cheapest first, with no I/O.
//!
//! Order (Aperture's, plus our own steps): identifier version, `sha256(preimage) == payment_hash`,
//! revocation, root key, HMAC chain, caveats.

use thiserror::Error;

pub use crate::caveat::Requirement;
use crate::caveat::{self, CaveatError, Granted};
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
    /// Verified, but every request its `<service>_requests` caveat allows has been served.
    #[error("the token's requests are used up")]
    QuotaExhausted,
}

/// Declares [`Reason`] with its label and the list of all of them from one table, so a new reason
/// cannot be left out of the list (the filter defines a counter for each up front).
macro_rules! reasons {
    ($($variant:ident => $label:literal,)*) => {
        /// Why a credential was rejected, in a few stable kinds: the label of metrics and logs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($variant,)*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Self::$variant,)*];

            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
        }
    };
}

reasons! {
    Missing => "missing",
    Malformed => "malformed",
    UnsupportedVersion => "unsupported_version",
    PreimageMismatch => "preimage_mismatch",
    Revoked => "revoked",
    UnknownKey => "unknown_key",
    ThirdPartyCaveat => "third_party_caveat",
    BadSignature => "bad_signature",
    WrongService => "wrong_service",
    Expired => "expired",
    MissingCapability => "missing_capability",
    InvalidCaveat => "invalid_caveat",
    QuotaExhausted => "quota_exhausted",
}

impl Rejection {
    pub fn kind(&self) -> Reason {
        match self {
            Self::Credential(CredentialError::Missing) => Reason::Missing,
            Self::Credential(_) => Reason::Malformed,
            Self::Identifier(IdentifierError::UnsupportedVersion(_)) => Reason::UnsupportedVersion,
            Self::Identifier(_) => Reason::Malformed,
            Self::PreimageMismatch => Reason::PreimageMismatch,
            Self::Revoked => Reason::Revoked,
            Self::Key(_) => Reason::UnknownKey,
            Self::ThirdPartyCaveat => Reason::ThirdPartyCaveat,
            Self::BadSignature => Reason::BadSignature,
            Self::Caveat(CaveatError::ServiceNotAllowed(_)) => Reason::WrongService,
            Self::Caveat(CaveatError::Expired) => Reason::Expired,
            Self::Caveat(CaveatError::MissingCapability(_)) => Reason::MissingCapability,
            Self::Caveat(_) => Reason::InvalidCaveat,
            Self::QuotaExhausted => Reason::QuotaExhausted,
        }
    }

    /// A short stable label, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        self.kind().label()
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub identifier: Identifier,
    /// What the caveats grant: a request count for counted tokens, the expiry.
    pub granted: Granted,
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
        let identifier = self.authenticate(credential)?;
        authorize(credential, identifier, req)
    }

    /// Everything that does not depend on the request or the clock: the preimage, the static
    /// revocations, the root key and the HMAC chain. What it establishes holds until the
    /// configuration changes, so a cache may keep it; [`authorize`] must still run per request.
    pub fn authenticate(&self, credential: &Credential) -> Result<Identifier, Rejection> {
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
        Ok(identifier)
    }
}

/// The request's part of verifying an authenticated credential: its caveats against the
/// service, the capabilities and the clock.
pub fn authorize(
    credential: &Credential,
    identifier: Identifier,
    req: &Requirement<'_>,
) -> Result<Verified, Rejection> {
    let granted = caveat::check(credential.macaroon.first_party_caveats(), req)?;
    Ok(Verified {
        identifier,
        granted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_distinct_labels() {
        let mut labels: Vec<_> = Reason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Reason::ALL.len());
    }
}
