//! The `[[services]]` tables: what each service costs and grants, checked and compiled into the
//! catalogue.

use l402_core::names::{is_valid_name, NAME_RULE};
use serde::Deserialize;

use super::{Catalog, PriceOverride, Service};
use crate::config_error::{field, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    name: String,
    #[serde(default)]
    tier: u32,
    price_sat: Option<u64>,
    price_msat: Option<u64>,
    #[serde(default)]
    capabilities: Vec<String>,
    timeout_seconds: Option<u64>,
    memo: Option<String>,
    requests: Option<u64>,
    #[serde(default)]
    prices: Vec<PriceSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceSection {
    method: Option<String>,
    path_prefix: Option<String>,
    price_sat: Option<u64>,
    price_msat: Option<u64>,
    capabilities: Option<Vec<String>>,
    requests: Option<u64>,
}

/// The `[[services]]` tables, as a catalogue.
pub fn compile_catalog(raw: Vec<ServiceSection>) -> Result<Catalog, ConfigError> {
    if raw.is_empty() {
        return Err(field("services", "at least one service is required"));
    }
    let mut services = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let at = |name: &str| format!("services[{i}].{name}");
        if !is_valid_name(&s.name) {
            return Err(field(at("name"), NAME_RULE));
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
                requests: requests(&format!("{at}requests"), p.requests)?,
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
            requests: requests(&at("requests"), s.requests)?,
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

/// The largest count: the shared store counts in Lua, whose numbers are exact to 2^53.
pub const MAX_REQUESTS: u64 = 1 << 53;

fn requests(at: &str, requests: Option<u64>) -> Result<Option<u64>, ConfigError> {
    match requests {
        Some(n) if !(1..=MAX_REQUESTS).contains(&n) => Err(field(
            at,
            format!("must be between 1 and {MAX_REQUESTS} (1 sells one request per payment)"),
        )),
        other => Ok(other),
    }
}

fn check_capabilities(at: &str, capabilities: &[String]) -> Result<(), ConfigError> {
    match capabilities.iter().position(|c| !is_valid_name(c)) {
        Some(j) => Err(field(format!("{at}[{j}]"), NAME_RULE)),
        None => Ok(()),
    }
}
