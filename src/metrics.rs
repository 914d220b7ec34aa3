//! The filter's counters, typed and defined once. Envoy shows them under `wasmcustom.` in
//! `/stats` and as `envoy_wasmcustom_…` in Prometheus output. Every counter is defined when the
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
}

impl Counter {
    /// Every counter, each at its [`Counter::index`].
    pub fn all() -> impl Iterator<Item = Counter> {
        let requests = Requests::ALL.iter().map(|&r| Self::Requests(r));
        let rejected = Reason::ALL.iter().map(|&r| Self::Rejected(r));
        let callouts = FailureKind::ALL.iter().map(|&k| Self::CalloutError(k));
        let refused = Refusal::ALL.iter().map(|&r| Self::Refused(r));
        requests.chain(rejected).chain(callouts).chain(refused)
    }

    /// Position in [`Counter::all`]: the slot of the counter's id in the host.
    pub fn index(self) -> usize {
        let rejected = Requests::ALL.len();
        let callouts = rejected + Reason::ALL.len();
        let refused = callouts + FailureKind::ALL.len();
        match self {
            Self::Requests(r) => r as usize,
            Self::Rejected(r) => rejected + r as usize,
            Self::CalloutError(k) => callouts + k as usize,
            Self::Refused(r) => refused + r as usize,
        }
    }

    pub fn name(self) -> String {
        match self {
            Self::Requests(r) => format!("l402_requests_{}", r.label()),
            Self::Rejected(r) => format!("l402_rejected_{}", r.label()),
            Self::CalloutError(k) => format!("l402_callout_errors_{}", k.label()),
            Self::Refused(r) => format!("l402_refused_{}", r.label()),
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
    }
}
