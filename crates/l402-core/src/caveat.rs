//! First-party caveats (`condition=value`) and the rules Aperture enforces on them.
//!
//! Aperture checks only `services` and `<service>_valid_until`; everything else (capabilities,
//! constraints, `preimage=`, unknown caveats) is left to the backend. We add one documented
//! extensions: `<service>_capabilities` is enforced when a route requires capabilities, and
//! `<service>_requests=N` makes the token good for at most N requests in all (the count itself is
//! kept by the invoice service; this module only reads N).
//! Caveats of the same condition may repeat; each later one may only narrow the previous one and
//! the last one decides, which lets a holder attenuate a token before lending it.

use thiserror::Error;

pub const SERVICES: &str = "services";
pub const CAPABILITIES_SUFFIX: &str = "_capabilities";
pub const VALID_UNTIL_SUFFIX: &str = "_valid_until";
pub const REQUESTS_SUFFIX: &str = "_requests";
pub const PREIMAGE: &str = "preimage";

/// A caveat split at its first `=`, as Aperture's `DecodeCaveat` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caveat<'a> {
    pub condition: &'a [u8],
    pub value: &'a [u8],
}

impl<'a> Caveat<'a> {
    /// `None` when there is no `=`: such caveats are skipped, never an error.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let eq = raw.iter().position(|&b| b == b'=')?;
        Some(Self {
            condition: &raw[..eq],
            value: &raw[eq + 1..],
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaveatError {
    #[error("services caveat is empty")]
    NoServices,
    #[error("services caveat has an element that is not `name:tier`")]
    MalformedService,
    #[error("services caveat widens an earlier one")]
    ServicesWidened,
    #[error("token is not valid for service `{0}`")]
    ServiceNotAllowed(String),
    #[error("valid_until caveat is not a decimal unix time")]
    MalformedExpiry,
    #[error("valid_until caveat extends an earlier one")]
    ExpiryExtended,
    #[error("token expired")]
    Expired,
    #[error("capabilities caveat widens an earlier one")]
    CapabilitiesWidened,
    #[error("token does not grant capability `{0}`")]
    MissingCapability(String),
    #[error("requests caveat is not a decimal count")]
    MalformedRequests,
}

/// What a token's caveats grant a request that passed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Granted {
    /// The lowest `<service>_requests` of the token: how many requests it is good for in all.
    /// `None`: no count (a bearer pass until it expires).
    pub requests: Option<u64>,
    /// The effective `<service>_valid_until`, if any.
    pub valid_until: Option<i64>,
}

/// What a request needs from a token's caveats.
#[derive(Debug, Clone, Copy)]
pub struct Requirement<'a> {
    pub service: &'a str,
    /// Capabilities the route requires; empty turns the capabilities check off.
    pub capabilities: &'a [String],
    /// Current unix time in whole seconds.
    pub now: i64,
}

/// Checks the first-party caveat ids of a verified macaroon against `req`.
pub fn check<'a>(
    caveats: impl IntoIterator<Item = &'a [u8]>,
    req: &Requirement<'_>,
) -> Result<Granted, CaveatError> {
    let service = req.service.as_bytes();
    let mut services: Option<&[u8]> = None;
    let mut expiry: Option<i64> = None;
    let mut capabilities: Option<&[u8]> = None;
    let mut requests: Option<u64> = None;

    for caveat in caveats.into_iter().filter_map(Caveat::parse) {
        if caveat.condition == SERVICES.as_bytes() {
            let current = caveat.value;
            match services {
                Some(previous) => narrow_services(previous, current)?,
                None => validate_services(current)?,
            }
            services = Some(current);
        } else if is_service_condition(caveat.condition, service, VALID_UNTIL_SUFFIX) {
            let current = parse_unix(caveat.value)?;
            if expiry.is_some_and(|previous| previous < current) {
                return Err(CaveatError::ExpiryExtended);
            }
            expiry = Some(current);
        } else if !req.capabilities.is_empty()
            && is_service_condition(caveat.condition, service, CAPABILITIES_SUFFIX)
        {
            if let Some(previous) = capabilities {
                if !list(caveat.value).all(|c| list(previous).any(|p| p == c)) {
                    return Err(CaveatError::CapabilitiesWidened);
                }
            }
            capabilities = Some(caveat.value);
        } else if is_service_condition(caveat.condition, service, REQUESTS_SUFFIX) {
            // Narrowing only, and without an error for a raise: whoever adds a caveat can only
            // lower the count, so the lowest one wins wherever it stands.
            let current = parse_count(caveat.value)?;
            requests = Some(requests.map_or(current, |previous| previous.min(current)));
        }
    }

    if let Some(services) = services {
        if !service_names(services).any(|name| name == service) {
            return Err(CaveatError::ServiceNotAllowed(req.service.to_owned()));
        }
    }
    if let Some(expiry) = expiry {
        if req.now >= expiry {
            return Err(CaveatError::Expired);
        }
    }
    // No capabilities caveat means the token was minted without restriction on capabilities.
    if let Some(granted) = capabilities {
        if let Some(missing) = req
            .capabilities
            .iter()
            .find(|want| !list(granted).any(|g| g == want.as_bytes()))
        {
            return Err(CaveatError::MissingCapability(missing.clone()));
        }
    }
    Ok(Granted {
        requests,
        valid_until: expiry,
    })
}

fn is_service_condition(condition: &[u8], service: &[u8], suffix: &str) -> bool {
    condition.len() == service.len() + suffix.len()
        && condition.starts_with(service)
        && condition.ends_with(suffix.as_bytes())
}

fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',')
}

/// Every element must be `name:tier` with a non-empty name and a decimal tier, as Aperture's
/// `decodeServicesCaveatValue` requires.
fn validate_services(value: &[u8]) -> Result<(), CaveatError> {
    if value.is_empty() {
        return Err(CaveatError::NoServices);
    }
    for element in list(value) {
        let mut parts = element.split(|&b| b == b':');
        let (Some(name), Some(tier), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CaveatError::MalformedService);
        };
        let tier_ok = std::str::from_utf8(tier).is_ok_and(|t| t.parse::<i64>().is_ok());
        if name.is_empty() || !tier_ok {
            return Err(CaveatError::MalformedService);
        }
    }
    Ok(())
}

/// Names of a services value already checked by [`validate_services`].
fn service_names(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    list(value).filter_map(|element| element.split(|&b| b == b':').next())
}

fn narrow_services(previous: &[u8], current: &[u8]) -> Result<(), CaveatError> {
    validate_services(current)?;
    if service_names(current).all(|name| service_names(previous).any(|p| p == name)) {
        Ok(())
    } else {
        Err(CaveatError::ServicesWidened)
    }
}

/// A signed decimal int64 and nothing else (Go's `strconv.ParseInt(s, 10, 64)`).
fn parse_unix(value: &[u8]) -> Result<i64, CaveatError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(CaveatError::MalformedExpiry)
}

/// Decimal digits only, no sign (a count is never negative): `0` is a token already used up.
fn parse_count(value: &[u8]) -> Result<u64, CaveatError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(CaveatError::MalformedRequests);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(CaveatError::MalformedRequests)
}

/// `services=<name>:<tier>`, the first caveat Aperture mints.
pub fn services(name: &str, tier: u32) -> String {
    format!("{SERVICES}={name}:{tier}")
}

/// `<service>_capabilities=<a,b>`, written by Aperture even when the list is empty.
pub fn capabilities(service: &str, capabilities: &[String]) -> String {
    format!("{service}{CAPABILITIES_SUFFIX}={}", capabilities.join(","))
}

/// `<service>_valid_until=<unix seconds>`.
pub fn valid_until(service: &str, unix: i64) -> String {
    format!("{service}{VALID_UNTIL_SUFFIX}={unix}")
}

/// `<service>_requests=<count>`.
pub fn requests(service: &str, count: u64) -> String {
    format!("{service}{REQUESTS_SUFFIX}={count}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn check_all(caveats: &[&str], service: &str, caps: &[&str]) -> Result<(), CaveatError> {
        grants(caveats, service, caps).map(|_| ())
    }

    fn grants(caveats: &[&str], service: &str, caps: &[&str]) -> Result<Granted, CaveatError> {
        let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        let req = Requirement {
            service,
            capabilities: &caps,
            now: NOW,
        };
        check(caveats.iter().map(|c| c.as_bytes()), &req)
    }

    #[test]
    fn splits_at_the_first_equals_sign() {
        let c = Caveat::parse(b"a=b=c").unwrap();
        assert_eq!((c.condition, c.value), (&b"a"[..], &b"b=c"[..]));
        assert_eq!(Caveat::parse(b"no equals sign"), None);
    }

    #[test]
    fn no_services_caveat_is_valid_for_every_service() {
        assert_eq!(check_all(&[], "anything", &[]), Ok(()));
    }

    #[test]
    fn service_must_be_named_in_the_last_services_caveat() {
        assert_eq!(check_all(&["services=a:0,b:0"], "b", &[]), Ok(()));
        assert_eq!(
            check_all(&["services=a:0"], "b", &[]),
            Err(CaveatError::ServiceNotAllowed("b".into()))
        );
        assert_eq!(
            check_all(&["services=a:0,b:0", "services=a:0"], "b", &[]),
            Err(CaveatError::ServiceNotAllowed("b".into()))
        );
    }

    #[test]
    fn services_may_only_narrow() {
        assert_eq!(
            check_all(&["services=a:0", "services=a:0,b:0"], "a", &[]),
            Err(CaveatError::ServicesWidened)
        );
    }

    #[test]
    fn malformed_services_are_errors() {
        for bad in [
            "services=",
            "services=a",
            "services=a:0:1",
            "services=:0",
            "services=a:x",
            "services=a:0,",
        ] {
            assert!(check_all(&[bad], "a", &[]).is_err(), "{bad} accepted");
        }
        assert_eq!(
            check_all(&["services=a:-1,b:+2"], "b", &[]),
            Ok(()),
            "Go's Atoi takes signs"
        );
    }

    #[test]
    fn equal_time_is_expired() {
        let until = |t: i64| valid_until("a", t);
        assert_eq!(check_all(&[&until(NOW + 1)], "a", &[]), Ok(()));
        assert_eq!(
            check_all(&[&until(NOW)], "a", &[]),
            Err(CaveatError::Expired)
        );
        assert_eq!(
            check_all(&[&until(NOW - 1)], "a", &[]),
            Err(CaveatError::Expired)
        );
    }

    #[test]
    fn expiry_may_only_be_lowered() {
        let later = valid_until("a", NOW + 100);
        let sooner = valid_until("a", NOW + 10);
        assert_eq!(check_all(&[&later, &sooner], "a", &[]), Ok(()));
        assert_eq!(
            check_all(&[&sooner, &later], "a", &[]),
            Err(CaveatError::ExpiryExtended)
        );
        assert_eq!(
            check_all(&[&later, &valid_until("a", NOW)], "a", &[]),
            Err(CaveatError::Expired)
        );
    }

    #[test]
    fn expiry_of_another_service_is_ignored() {
        assert_eq!(check_all(&[&valid_until("b", 0)], "a", &[]), Ok(()));
        assert_eq!(check_all(&["b_valid_until=garbage"], "a", &[]), Ok(()));
    }

    #[test]
    fn expiry_must_be_a_signed_decimal() {
        for bad in [
            "a_valid_until=",
            "a_valid_until=1.5",
            "a_valid_until=0x10",
            "a_valid_until= 1",
        ] {
            assert_eq!(
                check_all(&[bad], "a", &[]),
                Err(CaveatError::MalformedExpiry),
                "{bad}"
            );
        }
        assert_eq!(check_all(&["a_valid_until=+9999999999"], "a", &[]), Ok(()));
    }

    #[test]
    fn capabilities_are_enforced_only_when_required() {
        let caveats = ["services=a:0", "a_capabilities=read"];
        assert_eq!(check_all(&caveats, "a", &[]), Ok(()));
        assert_eq!(check_all(&caveats, "a", &["read"]), Ok(()));
        assert_eq!(
            check_all(&caveats, "a", &["read", "write"]),
            Err(CaveatError::MissingCapability("write".into()))
        );
        assert_eq!(
            check_all(&["a_capabilities="], "a", &["read"]),
            Err(CaveatError::MissingCapability("read".into()))
        );
        assert_eq!(
            check_all(&["services=a:0"], "a", &["read"]),
            Ok(()),
            "no caveat: unrestricted"
        );
    }

    #[test]
    fn capabilities_may_only_narrow() {
        assert_eq!(
            check_all(
                &["a_capabilities=read", "a_capabilities=read,write"],
                "a",
                &["read"]
            ),
            Err(CaveatError::CapabilitiesWidened)
        );
        assert_eq!(
            check_all(
                &["a_capabilities=read,write", "a_capabilities=read"],
                "a",
                &["write"]
            ),
            Err(CaveatError::MissingCapability("write".into()))
        );
    }

    #[test]
    fn unknown_and_informational_caveats_are_skipped() {
        let caveats = [
            "preimage=00",
            "a_constraint=5",
            "weird",
            "=x",
            "services=a:0",
        ];
        assert_eq!(check_all(&caveats, "a", &[]), Ok(()));
    }

    #[test]
    fn the_lowest_request_count_wins_and_raising_it_has_no_effect() {
        let count = |caveats: &[&str]| grants(caveats, "a", &[]).map(|g| g.requests);
        assert_eq!(count(&["services=a:0"]), Ok(None), "no caveat: no count");
        assert_eq!(count(&["a_requests=50"]), Ok(Some(50)));
        assert_eq!(count(&["a_requests=50", "a_requests=5"]), Ok(Some(5)));
        assert_eq!(count(&["a_requests=5", "a_requests=500"]), Ok(Some(5)));
        assert_eq!(count(&["a_requests=0"]), Ok(Some(0)));
        assert_eq!(
            count(&["b_requests=1"]),
            Ok(None),
            "another service's count"
        );
    }

    #[test]
    fn a_request_count_must_be_plain_decimal_digits() {
        for bad in [
            "a_requests=",
            "a_requests=-1",
            "a_requests=+5",
            "a_requests=1.0",
            "a_requests= 5",
            "a_requests=0x10",
            "a_requests=99999999999999999999999",
        ] {
            assert_eq!(
                check_all(&[bad], "a", &[]),
                Err(CaveatError::MalformedRequests),
                "{bad}"
            );
        }
        assert_eq!(
            check_all(&["a_requests=5", "a_requests=x"], "a", &[]),
            Err(CaveatError::MalformedRequests),
            "a malformed later caveat is not skipped"
        );
    }

    #[test]
    fn the_effective_expiry_is_reported() {
        let g = grants(
            &[&valid_until("a", NOW + 100), &valid_until("a", NOW + 10)],
            "a",
            &[],
        );
        assert_eq!(g.unwrap().valid_until, Some(NOW + 10));
    }

    #[test]
    fn builders_write_aperture_order_and_format() {
        assert_eq!(services("svc", 0), "services=svc:0");
        assert_eq!(capabilities("svc", &[]), "svc_capabilities=");
        assert_eq!(
            capabilities("svc", &["a".into(), "b".into()]),
            "svc_capabilities=a,b"
        );
        assert_eq!(valid_until("svc", 42), "svc_valid_until=42");
        assert_eq!(requests("svc", 50), "svc_requests=50");
    }
}
