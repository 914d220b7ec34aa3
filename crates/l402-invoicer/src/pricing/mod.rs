//! What a request costs and what the token it buys grants: a price and capabilities per
//! service, with overrides by method and path prefix (a premium path sells a premium token).

use l402_core::mint::Grant;

mod config;

pub use config::{compile_catalog, ServiceSection};

/// A priced override. The first matching one in configuration order wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceOverride {
    /// Upper-case HTTP method, or any.
    pub method: Option<String>,
    /// Path prefix, or any.
    pub path_prefix: Option<String>,
    pub price_msat: u64,
    /// Capabilities granted instead of the service's, if given.
    pub capabilities: Option<Vec<String>>,
    /// A request count instead of the service's, if given.
    pub requests: Option<u64>,
}

/// What is sold for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer<'a> {
    pub price_msat: u64,
    pub capabilities: &'a [String],
    /// How many requests the token is good for; `None` for a token counted by time only.
    pub requests: Option<u64>,
}

impl PriceOverride {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub tier: u32,
    pub capabilities: Vec<String>,
    pub price_msat: u64,
    /// `requests = N`: tokens good for N requests in all.
    pub requests: Option<u64>,
    pub overrides: Vec<PriceOverride>,
    /// Seconds a token stays valid after minting; `None` for tokens that do not expire.
    pub token_lifetime_seconds: Option<u64>,
    pub memo: String,
}

impl Service {
    /// The offer for `method path`; the query string does not change it.
    pub fn offer(&self, method: &str, path: &str) -> Offer<'_> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let matched = self.overrides.iter().find(|o| o.matches(method, path));
        Offer {
            price_msat: matched.map_or(self.price_msat, |o| o.price_msat),
            capabilities: matched
                .and_then(|o| o.capabilities.as_deref())
                .unwrap_or(&self.capabilities),
            requests: matched.and_then(|o| o.requests).or(self.requests),
        }
    }

    /// What a token bought now (`now` in unix seconds) with `offer` grants.
    pub fn grant(&self, offer: &Offer<'_>, now: i64) -> Grant {
        Grant {
            service: self.name.clone(),
            tier: self.tier,
            capabilities: offer.capabilities.to_vec(),
            constraints: Vec::new(),
            valid_until: self
                .token_lifetime_seconds
                .map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX))),
            requests: offer.requests,
        }
    }

    /// Where, under this service's table, a request count is set (`requests` or
    /// `prices[j].requests`), if any offer sells counted tokens.
    pub fn counted_field(&self) -> Option<String> {
        if self.requests.is_some() {
            return Some("requests".into());
        }
        let j = self.overrides.iter().position(|o| o.requests.is_some())?;
        Some(format!("prices[{j}].requests"))
    }
}

/// Every service this instance sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    services: Vec<Service>,
}

impl Catalog {
    pub fn new(services: Vec<Service>) -> Self {
        Self { services }
    }

    pub fn get(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.name.as_str())
    }

    /// The field of the first request count in the configuration (`services[i].requests`,
    /// `services[i].prices[j].requests`): counted tokens need the shared store.
    pub fn first_counted_field(&self) -> Option<String> {
        self.services
            .iter()
            .enumerate()
            .find_map(|(i, s)| Some(format!("services[{i}].{}", s.counted_field()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Service {
        Service {
            name: "weather".into(),
            tier: 0,
            capabilities: vec!["read".into()],
            price_msat: 10_000,
            requests: None,
            overrides: vec![
                PriceOverride {
                    method: Some("POST".into()),
                    path_prefix: Some("/weather/bulk".into()),
                    price_msat: 500_000,
                    capabilities: Some(vec!["bulk".into()]),
                    requests: Some(100),
                },
                PriceOverride {
                    method: None,
                    path_prefix: Some("/weather/bulk".into()),
                    price_msat: 100_000,
                    capabilities: None,
                    requests: None,
                },
                PriceOverride {
                    method: Some("DELETE".into()),
                    path_prefix: None,
                    price_msat: 1,
                    capabilities: None,
                    requests: None,
                },
            ],
            token_lifetime_seconds: Some(60),
            memo: "weather".into(),
        }
    }

    #[test]
    fn base_offer_applies_when_no_override_matches() {
        let s = weather();
        let offer = s.offer("GET", "/weather/today");
        assert_eq!(offer.price_msat, 10_000);
        assert_eq!(offer.capabilities, ["read"]);
    }

    #[test]
    fn an_override_may_sell_other_capabilities() {
        let s = weather();
        assert_eq!(s.offer("POST", "/weather/bulk").capabilities, ["bulk"]);
        assert_eq!(s.offer("GET", "/weather/bulk").capabilities, ["read"]);
        let grant = s.grant(&s.offer("POST", "/weather/bulk"), 0);
        assert_eq!(grant.capabilities, ["bulk"]);
    }

    #[test]
    fn an_override_may_sell_a_request_count() {
        let s = weather();
        assert_eq!(s.offer("POST", "/weather/bulk").requests, Some(100));
        assert_eq!(s.offer("GET", "/weather/today").requests, None);
        assert_eq!(s.counted_field().as_deref(), Some("prices[0].requests"));
        let counted = Service {
            requests: Some(5),
            ..weather()
        };
        assert_eq!(counted.offer("GET", "/weather/today").requests, Some(5));
        let grant = counted.grant(&counted.offer("GET", "/"), 0);
        assert_eq!(grant.requests, Some(5));
    }

    #[test]
    fn first_matching_override_wins() {
        let s = weather();
        assert_eq!(s.offer("POST", "/weather/bulk/eu").price_msat, 500_000);
        assert_eq!(s.offer("post", "/weather/bulk").price_msat, 500_000);
        assert_eq!(s.offer("GET", "/weather/bulk").price_msat, 100_000);
        assert_eq!(s.offer("DELETE", "/weather/bulk").price_msat, 100_000);
        assert_eq!(s.offer("DELETE", "/weather/x").price_msat, 1);
    }

    #[test]
    fn query_string_does_not_change_the_price() {
        let s = weather();
        assert_eq!(
            s.offer("GET", "/weather/today?x=/weather/bulk").price_msat,
            10_000
        );
        assert_eq!(s.offer("GET", "/weather/bulk?x=1").price_msat, 100_000);
    }

    #[test]
    fn grant_expires_after_the_lifetime_or_never() {
        let s = weather();
        let g = s.grant(&s.offer("GET", "/"), 1_000);
        assert_eq!(g.valid_until, Some(1_060));
        assert_eq!(g.service, "weather");
        assert_eq!(g.capabilities, ["read"]);
        let forever = Service {
            token_lifetime_seconds: None,
            ..weather()
        };
        let offer = forever.offer("GET", "/");
        assert_eq!(forever.grant(&offer, 1_000).valid_until, None);
    }

    #[test]
    fn catalog_finds_by_exact_name() {
        let c = Catalog::new(vec![weather()]);
        assert!(c.get("weather").is_some());
        assert!(c.get("Weather").is_none());
        assert_eq!(c.names().collect::<Vec<_>>(), ["weather"]);
    }
}
