//! The challenge rate limits in the store, for several replicas of the service: the same token
//! buckets as in memory (`ratelimit.rs`), refilled by the store's clock so replicas' clocks do not
//! matter, and a client's bucket and the global one taken together or not at all.

use std::time::Duration;

use redis::Script;
use std::sync::LazyLock;

use super::keys::rate_bucket;
use super::{Store, StoreError};
use crate::ratelimit::{BucketConfig, Limited};

/// KEYS: the client's bucket, the global one. ARGV: client burst, client rate per second,
/// global burst, global rate. Returns `{0, 0}` when admitted, else `{1 (client) or 2 (global),
/// milliseconds until a token is there}`.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function level(key, burst, rate)
  local bucket = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(bucket[1]), tonumber(bucket[2])
  if not tokens or not at then return burst end
  return math.min(burst, tokens + math.max(now - at, 0) / 1000 * rate)
end
local function take(key, level, burst, rate)
  redis.call('HSET', key, 'tokens', level - 1, 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
local cb, cr, gb, gr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local client = level(KEYS[1], cb, cr)
if client < 1 then return {1, math.ceil((1 - client) / cr * 1000)} end
local global = level(KEYS[2], gb, gr)
if global < 1 then return {2, math.ceil((1 - global) / gr * 1000)} end
take(KEYS[1], client, cb, cr)
take(KEYS[2], global, gb, gr)
return {0, 0}
"#,
    )
});

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A client network, as `ratelimit::network_of` names it.
    Client(&'a str),
    Unknown,
}

impl Store {
    /// Takes one token from the scope's bucket and the global one, or says which refused.
    pub async fn admit(
        &self,
        scope: Scope<'_>,
        bucket: BucketConfig,
        global: BucketConfig,
    ) -> Result<Result<(), Limited>, StoreError> {
        let key = match scope {
            Scope::Client(network) => rate_bucket(&format!("client:{network}")),
            Scope::Unknown => rate_bucket("unknown"),
        };
        let (refused, wait_ms): (u8, u64) = self
            .run(
                "rate_limit",
                &ADMIT,
                &[&key, &rate_bucket("global")],
                &[
                    bucket.burst.to_string(),
                    bucket.per_second.to_string(),
                    global.burst.to_string(),
                    global.per_second.to_string(),
                ],
            )
            .await?;
        let retry_after = Duration::from_millis(wait_ms);
        Ok(match (refused, scope) {
            (0, _) => Ok(()),
            (1, Scope::Client(_)) => Err(Limited::Client { retry_after }),
            (1, Scope::Unknown) => Err(Limited::UnknownClient { retry_after }),
            _ => Err(Limited::Global { retry_after }),
        })
    }
}
