//! Issuing one challenge: price → rate limit → invoice on the node → check → mint.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use l402_core::contract::{ChallengeAnswer, ChallengeRequest};
use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint_derived};
use l402_core::{KeyError, KeyId, KeyRing, KeySpec};
use serde::Deserialize;
use thiserror::Error;

use crate::config_error::{field, ConfigError};
use crate::invoice_check::{check_invoice, Mismatch};
use crate::lnd::{BackendError, InvoiceBackend, InvoiceRequest};
use crate::metrics::Metrics;
use crate::page::{self, Sale};
use crate::pricing::Catalog;
use crate::ratelimit::{network_of, parse_client_ip, BucketStore, ClientKey, Limited, RateLimiter};
use crate::store::limits::Scope;
use crate::store::{Store, StoreError};

#[derive(Debug, Error)]
pub enum IssueError {
    #[error("unknown service `{0}`")]
    UnknownService(String),
    #[error("too many challenges ({} limit)", .0.scope())]
    RateLimited(Limited),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("lnd returned an invoice that does not match: {0}")]
    InvoiceMismatch(#[from] Mismatch),
    #[error("cannot mint: {0}")]
    Mint(#[from] KeyError),
    #[error("cannot mint: no randomness for the token id: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Issuer<B> {
    pub backend: B,
    pub catalog: Catalog,
    pub minting: Minting,
    pub invoice_expiry_seconds: u32,
    /// The longest a counted token is minted for when its service sets no lifetime: its count
    /// in the store is kept that long after its last use, so it must not outlive the count
    /// (a count that lapsed would start again from N).
    pub counted_lifetime_seconds: u64,
    pub limiter: RateLimiter,
    /// The shared store, for `rate_limit.store = "redis"`.
    pub store: Option<Arc<Store>>,
    pub metrics: Arc<Metrics>,
}

impl<B: InvoiceBackend> Issuer<B> {
    pub async fn issue(
        &self,
        request: &ChallengeRequest<'_>,
    ) -> Result<ChallengeAnswer, IssueError> {
        let service = self
            .catalog
            .get(&request.service)
            .ok_or_else(|| IssueError::UnknownService(request.service.to_string()))?;
        let client = request.client_ip.as_deref().and_then(parse_client_ip);
        if client.is_none() {
            self.metrics.unknown_client();
        }
        self.admit(client).await?.map_err(|limited| {
            self.metrics.rate_limited(limited.scope());
            IssueError::RateLimited(limited)
        })?;

        let offer = service.offer(&request.method, request.path_only());
        let amount_msat = offer.price_msat;
        let invoice_request = InvoiceRequest {
            value_msat: amount_msat,
            memo: service.memo.clone(),
            expiry_seconds: self.invoice_expiry_seconds,
        };
        let created = self.backend.create_invoice(&invoice_request).await?;
        check_invoice(&created.payment_request, &created.r_hash, amount_msat).map_err(|e| {
            self.metrics.lnd_error("bad_response");
            IssueError::InvoiceMismatch(e)
        })?;

        let now = unix_now();
        let mut grant = service.grant(&offer, now);
        if grant.requests.is_some() && grant.valid_until.is_none() {
            let most = i64::try_from(self.counted_lifetime_seconds).unwrap_or(i64::MAX);
            grant.valid_until = Some(now.saturating_add(most));
        }
        let mut random = [0u8; 28];
        getrandom::fill(&mut random).map_err(IssueError::Random)?;
        let (macaroon, identifier) = mint_derived(
            &self.minting.ring,
            self.minting.key_id,
            random,
            created.r_hash,
            &aperture_caveats(&grant),
        )?;
        self.metrics.challenge_issued(&service.name, amount_msat);
        let mut answer = ChallengeAnswer {
            macaroon: to_base64(&macaroon.encode()),
            invoice: created.payment_request,
            payment_hash: hex::encode(created.r_hash),
            amount_msat,
            expires_at: now.saturating_add(i64::from(self.invoice_expiry_seconds)),
            token_id: identifier.token_id.to_hex(),
            valid_until: grant.valid_until,
            page: None,
        };
        if request.page {
            answer.page = Some(page::render(&Sale {
                service: &service.name,
                amount_msat,
                requests: offer.requests,
                valid_for_seconds: grant.valid_until.map(|until| until - now),
                invoice: &answer.invoice,
                macaroon_base64: &answer.macaroon,
                invoice_expires_at: answer.expires_at,
                host: request.host.as_deref(),
                path: request.path_only(),
            }));
        }
        Ok(answer)
    }
}

impl<B> Issuer<B> {
    /// The store the rate limits live in, when they live in one (`rate_limit.store = "redis"`):
    /// then no challenge can be issued while it is down.
    pub fn limits_store(&self) -> Option<&Store> {
        match self.limiter.limits().store {
            BucketStore::Redis => self.store.as_deref(),
            BucketStore::Memory => None,
        }
    }

    /// One challenge's worth of the rate limits, from the buckets in memory or in the store.
    async fn admit(&self, client: ClientKey) -> Result<Result<(), Limited>, StoreError> {
        let limits = self.limiter.limits();
        match self.limits_store() {
            Some(store) => {
                let network = client.map(|ip| network_of(ip).to_string());
                let (scope, bucket) = match &network {
                    Some(network) => (Scope::Client(network), limits.per_client),
                    None => (Scope::Unknown, limits.unknown_client),
                };
                store.admit(scope, bucket, limits.global).await
            }
            None => Ok(self.limiter.admit(client, Instant::now())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Minting {
    pub ring: KeyRing,
    /// The master secret new tokens are minted under; the others stay live in the filter.
    pub key_id: KeyId,
}

// The `[invoice]` section, and `keys` with `mint_key_id`.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvoiceSection {
    expiry_seconds: u32,
}

impl Default for InvoiceSection {
    fn default() -> Self {
        Self {
            expiry_seconds: 3600,
        }
    }
}

impl InvoiceSection {
    /// The invoice expiry in seconds.
    pub fn compile(self) -> Result<u32, ConfigError> {
        let seconds = self.expiry_seconds;
        if !(60..=7 * 24 * 3600).contains(&seconds) {
            return Err(field(
                "invoice.expiry_seconds",
                "must be between 60 and 604800",
            ));
        }
        Ok(seconds)
    }
}

pub fn compile_minting(
    keys: &[KeySpec],
    mint_key_id: Option<u32>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Minting, ConfigError> {
    let ring = KeyRing::from_env(keys, env).map_err(|e| field(e.field(), e.to_string()))?;
    // Newest secret by default: rotating means adding a key with a higher id.
    let key_id = KeyId(mint_key_id.unwrap_or_else(|| keys.iter().map(|k| k.id).max().unwrap_or(0)));
    if !ring.contains(key_id) {
        return Err(field(
            "mint_key_id",
            format!("no key with id {key_id} in `keys`"),
        ));
    }
    Ok(Minting { ring, key_id })
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[path = "issue_tests.rs"]
mod tests;
