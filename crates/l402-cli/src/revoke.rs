//! `l402 revoke`: records token ids as revoked through the invoice service's admin endpoint
//! (`POST /v1/revocations`), from where every filter that reads the shared store learns them.
//! The admin token comes from the environment, never from an argument (arguments show in `ps`
//! and shell history), and never appears in what is printed.

use std::process::ExitCode;
use std::time::Duration;

use l402_core::contract::{RevokeRequest, REVOCATIONS_PATH};
use l402_core::TokenId;

use crate::commands::{bad_input, bad_usage, Failure};

/// The variable holding the admin token (the service's `[admin] token_env` names its own).
pub const ADMIN_TOKEN_ENV: &str = "L402_ADMIN_TOKEN";

pub fn revoke(service: &str, token_ids: &[String]) -> Result<ExitCode, Failure> {
    let token = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            bad_usage(format!(
                "set {ADMIN_TOKEN_ENV} to the service's admin token"
            ))
        })?;
    let ids = token_ids
        .iter()
        .map(|id| {
            TokenId::from_hex(id.trim())
                .ok_or_else(|| bad_usage(format!("`{id}` is not a token id (64 hex digits)")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let url = format!("{}{REVOCATIONS_PATH}", service.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    for id in ids {
        let body = serde_json::to_string(&RevokeRequest {
            token_id: id.to_hex(),
        })
        .map_err(|e| bad_input(format!("cannot encode the request: {e}")))?;
        let mut response = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .content_type("application/json")
            .send(body)
            .map_err(|e| bad_input(format!("cannot reach {url}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            return Err(bad_input(format!(
                "{url} answered {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        println!("{}", text.trim());
    }
    Ok(ExitCode::SUCCESS)
}
