//! Revocation in the shared store, the service's side: an operator records a token id
//! (authenticated with the admin bearer token), and every proxy reads the ids revoked since its
//! last read, page by page, from the root context of each worker.

use std::sync::Arc;

use l402_core::contract::{RevocationPage, RevokeRequest};
use l402_core::TokenId;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::quota::random_hex;
use crate::store::{Store, StoreError};

/// The most ids in one page: about 70 KiB of JSON, well inside the filter's read limit.
pub const PAGE_SIZE: usize = 1000;

#[derive(Debug, Error)]
pub enum RevocationError {
    #[error("no shared store is configured (`[redis]`): revocations live in the filter's `revoked_token_ids`")]
    NoStore,
    #[error("revoking is off: no `[admin] token_env` is configured")]
    NoAdmin,
    #[error("a valid `Authorization: Bearer` admin token is required")]
    Unauthorized,
    #[error("`token_id` must be 64 hex digits")]
    BadTokenId,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness for the revocation epoch: {0}")]
    Random(getrandom::Error),
}

pub struct Revocations {
    pub store: Option<Arc<Store>>,
    pub admin_token: Option<String>,
}

impl Revocations {
    fn store(&self) -> Result<&Store, RevocationError> {
        self.store.as_deref().ok_or(RevocationError::NoStore)
    }

    /// Whether `authorization` carries the admin token, compared in constant time.
    pub fn authorize(&self, authorization: Option<&[u8]>) -> Result<(), RevocationError> {
        let expected = self
            .admin_token
            .as_deref()
            .ok_or(RevocationError::NoAdmin)?;
        let given = authorization
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .ok_or(RevocationError::Unauthorized)?;
        if bool::from(given.ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(RevocationError::Unauthorized)
        }
    }

    /// Records the id; returns its number in the revocation history.
    pub async fn revoke(&self, request: &RevokeRequest) -> Result<u64, RevocationError> {
        let store = self.store()?;
        let id = TokenId::from_hex(&request.token_id).ok_or(RevocationError::BadTokenId)?;
        let epoch = random_hex().map_err(RevocationError::Random)?;
        Ok(store.revoke(&id.to_hex(), &epoch).await?)
    }

    pub async fn page(&self, after: u64) -> Result<RevocationPage, RevocationError> {
        let store = self.store()?;
        let epoch = random_hex().map_err(RevocationError::Random)?;
        let page = store.revoked_after(after, PAGE_SIZE, &epoch).await?;
        Ok(RevocationPage {
            more: page.ids.len() == PAGE_SIZE,
            ids: page.ids,
            cursor: page.last,
            epoch: page.epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_admin_token_authorizes() {
        let token = "a".repeat(40);
        let revocations = Revocations {
            store: None,
            admin_token: Some(token.clone()),
        };
        let bearer = format!("Bearer {token}");
        assert!(revocations.authorize(Some(bearer.as_bytes())).is_ok());
        for wrong in [None, Some(&b"Bearer nope"[..]), Some(token.as_bytes())] {
            assert!(matches!(
                revocations.authorize(wrong),
                Err(RevocationError::Unauthorized)
            ));
        }
        let off = Revocations {
            store: None,
            admin_token: None,
        };
        assert!(matches!(
            off.authorize(Some(bearer.as_bytes())),
            Err(RevocationError::NoAdmin)
        ));
    }
}
