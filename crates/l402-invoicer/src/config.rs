//! The service's configuration: one TOML file, validated completely at start-up. Each section is
//! parsed and checked by the module that uses it (`[server]` by serving, `[lnd]` by the lnd
//! client, `[rate_limit]` by the rate limiter, `[[services]]` by pricing, `keys` and `[invoice]`
//! by issuing); this file reads the file and puts the sections together.
//!
//! Secrets never sit in the file. Master secrets come from environment variables the file names
//! (the same `{id, env}` shape as the filter's `keys`), and the lnd macaroon from a file or the
//! `L402_LND_MACAROON` environment variable.

use std::path::Path;

use l402_core::KeySpec;
use serde::Deserialize;

use crate::config_error::field;
pub use crate::config_error::ConfigError;
pub use crate::issue::Minting;
use crate::issue::{compile_minting, InvoiceSection};
use crate::lnd::config::LndSection;
pub use crate::lnd::config::{Lnd, LND_MACAROON_ENV};
use crate::pricing::{compile_catalog, Catalog, ServiceSection};
use crate::quota::{QuotaSection, QuotaSettings};
use crate::ratelimit::{BucketStore, RateLimitSection, RateLimits};
pub use crate::serve::Server;
use crate::serve::ServerSection;
use crate::store::{Redis, RedisSection};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: ServerSection,
    lnd: LndSection,
    keys: Vec<KeySpec>,
    mint_key_id: Option<u32>,
    #[serde(default)]
    invoice: InvoiceSection,
    #[serde(default)]
    rate_limit: RateLimitSection,
    services: Vec<ServiceSection>,
    redis: Option<RedisSection>,
    #[serde(default)]
    quota: QuotaSection,
    admin: Option<AdminSection>,
}

/// `[admin]`: who may record revocations (`POST /v1/revocations`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminSection {
    /// The variable holding the bearer token; at least 32 characters.
    token_env: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The master secrets by id and variable, as configured (the secrets are in `minting`).
    pub keys: Vec<KeySpec>,
    pub server: Server,
    pub lnd: Lnd,
    pub minting: Minting,
    pub invoice_expiry_seconds: u32,
    pub rate_limits: RateLimits,
    pub catalog: Catalog,
    /// The shared store, if configured: counted tokens, revocations, shared rate limits.
    pub redis: Option<Redis>,
    pub quota: QuotaSettings,
    /// The bearer token of `POST /v1/revocations`; without it, revoking is off.
    pub admin_token: Option<String>,
}

impl Config {
    /// Reads and validates `path`; `env` is the process environment in production.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::parse(&text, base, env)
    }

    /// Validates TOML `text`; relative file paths in it are resolved against `base`.
    pub fn parse(
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().message().to_string();
            field(path, message)
        })?;
        let redis = raw.redis.map(|r| r.compile(base, env)).transpose()?;
        let catalog = compile_catalog(raw.services)?;
        let rate_limits = raw.rate_limit.compile()?;
        if redis.is_none() {
            // Counted tokens and shared buckets have nowhere to count without the store.
            if let Some(counted) = catalog.first_counted_field() {
                return Err(field(
                    counted,
                    "counted tokens need the shared store: add a [redis] section",
                ));
            }
            if rate_limits.store == BucketStore::Redis {
                return Err(field(
                    "rate_limit.store",
                    "`redis` needs the shared store: add a [redis] section",
                ));
            }
        }
        let admin_token = match raw.admin {
            None => None,
            Some(admin) => {
                let token = env(&admin.token_env).unwrap_or_default();
                if token.len() < 32 {
                    return Err(field(
                        "admin.token_env",
                        format!(
                            "variable {} must hold at least 32 characters",
                            admin.token_env
                        ),
                    ));
                }
                Some(token)
            }
        };
        Ok(Self {
            server: raw.server.compile()?,
            lnd: raw.lnd.compile(base, env)?,
            minting: compile_minting(&raw.keys, raw.mint_key_id, env)?,
            keys: raw.keys,
            invoice_expiry_seconds: raw.invoice.compile()?,
            rate_limits,
            catalog,
            redis,
            quota: raw.quota.compile()?,
            admin_token,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
