//! Issuing one challenge: price → rate limit → invoice on the node → check → mint.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint_derived};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::Minting;
use crate::invoice_check::check_invoice;
use crate::lnd::{BackendError, InvoiceBackend, InvoiceRequest};
use crate::metrics::Metrics;
use crate::pricing::Catalog;
use crate::ratelimit::{parse_client_ip, Limited, RateLimiter};

/// The filter's callout body. Unknown fields are ignored so either side can grow.
#[derive(Debug, Clone, Deserialize)]
pub struct ChallengeRequest {
    pub service: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// Standard base64 of the binary (V2) macaroon, as it goes into `WWW-Authenticate`.
    pub macaroon: String,
    pub invoice: String,
    /// Hex, as lnd and block explorers show it.
    pub payment_hash: String,
    pub amount_msat: u64,
    /// Unix seconds when the invoice expires.
    pub expires_at: i64,
    /// Hex; the filter forwards it to the upstream as `x-l402-token-id` once paid.
    pub token_id: String,
    /// Unix seconds when the token stops working, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
}

impl ChallengeRequest {
    /// The path without a query string. The filter sends none; another caller might, and a
    /// query may carry the client's secrets, which must not reach pricing or the logs.
    pub fn path_only(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(&self.path, |(path, _)| path)
    }
}

#[derive(Debug, Error)]
pub enum IssueError {
    #[error("unknown service `{0}`")]
    UnknownService(String),
    #[error("too many challenges ({} limit)", .0.scope())]
    RateLimited(Limited),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("lnd returned an invoice that does not match: {0}")]
    InvoiceMismatch(String),
    #[error("cannot mint: {0}")]
    Mint(String),
}

pub struct Issuer<B> {
    pub backend: B,
    pub catalog: Catalog,
    pub minting: Minting,
    pub invoice_expiry_seconds: u32,
    pub limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
}

impl<B: InvoiceBackend> Issuer<B> {
    pub async fn issue(&self, request: &ChallengeRequest) -> Result<ChallengeResponse, IssueError> {
        let service = self
            .catalog
            .get(&request.service)
            .ok_or_else(|| IssueError::UnknownService(request.service.clone()))?;
        let client = request.client_ip.as_deref().and_then(parse_client_ip);
        if client.is_none() {
            self.metrics.unknown_client();
        }
        self.limiter
            .admit(client, Instant::now())
            .map_err(|limited| {
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
        let started = Instant::now();
        let created = self.backend.create_invoice(&invoice_request).await;
        self.metrics.lnd_call("add_invoice", started.elapsed());
        let created = created.inspect_err(|e| self.metrics.lnd_error(e.kind()))?;
        check_invoice(&created.payment_request, &created.r_hash, amount_msat).map_err(|e| {
            self.metrics.lnd_error("bad_response");
            IssueError::InvoiceMismatch(e)
        })?;

        let now = unix_now();
        let grant = service.grant(&offer, now);
        let mut random = [0u8; 28];
        getrandom::fill(&mut random).map_err(|e| IssueError::Mint(e.to_string()))?;
        let (macaroon, identifier) = mint_derived(
            &self.minting.ring,
            self.minting.key_id,
            random,
            created.r_hash,
            &aperture_caveats(&grant),
        )
        .map_err(|e| IssueError::Mint(e.to_string()))?;
        self.metrics.challenge_issued(&service.name, amount_msat);
        Ok(ChallengeResponse {
            macaroon: to_base64(&macaroon.encode()),
            invoice: created.payment_request,
            payment_hash: hex::encode(created.r_hash),
            amount_msat,
            expires_at: now.saturating_add(i64::from(self.invoice_expiry_seconds)),
            token_id: identifier.token_id.to_hex(),
            valid_until: grant.valid_until,
        })
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[path = "issue_tests.rs"]
mod tests;
