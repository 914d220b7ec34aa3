//! What the requests of one worker share with its timer: the blocks of counted tokens it holds
//! and the revocations it has read. The timer gives back idle blocks and reads new revocations;
//! requests only read and take.
//!
//! In proxy-wasm a worker is one VM on one thread. The dynamic module shares one `Worker` per
//! filter configuration between all of Envoy's threads, so everything here is `Sync`: the locks
//! are held for a lookup or an insert, never across a host call, and a poisoned lock reads as
//! "unavailable" (a 503 or a revoked token), never as a panic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use l402_core::contract::{RevocationPage, LEASE_RETURN_PATH, REVOCATIONS_PATH};
use l402_core::TokenId;

use crate::config::Counting;
use crate::leases::Leases;
use crate::revoked::{Applied, Revoked};

#[derive(Debug, Default)]
pub struct Worker {
    leases: Mutex<Leases>,
    revoked: RwLock<Revoked>,
    sync_in_flight: AtomicBool,
    next_sync_ms: AtomicU64,
    /// Requests served from blocks since the timer last counted them: counted in one host call
    /// per tick instead of one per request, the hot path of a counted token.
    served_from_blocks: AtomicU64,
}

/// A callout the root context makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCall {
    pub kind: RootCallKind,
    pub method: &'static str,
    pub path: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootCallKind {
    /// Gives back `unused` units of a block.
    GiveBack { unused: u32 },
    /// Reads the revocations after the worker's cursor.
    Sync,
}

impl Worker {
    pub fn leases(&self) -> Option<MutexGuard<'_, Leases>> {
        self.leases.lock().ok()
    }

    /// Whether `id` is revoked; `None` if the list cannot be read (never expected).
    pub fn is_revoked(&self, id: &TokenId) -> Option<bool> {
        self.revoked.read().ok().map(|r| r.contains(id))
    }

    pub fn revocations_synced(&self) -> bool {
        self.revoked.read().is_ok_and(|r| r.synced())
    }

    pub fn served_from_block(&self) {
        self.served_from_blocks.fetch_add(1, Ordering::Relaxed);
    }

    /// The requests served from blocks since the last call.
    pub fn take_served_from_blocks(&self) -> u64 {
        self.served_from_blocks.swap(0, Ordering::Relaxed)
    }

    /// What the timer does at `now_ms`: blocks to give back, and a revocation read when due.
    pub fn tick(&self, now_ms: u64, counting: &Counting) -> Vec<RootCall> {
        let mut calls: Vec<RootCall> = self
            .leases()
            .map(|mut leases| leases.due(now_ms, counting.idle_return_ms))
            .unwrap_or_default()
            .into_iter()
            .map(|back| RootCall {
                kind: RootCallKind::GiveBack {
                    unused: back.unused,
                },
                method: "POST",
                path: LEASE_RETURN_PATH.to_string(),
                body: back.body,
            })
            .collect();
        if let Some(interval_ms) = counting.revocation_sync_ms {
            let due = now_ms >= self.next_sync_ms.load(Ordering::Relaxed);
            // One read in flight at a time: only the tick that flips the flag reads.
            if due && !self.sync_in_flight.swap(true, Ordering::AcqRel) {
                let cursor = self.revoked.read().map_or(0, |r| r.cursor());
                // Until one read has succeeded, every tick may try again.
                let wait = if self.revocations_synced() {
                    interval_ms
                } else {
                    0
                };
                self.next_sync_ms
                    .store(now_ms.saturating_add(wait), Ordering::Relaxed);
                calls.push(RootCall {
                    kind: RootCallKind::Sync,
                    method: "GET",
                    path: format!("{REVOCATIONS_PATH}?after={cursor}"),
                    body: Vec::new(),
                });
            }
        }
        calls
    }

    /// A revocation read that could not be made or answered: nothing changes, the next tick
    /// tries again.
    pub fn sync_failed(&self) {
        self.sync_in_flight.store(false, Ordering::Release);
    }

    /// A revocation page arrived. When it says more follow, the next tick reads at once.
    pub fn sync_answered(
        &self,
        body: &[u8],
        now_ms: u64,
        counting: &Counting,
    ) -> Result<Applied, String> {
        self.sync_in_flight.store(false, Ordering::Release);
        let page: RevocationPage =
            serde_json::from_slice(body).map_err(|e| format!("not a revocation page ({e})"))?;
        let applied = self
            .revoked
            .write()
            .map_err(|_| "the revocation list is poisoned".to_string())?
            .apply(&page);
        let wait = counting.revocation_sync_ms.unwrap_or(0);
        let next = if applied.more {
            0
        } else {
            now_ms.saturating_add(wait)
        };
        self.next_sync_ms.store(next, Ordering::Relaxed);
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting() -> Counting {
        Counting {
            lease_size: 10,
            idle_return_ms: 1_000,
            revocation_sync_ms: Some(1_000),
            remaining_header: false,
        }
    }

    #[test]
    fn reads_revocations_one_at_a_time_and_at_once_while_more_follow() {
        let worker = Worker::default();
        let calls = worker.tick(0, &counting());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].path, "/v1/revocations?after=0");
        assert!(
            worker.tick(5_000, &counting()).is_empty(),
            "one read in flight at a time"
        );
        let page = br#"{"ids":[],"cursor":1000,"more":true,"epoch":"e"}"#;
        worker.sync_answered(page, 0, &counting()).unwrap();
        assert!(!worker.revocations_synced());
        let calls = worker.tick(10, &counting());
        assert_eq!(calls[0].path, "/v1/revocations?after=1000");
        assert!(worker.tick(11, &counting()).is_empty(), "still in flight");
        worker
            .sync_answered(br#"{"ids":[],"cursor":1000,"epoch":"e"}"#, 20, &counting())
            .unwrap();
        assert!(worker.revocations_synced());
        assert!(
            worker.tick(20, &counting()).is_empty(),
            "next read after the interval"
        );
        assert_eq!(worker.tick(1_020, &counting()).len(), 1);
    }

    #[test]
    fn a_failed_read_changes_nothing_and_is_retried() {
        let worker = Worker::default();
        worker.tick(0, &counting());
        assert!(worker.sync_answered(b"garbage", 0, &counting()).is_err());
        worker.sync_failed();
        assert!(!worker.revocations_synced());
        assert_eq!(
            worker.tick(1, &counting()).len(),
            1,
            "not read yet: retried at once"
        );
    }

    #[test]
    fn without_sync_the_timer_only_gives_back() {
        let worker = Worker::default();
        let counting = Counting {
            revocation_sync_ms: None,
            ..counting()
        };
        assert!(worker.tick(0, &counting).is_empty());
    }
}
