//! Credentials this worker has authenticated recently, so a client reusing its token skips the
//! base64, the macaroon parsing and the HMAC chain (most of a paid request's own cost, and in
//! wasm the part without native hashing). Like `jwt_authn`'s verified-token cache.
//!
//! What is kept is only what holds until the configuration changes (the preimage matched, the
//! key is known, the signature verifies, the token is not in the static revocation list); the
//! caveats (service, expiry, capabilities) are still checked on every request, and the shared
//! revocations too. The cache belongs to one configuration: a new one starts empty, so a token
//! revoked or a key removed by reconfiguring takes effect at once. Counted tokens are kept like
//! the others: what is cached is that the token is genuine, never a count, so each of their
//! requests still takes a unit from a block of the shared count.
//!
//! The key is every credential-bearing header line; the map is indexed by a keyed hash of it
//! (SipHash with a random key per cache, cheap in wasm where SHA-256 has no native code), and a
//! hit is confirmed by comparing the whole key in constant time, so it is the same bytes the
//! client sent before, never a look-alike, and timing tells nobody how close a guess came.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use l402_core::credentials::CREDENTIAL_HEADERS;
use l402_core::{Credential, Identifier};
use subtle::ConstantTimeEq;

use crate::host::Headers;

/// A credential that authenticated, as it was read.
#[derive(Debug)]
pub struct Authenticated {
    pub credential: Credential,
    pub identifier: Identifier,
}

/// Every credential-bearing header line, lengths first so no two different sets of lines give
/// the same bytes.
pub type Key = Vec<u8>;

/// The key of the credential headers in `headers`; `None` when there are none (nothing to
/// cache: the request is challenged).
pub fn key_of(headers: &Headers) -> Option<Key> {
    let mut key = Vec::new();
    for (name, value) in headers {
        if CREDENTIAL_HEADERS
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            key.extend_from_slice(&(name.len() as u32).to_le_bytes());
            key.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            key.extend_from_slice(&(value.len() as u32).to_le_bytes());
            key.extend_from_slice(value);
        }
    }
    (!key.is_empty()).then_some(key)
}

/// A bounded map, oldest entry out first. One per configuration and worker thread.
#[derive(Debug)]
pub struct CredentialCache {
    inner: Mutex<Entries>,
    hasher: RandomState,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Entries {
    /// By the key's hash: the whole key (compared on every hit) and what it authenticated.
    map: HashMap<u64, (Key, Arc<Authenticated>)>,
    order: VecDeque<u64>,
}

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Entries::default()),
            hasher: RandomState::new(),
            capacity,
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Authenticated>> {
        if self.capacity == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let entries = self.inner.lock().ok()?;
        let (stored, entry) = entries.map.get(&hash)?;
        let same = stored.len() == key.len() && bool::from(stored.as_slice().ct_eq(key));
        same.then(|| Arc::clone(entry))
    }

    pub fn insert(&self, key: Key, entry: Arc<Authenticated>) {
        if self.capacity == 0 {
            return;
        }
        let hash = self.hasher.hash_one(&key);
        let Ok(mut entries) = self.inner.lock() else {
            return;
        };
        if entries.map.insert(hash, (key, entry)).is_none() {
            entries.order.push_back(hash);
        }
        while entries.order.len() > self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.map.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |e| e.map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        lines
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_key_covers_every_credential_line_and_nothing_else() {
        let one = headers(&[("authorization", "L402 a:b"), ("accept", "x")]);
        let same = headers(&[("Authorization", "L402 a:b"), ("accept", "y")]);
        assert_eq!(key_of(&one), key_of(&same));
        let two = headers(&[("authorization", "L402 a:b"), ("macaroon", "c")]);
        assert_ne!(key_of(&one), key_of(&two));
        // Moving bytes between a name and its value changes the key.
        let shifted = headers(&[("authorization", "L402 a:"), ("macaroon", "bc")]);
        assert_ne!(key_of(&two), key_of(&shifted));
        assert_eq!(key_of(&headers(&[("accept", "x")])), None);
    }

    #[test]
    fn holds_at_most_its_capacity_oldest_out_first() {
        let cache = CredentialCache::new(2);
        let entry = || {
            let credential = credential();
            Arc::new(Authenticated {
                identifier: Identifier::decode(&credential.macaroon.identifier).unwrap(),
                credential,
            })
        };
        for k in 1..=3u8 {
            cache.insert(vec![k; 32], entry());
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&vec![1; 32]).is_none());
        assert!(cache.get(&vec![3; 32]).is_some());
        assert!(cache.get(&vec![3; 31]).is_none(), "only the same bytes");
        let off = CredentialCache::new(0);
        off.insert(vec![1; 32], entry());
        assert!(off.is_empty() && off.get(&vec![1; 32]).is_none());
    }

    fn credential() -> Credential {
        let value = crate::state_machine_tests::authorization(&crate::state_machine_tests::token(
            "weather", None,
        ));
        l402_core::credentials::from_headers([(b"authorization".as_slice(), value.as_slice())])
            .unwrap()
    }
}
