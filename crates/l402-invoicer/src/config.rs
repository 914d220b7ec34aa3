//! The service's configuration: one TOML file, validated completely at start-up.
//!
//! Secrets never sit in the file. Master secrets come from environment variables the file names
//! (the same `{id, env}` shape as the filter's `keys`), and the lnd macaroon from a file or, when
//! set, the `L402_LND_MACAROON` environment variable (hex), which is how Kubernetes Secrets and
//! docker-compose pass it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use l402_core::{EnvKeyError, KeyId, KeyRing, Macaroon};
use serde::Deserialize;
use thiserror::Error;

use crate::connections::ConnectionLimits;
use crate::pricing::{Catalog, PriceOverride, Service};
use crate::ratelimit::{BucketConfig, RateLimits};

/// Overrides `lnd.macaroon_path` with the macaroon itself, hex encoded.
pub const LND_MACAROON_ENV: &str = "L402_LND_MACAROON";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {problem}")]
    Read { path: String, problem: String },
    #[error("configuration is not valid TOML: {0}")]
    Toml(String),
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
}

pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    lnd: RawLnd,
    keys: Vec<RawKey>,
    mint_key_id: Option<u32>,
    #[serde(default)]
    invoice: RawInvoice,
    #[serde(default)]
    rate_limit: RawRateLimit,
    services: Vec<RawService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    max_body_bytes: usize,
    shutdown_grace_seconds: u64,
    max_connections: usize,
    header_read_timeout_ms: u64,
    max_header_bytes: usize,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8402".into(),
            max_body_bytes: 8 * 1024,
            shutdown_grace_seconds: 10,
            max_connections: 1024,
            header_read_timeout_ms: 30_000,
            max_header_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLnd {
    rest_url: String,
    tls_cert_path: PathBuf,
    macaroon_path: Option<PathBuf>,
    #[serde(default = "default_connect_timeout_ms")]
    connect_timeout_ms: u64,
    #[serde(default = "default_request_timeout_ms")]
    request_timeout_ms: u64,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
}

fn default_connect_timeout_ms() -> u64 {
    500
}

// Below the filter's default callout timeout (1 s), so that the filter sees this service's
// answer (a 503 naming the cause) rather than its own timeout.
fn default_request_timeout_ms() -> u64 {
    800
}

fn default_max_retries() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: u32,
    env: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawInvoice {
    expiry_seconds: u32,
}

impl Default for RawInvoice {
    fn default() -> Self {
        Self {
            expiry_seconds: 3600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRateLimit {
    per_client: RawBucket,
    unknown_client: RawBucket,
    global: RawBucket,
    max_tracked_clients: usize,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            per_client: RawBucket {
                burst: 20,
                per_second: 1.0,
            },
            unknown_client: RawBucket {
                burst: 20,
                per_second: 1.0,
            },
            global: RawBucket {
                burst: 200,
                per_second: 50.0,
            },
            max_tracked_clients: 100_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBucket {
    burst: u32,
    per_second: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    #[serde(default)]
    tier: u32,
    price_sat: Option<u64>,
    price_msat: Option<u64>,
    #[serde(default)]
    capabilities: Vec<String>,
    timeout_seconds: Option<u64>,
    memo: Option<String>,
    #[serde(default)]
    prices: Vec<RawPriceOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPriceOverride {
    method: Option<String>,
    path_prefix: Option<String>,
    price_sat: Option<u64>,
    price_msat: Option<u64>,
    capabilities: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub connections: ConnectionLimits,
}

/// Where lnd is and how to reach it. `Debug` leaves the macaroon out.
#[derive(Clone)]
pub struct Lnd {
    pub rest_url: String,
    pub tls_cert_pem: Vec<u8>,
    pub macaroon_hex: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_retries: u32,
}

impl std::fmt::Debug for Lnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lnd")
            .field("rest_url", &self.rest_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Minting {
    pub ring: KeyRing,
    /// The master secret new tokens are minted under; the others stay live in the filter.
    pub key_id: KeyId,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub lnd: Lnd,
    pub minting: Minting,
    pub invoice_expiry_seconds: u32,
    pub rate_limits: RateLimits,
    pub catalog: Catalog,
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
        Ok(Self {
            server: compile_server(raw.server)?,
            lnd: compile_lnd(raw.lnd, base, env)?,
            minting: compile_minting(&raw.keys, raw.mint_key_id, env)?,
            invoice_expiry_seconds: compile_expiry(raw.invoice.expiry_seconds)?,
            rate_limits: compile_rate_limits(raw.rate_limit)?,
            catalog: compile_catalog(raw.services)?,
        })
    }
}

fn compile_server(raw: RawServer) -> Result<Server, ConfigError> {
    let listen = raw
        .listen
        .parse()
        .map_err(|_| field("server.listen", "must be IP:PORT, such as 127.0.0.1:8402"))?;
    if !(256..=1024 * 1024).contains(&raw.max_body_bytes) {
        return Err(field(
            "server.max_body_bytes",
            "must be between 256 and 1048576",
        ));
    }
    if !(1..=1_000_000).contains(&raw.max_connections) {
        return Err(field(
            "server.max_connections",
            "must be between 1 and 1000000",
        ));
    }
    if !(100..=300_000).contains(&raw.header_read_timeout_ms) {
        return Err(field(
            "server.header_read_timeout_ms",
            "must be between 100 and 300000",
        ));
    }
    // hyper's read buffer cannot be smaller than 8 KiB.
    if !(8192..=1024 * 1024).contains(&raw.max_header_bytes) {
        return Err(field(
            "server.max_header_bytes",
            "must be between 8192 and 1048576",
        ));
    }
    Ok(Server {
        listen,
        max_body_bytes: raw.max_body_bytes,
        shutdown_grace: Duration::from_secs(raw.shutdown_grace_seconds),
        connections: ConnectionLimits {
            max_connections: raw.max_connections,
            header_read_timeout: Duration::from_millis(raw.header_read_timeout_ms),
            max_header_bytes: raw.max_header_bytes,
        },
    })
}

fn compile_lnd(
    raw: RawLnd,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Lnd, ConfigError> {
    let rest_url = raw.rest_url.trim_end_matches('/').to_string();
    let authority = rest_url.strip_prefix("https://").ok_or_else(|| {
        field(
            "lnd.rest_url",
            "must be https://HOST:PORT (lnd's REST port; plain http is refused)",
        )
    })?;
    if authority.is_empty() || authority.contains('/') {
        return Err(field(
            "lnd.rest_url",
            "must be https://HOST:PORT without a path",
        ));
    }
    let cert_path = base.join(&raw.tls_cert_path);
    let tls_cert_pem = std::fs::read(&cert_path).map_err(|e| {
        field(
            "lnd.tls_cert_path",
            format!("cannot read {}: {e}", cert_path.display()),
        )
    })?;
    crate::lnd::tls::pinned_certificate(&tls_cert_pem)
        .map_err(|problem| field("lnd.tls_cert_path", problem))?;
    let macaroon = lnd_macaroon(raw.macaroon_path.as_deref(), base, env)?;
    for (name, ms) in [
        ("lnd.connect_timeout_ms", raw.connect_timeout_ms),
        ("lnd.request_timeout_ms", raw.request_timeout_ms),
    ] {
        if !(1..=60_000).contains(&ms) {
            return Err(field(name, "must be between 1 and 60000"));
        }
    }
    if raw.max_retries > 5 {
        return Err(field("lnd.max_retries", "must be at most 5"));
    }
    Ok(Lnd {
        rest_url,
        tls_cert_pem,
        macaroon_hex: hex::encode(macaroon),
        connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
        request_timeout: Duration::from_millis(raw.request_timeout_ms),
        max_retries: raw.max_retries,
    })
}

/// The macaroon bytes, checked to be a macaroon so a wrong file fails here and not on the
/// first paying customer. Errors never include its content.
fn lnd_macaroon(
    path: Option<&Path>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<u8>, ConfigError> {
    let (name, bytes) = match (env(LND_MACAROON_ENV), path) {
        (Some(hex_value), _) => {
            let bytes = hex::decode(hex_value.trim()).map_err(|_| {
                field(
                    LND_MACAROON_ENV,
                    "environment variable is not hex (lncli bakemacaroon prints hex)",
                )
            })?;
            (LND_MACAROON_ENV.to_string(), bytes)
        }
        (None, Some(path)) => {
            let path = base.join(path);
            let bytes = std::fs::read(&path).map_err(|e| {
                field(
                    "lnd.macaroon_path",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            ("lnd.macaroon_path".to_string(), bytes)
        }
        (None, None) => {
            return Err(field(
                "lnd.macaroon_path",
                format!("is required unless {LND_MACAROON_ENV} is set"),
            ))
        }
    };
    Macaroon::decode(&bytes)
        .map_err(|_| field(name, "is not a macaroon (expected lnd's binary .macaroon)"))?;
    Ok(bytes)
}

fn compile_minting(
    keys: &[RawKey],
    mint_key_id: Option<u32>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Minting, ConfigError> {
    if keys.is_empty() {
        return Err(field("keys", "at least one master key is required"));
    }
    let ring = KeyRing::from_env(keys.iter().map(|k| (k.id, k.env.as_str())), env).map_err(
        |e| match &e {
            EnvKeyError::NotSet { index, .. } | EnvKeyError::NotHex { index, .. } => {
                field(format!("keys[{index}].env"), e.to_string())
            }
            EnvKeyError::Ring(inner) => field("keys", inner.to_string()),
        },
    )?;
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

fn compile_expiry(seconds: u32) -> Result<u32, ConfigError> {
    if !(60..=7 * 24 * 3600).contains(&seconds) {
        return Err(field(
            "invoice.expiry_seconds",
            "must be between 60 and 604800",
        ));
    }
    Ok(seconds)
}

fn compile_rate_limits(raw: RawRateLimit) -> Result<RateLimits, ConfigError> {
    let bucket = |name: &str, b: &RawBucket| {
        if b.burst == 0 {
            return Err(field(
                format!("rate_limit.{name}.burst"),
                "must be at least 1",
            ));
        }
        if !(b.per_second.is_finite() && b.per_second > 0.0) {
            return Err(field(
                format!("rate_limit.{name}.per_second"),
                "must be a positive number",
            ));
        }
        Ok(BucketConfig {
            burst: b.burst,
            per_second: b.per_second,
        })
    };
    if raw.max_tracked_clients == 0 {
        return Err(field(
            "rate_limit.max_tracked_clients",
            "must be at least 1",
        ));
    }
    Ok(RateLimits {
        per_client: bucket("per_client", &raw.per_client)?,
        unknown_client: bucket("unknown_client", &raw.unknown_client)?,
        global: bucket("global", &raw.global)?,
        max_tracked_clients: raw.max_tracked_clients,
    })
}

fn compile_catalog(raw: Vec<RawService>) -> Result<Catalog, ConfigError> {
    if raw.is_empty() {
        return Err(field("services", "at least one service is required"));
    }
    let mut services = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let at = |name: &str| format!("services[{i}].{name}");
        if !is_service_name(&s.name) {
            return Err(field(
                at("name"),
                "must be 1-64 characters of A-Z a-z 0-9 . _ - (it is written into caveats)",
            ));
        }
        if services.iter().any(|other: &Service| other.name == s.name) {
            return Err(field(
                at("name"),
                format!("service `{}` is defined twice", s.name),
            ));
        }
        check_capabilities(&at("capabilities"), &s.capabilities)?;
        let price_msat = price(&at(""), s.price_sat, s.price_msat)?;
        let mut overrides = Vec::with_capacity(s.prices.len());
        for (j, p) in s.prices.into_iter().enumerate() {
            let at = format!("services[{i}].prices[{j}].");
            if p.method.is_none() && p.path_prefix.is_none() {
                return Err(field(
                    format!("{at}method"),
                    "an override needs `method`, `path_prefix` or both",
                ));
            }
            if p.path_prefix
                .as_deref()
                .is_some_and(|p| !p.starts_with('/'))
            {
                return Err(field(format!("{at}path_prefix"), "must start with `/`"));
            }
            if let Some(capabilities) = &p.capabilities {
                check_capabilities(&format!("{at}capabilities"), capabilities)?;
            }
            overrides.push(PriceOverride {
                method: p.method.map(|m| m.to_ascii_uppercase()),
                path_prefix: p.path_prefix,
                price_msat: price(&at, p.price_sat, p.price_msat)?,
                capabilities: p.capabilities,
            });
        }
        if let Some(0) = s.timeout_seconds {
            return Err(field(
                at("timeout_seconds"),
                "must be at least 1 (omit it for tokens that do not expire)",
            ));
        }
        let memo = s
            .memo
            .unwrap_or_else(|| format!("L402 access to {}", s.name));
        // lnd refuses memos over 639 bytes (the BOLT 11 description limit).
        if memo.len() > 639 {
            return Err(field(at("memo"), "must be at most 639 bytes"));
        }
        services.push(Service {
            name: s.name,
            tier: s.tier,
            capabilities: s.capabilities,
            price_msat,
            overrides,
            token_lifetime_seconds: s.timeout_seconds,
            memo,
        });
    }
    Ok(Catalog::new(services))
}

/// `prefix` ends where the field name starts (`services[0].`).
fn price(prefix: &str, sat: Option<u64>, msat: Option<u64>) -> Result<u64, ConfigError> {
    let msat = match (sat, msat) {
        (Some(sat), None) => sat
            .checked_mul(1000)
            .ok_or_else(|| field(format!("{prefix}price_sat"), "is too large"))?,
        (None, Some(msat)) => msat,
        (Some(_), Some(_)) => {
            return Err(field(
                format!("{prefix}price_sat"),
                "give `price_sat` or `price_msat`, not both",
            ))
        }
        (None, None) => {
            return Err(field(
                format!("{prefix}price_sat"),
                "a price is required: `price_sat` or `price_msat`",
            ))
        }
    };
    if msat == 0 {
        return Err(field(
            format!("{prefix}price_sat"),
            "must be above zero (a free route belongs in the filter's `free` routes)",
        ));
    }
    Ok(msat)
}

fn check_capabilities(at: &str, capabilities: &[String]) -> Result<(), ConfigError> {
    match capabilities.iter().position(|c| !is_service_name(c)) {
        Some(j) => Err(field(
            format!("{at}[{j}]"),
            "must be 1-64 characters of A-Z a-z 0-9 . _ -",
        )),
        None => Ok(()),
    }
}

fn is_service_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
