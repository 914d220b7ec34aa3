//! Revoked token ids, numbered in the order they were revoked, so every proxy reads only what is
//! new since its last read. Entries are never removed by the service: a revoked id stays revoked.

use redis::Script;
use std::sync::LazyLock;

use super::keys::{REVOKED, REVOKED_EPOCH, REVOKED_SEQUENCE};
use super::{Store, StoreError};

/// KEYS: ids, sequence, epoch. ARGV: token id, a fresh epoch name (used only if there is none).
/// Returns the id's number (the old one when it was already revoked).
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SET', KEYS[3], ARGV[2], 'NX')
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
if known then return tonumber(known) end
local n = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], n, ARGV[1])
return n
"#,
    )
});

/// KEYS: ids, epoch. ARGV: after, page size, a fresh epoch name.
/// Returns `{epoch, id1, n1, id2, n2, …}`.
static PAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local epoch = redis.call('GET', KEYS[2])
local page = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
table.insert(page, 1, epoch)
return page
"#,
    )
});

/// One page of revocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub epoch: String,
    pub ids: Vec<String>,
    /// The number of the last id in the page (`after` when the page is empty).
    pub last: u64,
}

impl Store {
    /// Records `token_id` (hex) as revoked; `fresh_epoch` names the history if this is its start.
    pub async fn revoke(&self, token_id: &str, fresh_epoch: &str) -> Result<u64, StoreError> {
        self.run(
            "revoke",
            &REVOKE,
            &[REVOKED, REVOKED_SEQUENCE, REVOKED_EPOCH],
            &[token_id.to_string(), fresh_epoch.to_string()],
        )
        .await
    }

    /// Up to `limit` ids revoked after number `after`, oldest first.
    pub async fn revoked_after(
        &self,
        after: u64,
        limit: usize,
        fresh_epoch: &str,
    ) -> Result<Page, StoreError> {
        let reply: Vec<String> = self
            .run(
                "revocations",
                &PAGE,
                &[REVOKED, REVOKED_EPOCH],
                &[
                    after.to_string(),
                    limit.to_string(),
                    fresh_epoch.to_string(),
                ],
            )
            .await?;
        let mut items = reply.into_iter();
        let epoch = items.next().unwrap_or_default();
        let mut page = Page {
            epoch,
            ids: Vec::new(),
            last: after,
        };
        while let (Some(id), Some(number)) = (items.next(), items.next()) {
            page.last = number.parse().unwrap_or(page.last);
            page.ids.push(id);
        }
        Ok(page)
    }
}
