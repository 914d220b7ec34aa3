//! Every key the service keeps in Redis, named in one place. A token's keys share a hash tag
//! (`{<token id>}`) so they land in one slot of a Redis Cluster and one script may touch them all.

/// The count of a token's requests leased out, and one field per live lease (`lease:<id>`).
pub fn quota(token_id: &str) -> String {
    format!("l402:quota:{{{token_id}}}")
}

/// A token's live leases, scored by when they lapse (unix milliseconds).
pub fn quota_leases(token_id: &str) -> String {
    format!("l402:quota:{{{token_id}}}:leases")
}

/// Field of [`quota`] holding the units leased out so far (served or held).
pub const USED_FIELD: &str = "used";
/// Prefix of [`quota`]'s fields naming a live lease.
pub const LEASE_FIELD_PREFIX: &str = "lease:";

/// Revoked token ids, scored by the order they were revoked in.
pub const REVOKED: &str = "l402:{revoked}:ids";
/// The last revocation's number.
pub const REVOKED_SEQUENCE: &str = "l402:{revoked}:seq";
/// A random name for the revocation history, made with its first entry; a store that lost its
/// data makes a new one, and readers start again from the beginning.
pub const REVOKED_EPOCH: &str = "l402:{revoked}:epoch";

/// The challenge rate limit's bucket for a client network, `unknown` or `global`. One hash tag
/// for all of them: a client's bucket and the global one change in one script.
pub fn rate_bucket(scope: &str) -> String {
    format!("l402:{{ratelimit}}:{scope}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_keys_share_one_hash_tag() {
        assert_eq!(quota("ab"), "l402:quota:{ab}");
        assert_eq!(quota_leases("ab"), "l402:quota:{ab}:leases");
    }
}
