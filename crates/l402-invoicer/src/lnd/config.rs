//! The `[lnd]` section: where lnd is and how to reach it. The macaroon comes from a file or, when
//! set, the `L402_LND_MACAROON` environment variable (hex), which is how Kubernetes Secrets and
//! docker-compose pass it; it is checked to be a macaroon at start-up and never printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use l402_core::Macaroon;
use serde::Deserialize;

use crate::config_error::{field, ConfigError};

/// Overrides `lnd.macaroon_path` with the macaroon itself, hex encoded.
pub const LND_MACAROON_ENV: &str = "L402_LND_MACAROON";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LndSection {
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

// Below the filter's callout timeout (`invoice_service.timeout_ms`: 2 s by default, 1 s in the
// shipped configs; tests/shipped_configs.rs checks every shipped pair), so that the filter sees
// this service's answer (a 503 naming the cause) rather than its own timeout.
fn default_request_timeout_ms() -> u64 {
    800
}

fn default_max_retries() -> u32 {
    2
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

impl LndSection {
    /// Relative file paths are resolved against `base`, the configuration file's folder.
    pub fn compile(
        self,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Lnd, ConfigError> {
        let raw = self;
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
            .map_err(|problem| field("lnd.tls_cert_path", problem.to_string()))?;
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
