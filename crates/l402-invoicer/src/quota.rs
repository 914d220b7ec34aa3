//! Counted tokens (`<service>_requests=N`), the service's side: a proxy asks for a block of a
//! token's requests and later gives back what it did not serve. The service verifies the token
//! itself, so the count it enforces is the token's own, whoever asks.

use std::sync::Arc;

use l402_core::contract::{LeaseAnswer, LeaseRequest, LeaseReturn, ReturnAnswer};
use l402_core::credentials::AUTHORIZATION;
use l402_core::{
    KeyRing, Rejection, Requirement, RevocationList, RootKeySource, TokenId, Verifier,
};
use serde::Deserialize;
use thiserror::Error;

use crate::config_error::{field, ConfigError};
use crate::issue::unix_now;
use crate::store::quota::LeaseAsk;
use crate::store::{Store, StoreError};

#[derive(Debug, Error)]
pub enum LeaseError {
    #[error("no shared store is configured (`[redis]`), so counted tokens cannot be served")]
    NoStore,
    #[error("token does not verify: {0}")]
    Token(Rejection),
    #[error("token carries no `{0}_requests` caveat: it is not counted")]
    NotCounted(String),
    #[error("`token_id` or `lease` is not hex of the right length")]
    BadReturn,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness for a lease name: {0}")]
    Random(getrandom::Error),
}

/// How leases behave (the `[quota]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSettings {
    /// How long a proxy may serve from a block before it gives back the rest.
    pub hold_ms: u32,
    /// How long after the hold time an unreturned block is forgotten (and stays counted).
    pub grace_ms: u32,
    /// The largest block, whatever a proxy asks for.
    pub max_block: u32,
    /// At most 1/`share` of what is left goes into one block.
    pub share: u32,
    /// For counted tokens that never expire: how long their count is kept after its last use.
    pub idle_lifetime_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaSection {
    hold_ms: u32,
    grace_ms: u32,
    max_block: u32,
    share: u32,
    idle_lifetime_seconds: u64,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        Self {
            hold_ms: 5_000,
            grace_ms: 25_000,
            max_block: 1_000,
            share: 4,
            idle_lifetime_seconds: 90 * 24 * 3600,
        }
    }
}

impl Default for QuotaSection {
    fn default() -> Self {
        let d = QuotaSettings::default();
        Self {
            hold_ms: d.hold_ms,
            grace_ms: d.grace_ms,
            max_block: d.max_block,
            share: d.share,
            idle_lifetime_seconds: d.idle_lifetime_seconds,
        }
    }
}

impl QuotaSection {
    pub fn compile(self) -> Result<QuotaSettings, ConfigError> {
        let within = |name: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(field(
                    format!("quota.{name}"),
                    format!("must be between {} and {}", range.start(), range.end()),
                ))
            }
        };
        within("hold_ms", self.hold_ms.into(), 100..=60_000)?;
        within("grace_ms", self.grace_ms.into(), 1_000..=600_000)?;
        within("max_block", self.max_block.into(), 1..=100_000)?;
        within("share", self.share.into(), 1..=1_000)?;
        within(
            "idle_lifetime_seconds",
            self.idle_lifetime_seconds,
            60..=10 * 365 * 24 * 3600,
        )?;
        Ok(QuotaSettings {
            hold_ms: self.hold_ms,
            grace_ms: self.grace_ms,
            max_block: self.max_block,
            share: self.share,
            idle_lifetime_seconds: self.idle_lifetime_seconds,
        })
    }
}

pub struct Counting {
    pub store: Option<Arc<Store>>,
    pub verifier: Verifier,
    pub settings: QuotaSettings,
}

impl Counting {
    pub fn new(store: Option<Arc<Store>>, ring: KeyRing, settings: QuotaSettings) -> Self {
        Self {
            store,
            // Revocation is the proxy's check, made before it asks; this one is about the count.
            verifier: Verifier::new(RootKeySource::Derived(ring), RevocationList::default()),
            settings,
        }
    }

    fn store(&self) -> Result<&Store, LeaseError> {
        self.store.as_deref().ok_or(LeaseError::NoStore)
    }

    pub async fn lease(&self, request: &LeaseRequest<'_>) -> Result<LeaseAnswer, LeaseError> {
        let store = self.store()?;
        let line = format!("L402 {}", request.token);
        let requirement = Requirement {
            service: &request.service,
            capabilities: &[],
            now: unix_now(),
        };
        let headers = [(AUTHORIZATION.as_bytes(), line.as_bytes())];
        let (_, verified) = self
            .verifier
            .verify_headers(headers, &requirement)
            .map_err(LeaseError::Token)?;
        let limit = verified
            .granted
            .requests
            .ok_or_else(|| LeaseError::NotCounted(request.service.to_string()))?;
        let token_id = verified.identifier.token_id.to_hex();
        let lease_id = random_hex().map_err(LeaseError::Random)?;
        let leased = store
            .lease(&LeaseAsk {
                token_id: &token_id,
                lease_id: &lease_id,
                limit,
                want: request.want.clamp(1, self.settings.max_block),
                lapse_ms: u64::from(self.settings.hold_ms) + u64::from(self.settings.grace_ms),
                token_expiry: verified.granted.valid_until,
                idle_lifetime_seconds: self.settings.idle_lifetime_seconds,
                share: self.settings.share,
                done: request.done.as_deref().filter(|d| is_lease_name(d)),
            })
            .await?;
        Ok(LeaseAnswer {
            granted: leased.granted,
            lease: if leased.granted > 1 {
                lease_id
            } else {
                String::new()
            },
            remaining: leased.remaining,
            held: leased.held,
            hold_ms: self.settings.hold_ms,
        })
    }

    pub async fn give_back(&self, back: &LeaseReturn<'_>) -> Result<ReturnAnswer, LeaseError> {
        let store = self.store()?;
        let token_id = TokenId::from_hex(&back.token_id).ok_or(LeaseError::BadReturn)?;
        if !is_lease_name(&back.lease) {
            return Err(LeaseError::BadReturn);
        }
        let credited = store
            .give_back(
                &token_id.to_hex(),
                &back.lease.to_ascii_lowercase(),
                back.unused,
            )
            .await?;
        Ok(ReturnAnswer { credited })
    }
}

/// What [`random_hex`] makes: 32 lower-case hex digits.
fn is_lease_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 128 random bits in hex: a lease's name, which only its holder learns.
pub fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}
