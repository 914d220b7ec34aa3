//! Counting a token's requests: leases of blocks taken from N, and the unused part given back.
//!
//! The count is of units *leased out*, never of units served: a unit counts from the moment a
//! proxy may serve it, so however proxies, replicas or the store fail, no more than N are ever
//! served. A proxy gives back what it did not serve ([`Store::give_back`]); a lease never given
//! back lapses after its hold time plus a grace and stays counted, as if served in full: a lost
//! unit is the price of a crash, an extra request never is.

use redis::Script;
use std::sync::LazyLock;

use super::keys::{quota, quota_leases, LEASE_FIELD_PREFIX, USED_FIELD};
use super::{Store, StoreError};

/// KEYS: quota hash, leases zset. ARGV: limit, want, lease id, lapse after (ms), key lifetime
/// (seconds), token expiry (unix seconds, 0 for none), share divisor, a used-up lease to forget
/// (or empty).
/// Returns `{granted, remaining, held}`.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Lapsed leases stay counted; only their records go.
if ARGV[8] ~= '' then
  redis.call('HDEL', KEYS[1], '{LEASE_FIELD_PREFIX}' .. ARGV[8])
  redis.call('ZREM', KEYS[2], ARGV[8])
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)
for _, id in ipairs(lapsed) do redis.call('HDEL', KEYS[1], '{LEASE_FIELD_PREFIX}' .. id) end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms) end
local limit = tonumber(ARGV[1])
local used = tonumber(redis.call('HGET', KEYS[1], '{USED_FIELD}') or '0')
local left = math.max(limit - used, 0)
-- A share of what is left, so the last units are not stranded in one proxy's block.
local grant = math.min(tonumber(ARGV[2]), math.max(1, math.ceil(left / tonumber(ARGV[7]))), left)
if grant > 0 then
  redis.call('HINCRBY', KEYS[1], '{USED_FIELD}', grant)
  if grant > 1 then
    redis.call('HSET', KEYS[1], '{LEASE_FIELD_PREFIX}' .. ARGV[3], grant - 1)
    redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[4]), ARGV[3])
  end
end
local expiry = tonumber(ARGV[6])
if expiry > 0 then
  redis.call('EXPIREAT', KEYS[1], expiry + 60)
  redis.call('EXPIREAT', KEYS[2], expiry + 60)
else
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
return {{grant, left - grant, redis.call('ZCARD', KEYS[2])}}
"#
    ))
});

/// KEYS: quota hash, leases zset. ARGV: lease id, unused. Returns the units credited.
static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"
local held = redis.call('HGET', KEYS[1], '{LEASE_FIELD_PREFIX}' .. ARGV[1])
if not held then return 0 end
redis.call('HDEL', KEYS[1], '{LEASE_FIELD_PREFIX}' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local credit = math.min(tonumber(ARGV[2]), tonumber(held))
if credit > 0 then redis.call('HINCRBY', KEYS[1], '{USED_FIELD}', -credit) end
return credit
"#
    ))
});

/// What a lease asks for.
#[derive(Debug, Clone, Copy)]
pub struct LeaseAsk<'a> {
    pub token_id: &'a str,
    pub lease_id: &'a str,
    /// N, from the token's caveats.
    pub limit: u64,
    pub want: u32,
    /// When the lease lapses unless given back first.
    pub lapse_ms: u64,
    /// The token's expiry: the keys go a minute after it.
    pub token_expiry: Option<i64>,
    /// For tokens that never expire: the keys go this long after the last lease.
    pub idle_lifetime_seconds: u64,
    /// At most 1/`share` of what is left goes into one block.
    pub share: u32,
    /// A lease of this token its holder has used up: its record goes (nothing is credited).
    pub done: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leased {
    pub granted: u32,
    pub remaining: u64,
    pub held: u32,
}

impl Store {
    pub async fn lease(&self, ask: &LeaseAsk<'_>) -> Result<Leased, StoreError> {
        let (token_quota, token_leases) = (quota(ask.token_id), quota_leases(ask.token_id));
        let expiry = ask.token_expiry.unwrap_or(0).max(0);
        let (granted, remaining, held): (u64, u64, u64) = self
            .run(
                "lease",
                &LEASE,
                &[&token_quota, &token_leases],
                &[
                    ask.limit.to_string(),
                    ask.want.to_string(),
                    ask.lease_id.to_string(),
                    ask.lapse_ms.to_string(),
                    ask.idle_lifetime_seconds.to_string(),
                    expiry.to_string(),
                    ask.share.max(1).to_string(),
                    ask.done.unwrap_or_default().to_string(),
                ],
            )
            .await?;
        Ok(Leased {
            granted: u32::try_from(granted).unwrap_or(u32::MAX),
            remaining,
            held: u32::try_from(held).unwrap_or(u32::MAX),
        })
    }

    /// Gives back `unused` units of a lease; 0 when the lease lapsed or was given back before.
    pub async fn give_back(
        &self,
        token_id: &str,
        lease_id: &str,
        unused: u32,
    ) -> Result<u32, StoreError> {
        let (token_quota, token_leases) = (quota(token_id), quota_leases(token_id));
        self.run(
            "give_back",
            &GIVE_BACK,
            &[&token_quota, &token_leases],
            &[lease_id.to_string(), unused.to_string()],
        )
        .await
    }
}
