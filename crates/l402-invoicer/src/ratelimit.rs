//! Invoice-spam protection: token buckets per client network and one for the whole service.
//!
//! Every challenge costs an lnd invoice (a database row on the node), so issuance is limited
//! before lnd is called. Clients are grouped by /24 (IPv4) and /48 (IPv6): one host rarely has a
//! whole /24, but an attacker easily has many addresses inside one. Requests whose client address
//! the filter could not tell share a bucket of their own, sized apart from the per-client one, so
//! they can neither pass as one generous client nor use up the global bucket for everyone.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config_error::{field, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketConfig {
    pub burst: u32,
    pub per_second: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(config: &BucketConfig, now: Instant) -> Self {
        Self {
            tokens: f64::from(config.burst),
            updated: now,
        }
    }

    fn refill(&mut self, config: &BucketConfig, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * config.per_second).min(f64::from(config.burst));
        self.updated = now;
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, config: &BucketConfig, now: Instant) -> Result<(), Duration> {
        self.refill(config, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / config.per_second,
            ))
        }
    }

    fn is_full(&self, config: &BucketConfig, now: Instant) -> bool {
        let mut probe = *self;
        probe.refill(config, now);
        probe.tokens >= f64::from(config.burst)
    }
}

/// Which limit refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Client { retry_after: Duration },
    UnknownClient { retry_after: Duration },
    Global { retry_after: Duration },
}

impl Limited {
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Client { retry_after }
            | Self::UnknownClient { retry_after }
            | Self::Global { retry_after } => *retry_after,
        }
    }

    /// Metric label.
    pub fn scope(&self) -> &'static str {
        match self {
            Self::Client { .. } => "client",
            Self::UnknownClient { .. } => "unknown_client",
            Self::Global { .. } => "global",
        }
    }
}

/// The client's address; `None` when the filter could not tell.
pub type ClientKey = Option<IpAddr>;

/// Where the buckets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketStore {
    /// In this process: right for one replica.
    #[default]
    Memory,
    /// In the shared store (`[redis]`): one set of buckets for every replica.
    Redis,
}

/// The buckets' sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub store: BucketStore,
    pub per_client: BucketConfig,
    /// Shared by every request without a client address.
    pub unknown_client: BucketConfig,
    pub global: BucketConfig,
    pub max_tracked_clients: usize,
}

pub struct RateLimiter {
    limits: RateLimits,
    global: Mutex<Bucket>,
    unknown: Mutex<Bucket>,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits, now: Instant) -> Self {
        Self {
            limits,
            global: Mutex::new(Bucket::full(&limits.global, now)),
            unknown: Mutex::new(Bucket::full(&limits.unknown_client, now)),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one challenge for `client`, or refuses without using up anything.
    pub fn admit(&self, client: ClientKey, now: Instant) -> Result<(), Limited> {
        match client {
            Some(ip) => self.admit_client(network_of(ip), now),
            None => {
                let mut unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
                let before = *unknown;
                unknown
                    .take(&self.limits.unknown_client, now)
                    .map_err(|retry_after| Limited::UnknownClient { retry_after })?;
                self.take_global(now).inspect_err(|_| *unknown = before)
            }
        }
    }

    fn take_global(&self, now: Instant) -> Result<(), Limited> {
        let mut global = self.global.lock().unwrap_or_else(|e| e.into_inner());
        global
            .take(&self.limits.global, now)
            .map_err(|retry_after| Limited::Global { retry_after })
    }

    fn admit_client(&self, key: IpAddr, now: Instant) -> Result<(), Limited> {
        let per_client = &self.limits.per_client;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if !clients.contains_key(&key) && clients.len() >= self.limits.max_tracked_clients {
            // Forgetting a full bucket loses nothing: a new one starts full too.
            clients.retain(|_, b| !b.is_full(per_client, now));
            if clients.len() >= self.limits.max_tracked_clients {
                // Memory stays bounded under an address-spraying attack; the global bucket
                // still limits issuance meanwhile.
                clients.clear();
            }
        }
        let bucket = clients
            .entry(key)
            .or_insert_with(|| Bucket::full(per_client, now));
        let before = *bucket;
        bucket
            .take(per_client, now)
            .map_err(|retry_after| Limited::Client { retry_after })?;
        self.take_global(now).inspect_err(|_| *bucket = before)
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    pub fn tracked_clients(&self) -> usize {
        self.clients.lock().map_or(0, |c| c.len())
    }
}

/// `client_ip` as the filter sends it: an address, with or without a port.
pub fn parse_client_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// /24 for IPv4 (IPv4-mapped IPv6 included), /48 for IPv6.
pub fn network_of(ip: IpAddr) -> IpAddr {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

// The `[rate_limit]` section.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    store: BucketStore,
    per_client: BucketSection,
    unknown_client: BucketSection,
    global: BucketSection,
    max_tracked_clients: usize,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            store: BucketStore::Memory,
            per_client: BucketSection {
                burst: 20,
                per_second: 1.0,
            },
            unknown_client: BucketSection {
                burst: 20,
                per_second: 1.0,
            },
            global: BucketSection {
                burst: 200,
                per_second: 50.0,
            },
            max_tracked_clients: 100_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BucketSection {
    burst: u32,
    per_second: f64,
}

impl RateLimitSection {
    pub fn compile(self) -> Result<RateLimits, ConfigError> {
        let raw = self;
        let bucket = |name: &str, b: &BucketSection| {
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
            store: raw.store,
            per_client: bucket("per_client", &raw.per_client)?,
            unknown_client: bucket("unknown_client", &raw.unknown_client)?,
            global: bucket("global", &raw.global)?,
            max_tracked_clients: raw.max_tracked_clients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: BucketConfig = BucketConfig {
        burst: 3,
        per_second: 1.0,
    };
    const GLOBAL: BucketConfig = BucketConfig {
        burst: 5,
        per_second: 10.0,
    };

    fn ip(s: &str) -> ClientKey {
        Some(s.parse().unwrap())
    }

    fn limiter(max_tracked_clients: usize, global: BucketConfig, t0: Instant) -> RateLimiter {
        RateLimiter::new(
            RateLimits {
                store: BucketStore::Memory,
                per_client: CLIENT,
                unknown_client: BucketConfig {
                    burst: 2,
                    per_second: 1.0,
                },
                global,
                max_tracked_clients,
            },
            t0,
        )
    }

    #[test]
    fn burst_then_refusal_with_time_until_the_next_token() {
        let t0 = Instant::now();
        let rl = limiter(100, GLOBAL, t0);
        for _ in 0..3 {
            rl.admit(ip("10.0.0.1"), t0).unwrap();
        }
        let refused = rl.admit(ip("10.0.0.1"), t0).unwrap_err();
        assert_eq!(refused.scope(), "client");
        assert_eq!(refused.retry_after(), Duration::from_secs(1));
        let later = t0 + Duration::from_millis(1000);
        rl.admit(ip("10.0.0.1"), later).unwrap();
        assert!(rl.admit(ip("10.0.0.1"), later).is_err());
    }

    #[test]
    fn addresses_in_one_slash_24_share_a_bucket_others_do_not() {
        let t0 = Instant::now();
        let rl = limiter(100, GLOBAL, t0);
        for last in 1..=3 {
            rl.admit(ip(&format!("192.0.2.{last}")), t0).unwrap();
        }
        assert!(rl.admit(ip("192.0.2.200"), t0).is_err());
        rl.admit(ip("192.0.3.1"), t0).unwrap();
    }

    #[test]
    fn ipv6_groups_by_slash_48_and_mapped_ipv4_by_slash_24() {
        assert_eq!(
            network_of("2001:db8:1:2::7".parse().unwrap()),
            "2001:db8:1::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            network_of("::ffff:198.51.100.7".parse().unwrap()),
            "198.51.100.0".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn global_bucket_limits_everyone_and_refunds_the_client() {
        let t0 = Instant::now();
        let rl = limiter(100, GLOBAL, t0);
        for n in 0..5 {
            rl.admit(ip(&format!("10.{n}.0.1")), t0).unwrap();
        }
        let refused = rl.admit(ip("10.9.0.1"), t0).unwrap_err();
        assert_eq!(refused.scope(), "global");
        assert_eq!(refused.retry_after(), Duration::from_millis(100));
        // The refused client kept its whole burst.
        let later = t0 + Duration::from_secs(1);
        for _ in 0..3 {
            rl.admit(ip("10.9.0.1"), later).unwrap();
        }
    }

    #[test]
    fn unknown_clients_have_a_bucket_of_their_own() {
        let t0 = Instant::now();
        let rl = limiter(100, GLOBAL, t0);
        for _ in 0..2 {
            rl.admit(None, t0).unwrap();
        }
        let refused = rl.admit(None, t0).unwrap_err();
        assert_eq!(refused.scope(), "unknown_client");
        // Known clients keep their own buckets and what is left of the global one.
        for _ in 0..3 {
            rl.admit(ip("10.0.0.1"), t0).unwrap();
        }
        assert_eq!(rl.admit(ip("10.1.0.1"), t0).unwrap_err().scope(), "global");
    }

    #[test]
    fn tracked_clients_stay_bounded() {
        let t0 = Instant::now();
        let big_global = BucketConfig {
            burst: 10_000,
            per_second: 1.0,
        };
        let rl = limiter(10, big_global, t0);
        for n in 0..100u8 {
            rl.admit(ip(&format!("10.0.{n}.1")), t0).unwrap();
            assert!(rl.tracked_clients() <= 10);
        }
        // Refilled buckets are dropped first, so a busy client keeps its state.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            rl.admit(ip("10.1.0.1"), later).unwrap();
        }
        for n in 0..9u8 {
            rl.admit(ip(&format!("10.2.{n}.1")), later).unwrap();
        }
        assert!(rl.admit(ip("10.1.0.1"), later).is_err());
    }

    #[test]
    fn client_ip_with_or_without_port() {
        assert_eq!(parse_client_ip("203.0.113.9:5555"), ip("203.0.113.9"));
        assert_eq!(parse_client_ip("203.0.113.9"), ip("203.0.113.9"));
        assert_eq!(parse_client_ip("[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(parse_client_ip("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(parse_client_ip("nonsense"), None);
    }
}
