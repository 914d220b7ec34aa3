//! Blocks of counted tokens' requests held by this worker (a wasm VM, or the native module), so
//! most requests of a counted token are served without a callout. A block is the service's grant: every unit in it
//! is already counted as served, so serving from it needs nobody's permission, and whatever is
//! left goes back to the service when the block falls idle or its hold time is up.
//!
//! A block serves only the copy of the token it was granted to: attenuated copies share the
//! token id (and the service's count) but may carry a lower `<service>_requests` or be for
//! another service, and the service enforces each copy's own ceiling only when asked.

use std::collections::HashMap;

use l402_core::contract::{LeaseAnswer, LeaseReturn};
use l402_core::TokenId;

/// Which copy of a counted token a block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted<'a> {
    pub token: TokenId,
    pub service: &'a str,
    /// The copy's `<service>_requests`.
    pub limit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    service: String,
    limit: u64,
    lease: String,
    /// Units still to serve.
    left: u32,
    /// The token's units not leased to anyone when this block was granted.
    pool: u64,
    /// When the block must go back (the service's hold time), in host milliseconds.
    due_ms: u64,
    last_used_ms: u64,
}

/// A block to give back: the return's body, and how many units it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveBack {
    pub body: Vec<u8>,
    pub unused: u32,
}

impl Block {
    fn serves(&self, copy: &Counted<'_>) -> bool {
        self.limit == copy.limit && self.service == copy.service
    }
}

#[derive(Debug, Default)]
pub struct Leases {
    blocks: HashMap<TokenId, Vec<Block>>,
}

impl Leases {
    /// Serves one request from a block of this copy of a token, if this worker holds one with
    /// units left: `Some(estimate of the copy's requests left after this one)`.
    pub fn take(&mut self, copy: &Counted<'_>, now_ms: u64) -> Option<u64> {
        let blocks = self.blocks.get_mut(&copy.token)?;
        let block = blocks
            .iter_mut()
            .find(|b| b.serves(copy) && b.left > 0 && now_ms < b.due_ms)?;
        block.left -= 1;
        block.last_used_ms = now_ms;
        let mine = || blocks.iter().filter(|b| b.serves(copy));
        let held: u64 = mine().map(|b| u64::from(b.left)).sum();
        Some(held + mine().map(|b| b.pool).min().unwrap_or(0))
    }

    /// Takes out a used-up block of this copy to hand in with its next lease request (the timer
    /// would otherwise give it back in a call of its own).
    pub fn take_used_up(&mut self, copy: &Counted<'_>) -> Option<String> {
        let blocks = self.blocks.get_mut(&copy.token)?;
        let at = blocks.iter().position(|b| b.serves(copy) && b.left == 0)?;
        let block = blocks.swap_remove(at);
        if blocks.is_empty() {
            self.blocks.remove(&copy.token);
        }
        Some(block.lease)
    }

    /// Puts back a used-up block taken out by [`Leases::take_used_up`] whose hand-in failed: the
    /// timer gives it back on its next tick.
    pub fn keep_used_up(&mut self, copy: &Counted<'_>, lease: String) {
        self.blocks.entry(copy.token).or_default().push(Block {
            service: copy.service.to_owned(),
            limit: copy.limit,
            lease,
            left: 0,
            pool: 0,
            due_ms: 0,
            last_used_ms: 0,
        });
    }

    /// Keeps what is left of a grant after the request that asked for it (`granted - 1`).
    /// Returns the estimate of the token's requests left.
    pub fn keep(&mut self, copy: &Counted<'_>, answer: &LeaseAnswer, now_ms: u64) -> u64 {
        let left = answer.granted.saturating_sub(1);
        if left > 0 && !answer.lease.is_empty() {
            self.blocks.entry(copy.token).or_default().push(Block {
                service: copy.service.to_owned(),
                limit: copy.limit,
                lease: answer.lease.clone(),
                left,
                pool: answer.remaining,
                due_ms: now_ms.saturating_add(u64::from(answer.hold_ms)),
                last_used_ms: now_ms,
            });
        }
        u64::from(left) + answer.remaining
    }

    /// Takes out every block idle for `idle_ms`, past its hold time or used up, and says what to
    /// give back for each. A used-up block is given back too (with nothing in it), so the service
    /// stops counting it as held elsewhere at once rather than when its record lapses. A block is
    /// gone from here before its return is sent, so no unit is served after it was offered back.
    pub fn due(&mut self, now_ms: u64, idle_ms: u64) -> Vec<GiveBack> {
        let mut out = Vec::new();
        self.blocks.retain(|token, blocks| {
            blocks.retain(|b| {
                let keep = b.left > 0
                    && now_ms < b.due_ms
                    && now_ms.saturating_sub(b.last_used_ms) < idle_ms;
                if !keep {
                    let back = LeaseReturn {
                        token_id: token.to_hex().into(),
                        lease: b.lease.as_str().into(),
                        unused: b.left,
                    };
                    // Serialising plain strings and numbers cannot fail; if it did, the units
                    // would stay counted, which loses the client some units and nothing else.
                    if let Ok(body) = serde_json::to_vec(&back) {
                        out.push(GiveBack {
                            body,
                            unused: b.left,
                        });
                    }
                }
                keep
            });
            !blocks.is_empty()
        });
        out
    }

    /// Units held now, over every token.
    #[cfg(test)]
    fn held(&self) -> u64 {
        self.blocks
            .values()
            .flatten()
            .map(|b| u64::from(b.left))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Counted<'static> = Counted {
        token: TokenId([7; 32]),
        service: "weather",
        limit: 100,
    };

    fn grant(granted: u32, remaining: u64) -> LeaseAnswer {
        LeaseAnswer {
            granted,
            lease: "00112233445566778899aabbccddeeff".into(),
            remaining,
            held: 1,
            hold_ms: 5_000,
        }
    }

    #[test]
    fn a_block_serves_its_units_then_nothing() {
        let mut leases = Leases::default();
        assert_eq!(leases.take(&T, 0), None);
        assert_eq!(leases.keep(&T, &grant(3, 10), 0), 12);
        assert_eq!(leases.take(&T, 1), Some(11));
        assert_eq!(leases.take(&T, 2), Some(10));
        assert_eq!(leases.take(&T, 3), None);
        let back = leases.due(4, 1_000);
        assert_eq!(back.len(), 1, "a used-up block is given back, empty");
        assert_eq!(back[0].unused, 0);
        assert_eq!(leases.held(), 0);
    }

    #[test]
    fn a_used_up_block_is_handed_in_once() {
        let mut leases = Leases::default();
        leases.keep(&T, &grant(2, 0), 0);
        assert_eq!(leases.take_used_up(&T), None, "units left");
        leases.take(&T, 1);
        assert_eq!(
            leases.take_used_up(&T).as_deref(),
            Some("00112233445566778899aabbccddeeff")
        );
        assert_eq!(leases.take_used_up(&T), None);
        assert!(
            leases.due(5, 1_000).is_empty(),
            "nothing left for the timer"
        );
    }

    #[test]
    fn a_grant_of_one_is_the_asking_request_alone() {
        let mut leases = Leases::default();
        leases.keep(&T, &grant(1, 0), 0);
        assert_eq!(leases.take(&T, 1), None);
    }

    #[test]
    fn idle_and_overdue_blocks_go_back_with_what_is_left_and_serve_no_more() {
        let mut leases = Leases::default();
        leases.keep(&T, &grant(5, 0), 0);
        leases.take(&T, 100);
        assert!(leases.due(600, 1_000).is_empty(), "not idle yet");
        let back = leases.due(1_100, 1_000);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].unused, 3);
        let body: serde_json::Value = serde_json::from_slice(&back[0].body).unwrap();
        assert_eq!(body["unused"], 3);
        assert_eq!(body["token_id"], T.token.to_hex());
        assert_eq!(leases.take(&T, 1_101), None, "given back: not served from");

        leases.keep(&T, &grant(7, 0), 0);
        for now in (0..5_000).step_by(900).skip(1) {
            assert!(leases.due(now, 1_000).is_empty());
            leases.take(&T, now);
        }
        assert_eq!(leases.take(&T, 5_000), None, "past the hold time");
        let back = leases.due(5_000, 1_000);
        assert_eq!(back[0].unused, 1, "busy, but past the hold time");
    }

    #[test]
    fn a_block_serves_only_the_copy_it_was_granted_to() {
        let mut leases = Leases::default();
        leases.keep(&T, &grant(50, 0), 0);
        let fewer = Counted { limit: 5, ..T };
        let elsewhere = Counted {
            service: "maps",
            ..T
        };
        assert_eq!(
            leases.take(&fewer, 1),
            None,
            "an attenuated copy asks the service"
        );
        assert_eq!(leases.take(&elsewhere, 1), None, "another service asks too");
        assert_eq!(leases.take(&T, 1), Some(48));
        leases.keep(&fewer, &grant(3, 1), 2);
        assert_eq!(
            leases.take(&fewer, 3),
            Some(2),
            "its own block, its own estimate"
        );
        assert_eq!(leases.take(&T, 3), Some(47));
    }
}
