//! The contract between the filter and the invoice service: the callout the filter sends when a
//! request has no valid token, and the answer it turns into a 402. Both sides compile against
//! these types (the filter serialises the request and reads the answer, the service the other
//! way round), so the two cannot drift. Unknown fields are ignored, so either side can grow.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Where the service takes callouts, unless the filter's `invoice_service.path` says otherwise.
pub const CHALLENGE_PATH: &str = "/v1/challenges";

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
        };
        assert_eq!(request.path_only(), "/a");
    }

    #[test]
    fn the_answer_needs_only_macaroon_and_invoice() {
        let answer: ChallengeAnswer =
            serde_json::from_str(r#"{"macaroon":"AgE","invoice":"lnbc1"}"#).unwrap();
        assert_eq!(answer.amount_msat, 0);
        assert!(serde_json::from_str::<ChallengeAnswer>(r#"{"invoice":"lnbc1"}"#).is_err());
    }
}
