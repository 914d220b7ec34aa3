//! The contract between the filter and the invoice service. Three conversations, all JSON over the
//! filter's callout cluster:
//! - a challenge: the callout the filter sends when a request has no valid token, and the answer
//!   it turns into a 402;
//! - quota leases: permission to serve requests of a counted token (`<service>_requests=N`), taken
//!   in blocks and the unused part given back;
//! - revocations: the token ids revoked in the shared store, read page by page;
//! - the discovery manifest: the filter's paid routes, which the service prices and returns as
//!   the document the filter serves at [`MANIFEST_WELL_KNOWN_PATH`].
//!
//! Both sides compile against these types (the filter serialises the request and reads the answer,
//! the service the other way round), so the two cannot drift. Unknown fields are ignored, so either
//! side can grow.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Where the service takes callouts, unless the filter's `invoice_service.path` says otherwise.
pub const CHALLENGE_PATH: &str = "/v1/challenges";

/// The header a request-time callout carries the client request's id in (Envoy's own
/// `x-request-id`), so the service's log lines for it can be found from Envoy's access log.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longer ids are not passed on: an id is a key to search logs by, not a place for data.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// `id` may be passed on and logged as a request id: 1 to [`MAX_REQUEST_ID_BYTES`] visible
/// ASCII characters, so it cannot split a log line or a header.
pub fn is_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_BYTES).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

/// `POST` JSON body of the callout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRequest<'a> {
    /// The service the route sells.
    #[serde(borrow)]
    pub service: Cow<'a, str>,
    #[serde(default, borrow)]
    pub method: Cow<'a, str>,
    /// The canonical path, without its query string (which may carry the client's secrets).
    #[serde(default, borrow)]
    pub path: Cow<'a, str>,
    /// The client's address as the proxy derived it; the service's per-client limit keys on it.
    #[serde(default, borrow)]
    pub client_ip: Option<Cow<'a, str>>,
    /// Why the request had no valid token (`missing`, `expired`, …): a rejection reason.
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
    /// The canonical host the client asked, for the page's instructions.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub host: Option<Cow<'a, str>>,
    /// The client prefers HTML (a person following a link): answer with a [`Page`] too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub page: bool,
}

impl ChallengeRequest<'_> {
    /// The path without a query string, whatever the caller sent.
    pub fn path_only(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(&self.path, |(path, _)| path)
    }
}

/// The service's answer (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeAnswer {
    /// Standard base64 of the binary (V2) macaroon, as it goes into `WWW-Authenticate`.
    pub macaroon: String,
    pub invoice: String,
    /// Hex, as lnd and block explorers show it.
    #[serde(default)]
    pub payment_hash: String,
    #[serde(default)]
    pub amount_msat: u64,
    /// Unix seconds when the invoice expires.
    #[serde(default)]
    pub expires_at: i64,
    /// Hex; the filter forwards it to the upstream as `x-l402-token-id` once paid.
    #[serde(default)]
    pub token_id: String,
    /// Unix seconds when the token stops working, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
    /// The payment page, when the request asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

/// A challenge for a browser: the HTML the filter sends as the 402's body, and the
/// `Content-Security-Policy` that lets exactly its own inline script and style run (hashes of
/// them, which only the side that writes the page can know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub html: String,
    pub content_security_policy: String,
}

/// Where the filter asks for a block of a counted token's requests.
pub const LEASE_PATH: &str = "/v1/quota/leases";
/// Where the filter gives back what it did not use of a block.
pub const LEASE_RETURN_PATH: &str = "/v1/quota/returns";
/// Where revocations are read (`GET ?after=<cursor>`) and recorded (`POST`, authenticated).
pub const REVOCATIONS_PATH: &str = "/v1/revocations";

/// `POST` [`LEASE_PATH`]: the credential itself, so the service trusts no count the caller
/// states: it verifies the token and reads N from its caveats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest<'a> {
    #[serde(borrow)]
    pub service: Cow<'a, str>,
    /// `<base64 macaroon>:<hex preimage>`, as in an `Authorization: L402` line.
    #[serde(borrow)]
    pub token: Cow<'a, str>,
    /// How many requests the caller would like to serve on its own; it may get fewer.
    pub want: u32,
    /// A block of the same token the caller has used up, handed in with this request instead
    /// of in a return of its own.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub done: Option<Cow<'a, str>>,
}

/// The answer to a [`LeaseRequest`] (200). `granted` counts the request that asked, so a grant
/// of 1 is that request alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseAnswer {
    pub granted: u32,
    /// Names the block for [`LeaseReturn`]; empty when nothing was granted.
    #[serde(default)]
    pub lease: String,
    /// Requests of the token not yet leased to anyone, after this grant.
    #[serde(default)]
    pub remaining: u64,
    /// Blocks held elsewhere and not yet given back. With `granted == 0` it tells "used up"
    /// (0) from "wait: other proxies hold the rest" (more than 0).
    #[serde(default)]
    pub held: u32,
    /// How long the caller may serve from the block; after that it gives back the rest.
    #[serde(default)]
    pub hold_ms: u32,
}

impl LeaseAnswer {
    pub fn exhausted(&self) -> bool {
        self.granted == 0 && self.held == 0
    }
}

/// `POST` [`LEASE_RETURN_PATH`]: the part of a block that was not served. Giving back is the
/// only way units return; a block never given back counts as served in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseReturn<'a> {
    /// Hex token id.
    #[serde(borrow)]
    pub token_id: Cow<'a, str>,
    #[serde(borrow)]
    pub lease: Cow<'a, str>,
    pub unused: u32,
}

/// The answer to a [`LeaseReturn`]: how many units went back (0 for a block already given back
/// or forgotten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnAnswer {
    pub credited: u32,
}

/// `GET` [`REVOCATIONS_PATH`]`?after=<cursor>`: the ids revoked after `cursor`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationPage {
    /// Hex token ids.
    pub ids: Vec<String>,
    /// Where the next read starts.
    pub cursor: u64,
    /// Another page follows at once.
    #[serde(default)]
    pub more: bool,
    /// Names the store's history: a store that lost its data starts a new epoch, and a reader
    /// that sees a new epoch reads from the start again (keeping what it has).
    pub epoch: String,
}

/// `POST` [`REVOCATIONS_PATH`] (with the admin bearer token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// Hex token id.
    pub token_id: String,
}

/// Where clients look for the discovery manifest (RFC 8615; the L402 discovery spec). Served by
/// the filter, never challenged.
pub const MANIFEST_WELL_KNOWN_PATH: &str = "/.well-known/l402.json";
/// Where the filter asks the service to price its routes into the manifest.
pub const MANIFEST_PATH: &str = "/v1/manifest";

/// `POST` [`MANIFEST_PATH`]: what the filter sells where. The routes are the filter's, the
/// prices the service's, so neither keeps a copy of the other's half of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRequest<'a> {
    /// The host the client asked, for the provider's name.
    #[serde(default, borrow)]
    pub host: Cow<'a, str>,
    /// Borrowed by the filter, which sends its own list as it is.
    #[serde(borrow)]
    pub resources: Cow<'a, [PaidRoute<'a>]>,
}

/// One paid route of the filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidRoute<'a> {
    #[serde(borrow)]
    pub service: Cow<'a, str>,
    /// An exact path, or a prefix followed by `*`; `None` for a pattern no template can say.
    #[serde(default, borrow)]
    pub path: Option<Cow<'a, str>>,
    /// Upper-case; empty for every method.
    #[serde(default, borrow)]
    pub methods: Vec<Cow<'a, str>>,
    /// What a token must grant on this route.
    #[serde(default, borrow)]
    pub capabilities: Vec<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_round_trips_and_ignores_what_it_does_not_know() {
        let request = ChallengeRequest {
            service: "weather".into(),
            method: "GET".into(),
            path: "/weather/today".into(),
            client_ip: Some("203.0.113.9".into()),
            reason: Some("missing".into()),
            host: None,
            page: false,
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<ChallengeRequest>(&json).unwrap(),
            request
        );
        let newer = r#"{"service":"news","future":1}"#;
        let read: ChallengeRequest = serde_json::from_str(newer).unwrap();
        assert_eq!((read.service.as_ref(), read.path.as_ref()), ("news", ""));
    }

    #[test]
    fn path_only_drops_a_query_string() {
        let request = ChallengeRequest {
            service: "s".into(),
            method: "GET".into(),
            path: "/a?token=x".into(),
            client_ip: None,
            reason: None,
            host: None,
            page: false,
        };
        assert_eq!(request.path_only(), "/a");
    }

    #[test]
    fn a_lease_answer_tells_used_up_from_held_elsewhere() {
        let answer: LeaseAnswer = serde_json::from_str(r#"{"granted":0}"#).unwrap();
        assert!(answer.exhausted());
        let held: LeaseAnswer = serde_json::from_str(r#"{"granted":0,"held":2}"#).unwrap();
        assert!(!held.exhausted());
        let granted: LeaseAnswer =
            serde_json::from_str(r#"{"granted":3,"lease":"ab","remaining":7}"#).unwrap();
        assert!(!granted.exhausted());
    }

    #[test]
    fn the_answer_needs_only_macaroon_and_invoice() {
        let answer: ChallengeAnswer =
            serde_json::from_str(r#"{"macaroon":"AgE","invoice":"lnbc1"}"#).unwrap();
        assert_eq!(answer.amount_msat, 0);
        assert!(serde_json::from_str::<ChallengeAnswer>(r#"{"invoice":"lnbc1"}"#).is_err());
    }
}
