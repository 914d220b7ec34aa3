//! The filter's counters, typed and defined once. Envoy 1.40 shows them under `wasmcustom.`
//! (`dynamicmodulescustom.` natively) in `/stats`; in Prometheus output the `.wasm`'s keep their
//! bare names and the module's carry `envoy_dynamicmodulescustom_`. Every counter is defined when the
//! plugin is configured (so zeros show too), and counting is an index, with no string built per
//! request.

use l402_core::Reason;

use crate::callout::FailureKind;
use crate::canonical::Refusal;
use crate::labels::labelled;

labelled! {
    /// What became of a request: `l402_requests_<label>`.
    pub enum Requests {
        Allowed => "allowed",
        Free => "free",
        Unmatched => "unmatched",
        /// Matched no route with `unmatched: deny` (404).
        Denied => "denied",
        Challenged => "challenged",
        RateLimited => "rate_limited",
        FailOpen => "fail_open",
        DryRunWouldReject => "dry_run_would_reject",
        /// The discovery manifest, served.
        Manifest => "manifest",
    }
}

labelled! {
    /// Counted tokens: `l402_quota_<label>`.
    pub enum Quota {
        /// A request of a counted token served from a block this worker held, with no callout
        /// (counted by the worker's timer, so it lags by up to a tick).
        ServedFromBlock => "served_from_block",
        /// Grants received from the invoice service; each serves the request that asked, so
        /// counted requests served = `served_from_block` + `leases`.
        Leases => "leases",
        /// The token's last units are held by other workers: 429, retry shortly.
        HeldElsewhere => "held_elsewhere",
        /// No permission could be had (service or store down): 503, never served unpaid.
        Unavailable => "unavailable",
        /// Blocks given back, and the units in them.
        Returns => "returns",
        ReturnedUnits => "returned_units",
        /// Give-backs that failed: their units stay counted (lost to the client, never extra).
        ReturnErrors => "return_errors",
    }
}

labelled! {
    /// Revocations read from the shared store: `l402_revocations_<label>`.
    pub enum Revocations {
        /// Pages read.
        Reads => "reads",
        /// Ids learnt.
        Applied => "applied",
        /// Reads that failed; what was known stays revoked.
        SyncErrors => "sync_errors",
        /// Paid requests refused (503) because no read had succeeded yet.
        Unsynced => "unsynced",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Requests(Requests),
    /// `l402_rejected_<reason>`: why a credential did not verify.
    Rejected(Reason),
    /// `l402_callout_errors_<kind>`: why no challenge could be had.
    CalloutError(FailureKind),
    /// `l402_refused_<reason>`: a request line that could not be read safely (400, 414).
    Refused(Refusal),
    Quota(Quota),
    Revocations(Revocations),
}

impl Counter {
    /// Every counter, each at its [`Counter::index`].
    pub fn all() -> impl Iterator<Item = Counter> {
        let requests = Requests::ALL.iter().map(|&r| Self::Requests(r));
        let rejected = Reason::ALL.iter().map(|&r| Self::Rejected(r));
        let callouts = FailureKind::ALL.iter().map(|&k| Self::CalloutError(k));
        let refused = Refusal::ALL.iter().map(|&r| Self::Refused(r));
        let quota = Quota::ALL.iter().map(|&q| Self::Quota(q));
        let revocations = Revocations::ALL.iter().map(|&r| Self::Revocations(r));
        requests
            .chain(rejected)
            .chain(callouts)
            .chain(refused)
            .chain(quota)
            .chain(revocations)
    }

    /// Position in [`Counter::all`]: the slot of the counter's id in the host.
    pub fn index(self) -> usize {
        let rejected = Requests::ALL.len();
        let callouts = rejected + Reason::ALL.len();
        let refused = callouts + FailureKind::ALL.len();
        let quota = refused + Refusal::ALL.len();
        let revocations = quota + Quota::ALL.len();
        match self {
            Self::Requests(r) => r as usize,
            Self::Rejected(r) => rejected + r as usize,
            Self::CalloutError(k) => callouts + k as usize,
            Self::Refused(r) => refused + r as usize,
            Self::Quota(q) => quota + q as usize,
            Self::Revocations(r) => revocations + r as usize,
        }
    }

    pub fn name(self) -> String {
        match self {
            Self::Requests(r) => format!("l402_requests_{}", r.label()),
            Self::Rejected(r) => format!("l402_rejected_{}", r.label()),
            Self::CalloutError(k) => format!("l402_callout_errors_{}", k.label()),
            Self::Refused(r) => format!("l402_refused_{}", r.label()),
            Self::Quota(q) => format!("l402_quota_{}", q.label()),
            Self::Revocations(r) => format!("l402_revocations_{}", r.label()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_slot_and_name() {
        let all: Vec<Counter> = Counter::all().collect();
        for (i, counter) in all.iter().enumerate() {
            assert_eq!(counter.index(), i, "{counter:?}");
        }
        let mut names: Vec<String> = all.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(names.contains(&"l402_rejected_preimage_mismatch".to_string()));
        assert!(names.contains(&"l402_callout_errors_too_large".to_string()));
        assert!(names.contains(&"l402_refused_ambiguous_path".to_string()));
        assert!(names.contains(&"l402_rejected_quota_exhausted".to_string()));
        assert!(names.contains(&"l402_quota_served_from_block".to_string()));
        assert!(names.contains(&"l402_revocations_applied".to_string()));
    }
}
