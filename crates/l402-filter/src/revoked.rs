//! Token ids revoked in the shared store, as this worker knows them: read page by page from the
//! invoice service, added to and never removed from. A failed read changes nothing; a store that
//! lost its history (a new epoch) is read again from the start, on top of what is known.

use std::collections::HashSet;

use l402_core::contract::RevocationPage;
use l402_core::TokenId;

#[derive(Debug, Default)]
pub struct Revoked {
    ids: HashSet<TokenId>,
    cursor: u64,
    epoch: Option<String>,
    /// Whether one whole read (every page) has succeeded since the worker started.
    synced: bool,
}

/// What a page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Ids this worker did not know before.
    pub added: usize,
    /// Read the next page at once.
    pub more: bool,
}

impl Revoked {
    pub fn contains(&self, id: &TokenId) -> bool {
        self.ids.contains(id)
    }

    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Where the next read starts.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn apply(&mut self, page: &RevocationPage) -> Applied {
        if self.epoch.as_deref() != Some(page.epoch.as_str()) {
            let first = self.epoch.is_none();
            self.epoch = Some(page.epoch.clone());
            if !first {
                // A new history, read from our old cursor: read it all again from the start.
                self.cursor = 0;
                return Applied {
                    added: 0,
                    more: true,
                };
            }
        }
        let before = self.ids.len();
        // An id that is not hex is not a token id any filter could see; skipping it loses nothing.
        self.ids
            .extend(page.ids.iter().filter_map(|id| TokenId::from_hex(id)));
        self.cursor = self.cursor.max(page.cursor);
        if !page.more {
            self.synced = true;
        }
        Applied {
            added: self.ids.len() - before,
            more: page.more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(epoch: &str, ids: &[u8], cursor: u64, more: bool) -> RevocationPage {
        RevocationPage {
            ids: ids.iter().map(|b| TokenId([*b; 32]).to_hex()).collect(),
            cursor,
            more,
            epoch: epoch.into(),
        }
    }

    #[test]
    fn pages_add_ids_and_move_the_cursor() {
        let mut revoked = Revoked::default();
        assert!(!revoked.synced());
        let applied = revoked.apply(&page("e1", &[1, 2], 2, true));
        assert_eq!(
            applied,
            Applied {
                added: 2,
                more: true
            }
        );
        assert!(!revoked.synced(), "more pages to read");
        revoked.apply(&page("e1", &[3], 3, false));
        assert!(revoked.synced());
        assert_eq!(revoked.cursor(), 3);
        assert!(revoked.contains(&TokenId([3; 32])));
        assert_eq!(revoked.apply(&page("e1", &[], 3, false)).added, 0);
    }

    #[test]
    fn a_new_epoch_is_read_from_the_start_and_forgets_nothing() {
        let mut revoked = Revoked::default();
        revoked.apply(&page("e1", &[1, 2], 2, false));
        let applied = revoked.apply(&page("e2", &[], 2, false));
        assert_eq!(
            applied,
            Applied {
                added: 0,
                more: true
            }
        );
        assert_eq!(revoked.cursor(), 0, "read again from the beginning");
        revoked.apply(&page("e2", &[9], 1, false));
        for id in [1, 2, 9] {
            assert!(revoked.contains(&TokenId([id; 32])), "{id}");
        }
    }
}
