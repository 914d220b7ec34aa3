//! Counter names, one per outcome. Envoy shows them under `wasmcustom.` in `/stats` and as
//! `envoy_wasmcustom_…` in Prometheus output.

use crate::canonical::Refusal;

pub const ALLOWED: &str = "l402_requests_allowed";
pub const FREE: &str = "l402_requests_free";
pub const UNMATCHED: &str = "l402_requests_unmatched";
/// Matched no route with `unmatched: deny` (404).
pub const DENIED: &str = "l402_requests_denied";
pub const CHALLENGED: &str = "l402_requests_challenged";
pub const RATE_LIMITED: &str = "l402_requests_rate_limited";
pub const FAIL_OPEN: &str = "l402_requests_fail_open";
pub const DRY_RUN_WOULD_REJECT: &str = "l402_requests_dry_run_would_reject";

/// Every rejection reason [`l402_core::Rejection::reason`] can give, so all are defined up front.
pub const REJECTION_REASONS: [&str; 12] = [
    "missing",
    "malformed",
    "unsupported_version",
    "preimage_mismatch",
    "revoked",
    "unknown_key",
    "third_party_caveat",
    "bad_signature",
    "wrong_service",
    "expired",
    "missing_capability",
    "invalid_caveat",
];

pub const CALLOUT_ERRORS: [&str; 6] = [
    "dispatch",
    "timeout",
    "unavailable",
    "reset",
    "status",
    "malformed",
];

/// A request line that could not be read safely (400, 414), by [`Refusal::reason`].
pub fn refused(reason: &str) -> String {
    format!("l402_refused_{reason}")
}

pub fn rejected(reason: &str) -> String {
    format!("l402_rejected_{reason}")
}

pub fn callout_error(kind: &str) -> String {
    format!("l402_callout_errors_{kind}")
}

/// All counter names, for defining them when the plugin starts so that zeros show too.
pub fn all() -> Vec<String> {
    let mut names: Vec<String> = [
        ALLOWED,
        FREE,
        UNMATCHED,
        DENIED,
        CHALLENGED,
        RATE_LIMITED,
        FAIL_OPEN,
        DRY_RUN_WOULD_REJECT,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(REJECTION_REASONS.iter().map(|r| rejected(r)));
    names.extend(CALLOUT_ERRORS.iter().map(|k| callout_error(k)));
    names.extend(Refusal::ALL.iter().map(|r| refused(r.reason())));
    names
}
