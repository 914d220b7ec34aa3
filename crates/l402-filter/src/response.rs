//! The responses the filter answers with itself: the challenge, and the fail-closed errors.

use l402_core::challenge::{EXTRA_HEADERS, WWW_AUTHENTICATE};
use l402_core::contract::Page;
use l402_core::Challenge;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Why the filter answered, as Envoy's response code details (`%RESPONSE_CODE_DETAILS%`
    /// in access logs), so a log line tells a challenge from a refusal or an outage. One word
    /// of `[a-z0-9_]`: Envoy does not allow spaces there.
    pub details: &'static str,
}

impl LocalResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The details of every challenge: 402, 401 for an invalid credential, and gRPC's.
const CHALLENGE: &str = "l402_challenge";
/// The details of a request refused for itself (400, 414) or for matching nothing (404).
const REFUSED: &str = "l402_refused";

fn json_body(value: serde_json::Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// How a challenge is answered: what the request was, and what the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Form {
    pub grpc: bool,
    /// 402, or 401 for an invalid credential when so configured.
    pub status: u32,
    /// The 2026 spec's `L402 version="0", token=…` line after the two current ones.
    pub token_line: bool,
}

/// 402 (or 401) with the challenge, or for gRPC the HTTP 200 + `grpc-status: 13` that grpc-go
/// clients need.
pub fn challenge(
    challenge: &Challenge,
    service: &str,
    amount_msat: u64,
    form: Form,
    page: Option<&Page>,
) -> LocalResponse {
    let mut headers: Vec<(String, String)> = challenge
        .header_values()
        .into_iter()
        .chain(form.token_line.then(|| challenge.token_header_value()))
        .map(|v| (WWW_AUTHENTICATE.to_string(), v))
        .collect();
    headers.extend(
        EXTRA_HEADERS
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string())),
    );
    if form.grpc {
        headers.push(("content-type".into(), "application/grpc".into()));
        headers.push(("grpc-status".into(), "13".into()));
        headers.push(("grpc-message".into(), "payment required".into()));
        return LocalResponse {
            status: 200,
            headers,
            body: Vec::new(),
            details: CHALLENGE,
        };
    }
    if let Some(page) = page {
        headers.push(("content-type".into(), "text/html; charset=utf-8".into()));
        headers.push((
            "content-security-policy".into(),
            page.content_security_policy.clone(),
        ));
        headers.push(("x-content-type-options".into(), "nosniff".into()));
        headers.push(("referrer-policy".into(), "no-referrer".into()));
        return LocalResponse {
            status: form.status,
            headers,
            body: page.html.clone().into_bytes(),
            details: CHALLENGE,
        };
    }
    headers.push(("content-type".into(), "application/json".into()));
    let error = if form.status == 401 {
        "invalid credential, payment required"
    } else {
        "payment required"
    };
    let body = json_body(json!({
        "error": error,
        "service": service,
        "amount_msat": amount_msat,
        "invoice": challenge.invoice(),
    }));
    LocalResponse {
        status: form.status,
        headers,
        body,
        details: CHALLENGE,
    }
}

/// The discovery manifest as the service priced it. Public and the same for everyone, so any
/// origin may read it and caches may keep it a while.
pub fn manifest(body: &[u8]) -> LocalResponse {
    LocalResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("access-control-allow-origin".into(), "*".into()),
            ("cache-control".into(), "public, max-age=300".into()),
        ],
        body: body.to_vec(),
        details: "l402_discovery",
    }
}

/// The request itself is at fault (400, 414) or, with `unmatched: deny`, matches nothing (404).
/// gRPC clients get HTTP 200 with the gRPC status instead, as for the challenge.
pub fn refused(status: u32, message: &str, grpc: bool) -> LocalResponse {
    if grpc {
        // NOT_FOUND for a method nobody sells, INVALID_ARGUMENT for an unreadable request.
        let code = if status == 404 { "5" } else { "3" };
        return LocalResponse {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/grpc".into()),
                ("grpc-status".into(), code.into()),
                ("grpc-message".into(), message.into()),
            ],
            body: Vec::new(),
            details: REFUSED,
        };
    }
    LocalResponse {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: json_body(json!({ "error": message })),
        details: REFUSED,
    }
}

/// 503: no challenge could be had, so the request is refused rather than let through unpaid.
/// The cause is logged, not told to the client.
pub fn unavailable(retry_after: u32) -> LocalResponse {
    let error = "payment service unavailable, retry later";
    retry_later(503, &retry_after.to_string(), error, "l402_unavailable")
}

/// 429 passed on from the invoice service's spam protection.
pub fn rate_limited(retry_after: &str) -> LocalResponse {
    let error = "too many payment challenges";
    retry_later(429, retry_after, error, "l402_challenge_rate_limited")
}

/// 429: the counted token's last requests are held by other proxies for now; they come back
/// within the idle-return time if those proxies do not serve them.
pub fn quota_held_elsewhere(retry_after: u32) -> LocalResponse {
    let error = "the token's remaining requests are in use elsewhere, retry shortly";
    retry_later(
        429,
        &retry_after.to_string(),
        error,
        "l402_quota_held_elsewhere",
    )
}

fn retry_later(
    status: u32,
    retry_after: &str,
    error: &str,
    details: &'static str,
) -> LocalResponse {
    LocalResponse {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("retry-after".into(), retry_after.to_string()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: json_body(json!({ "error": error })),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_details_string_is_one_word_envoy_accepts() {
        let answers = [
            manifest(b"{}"),
            refused(400, "bad", false),
            refused(404, "none", true),
            unavailable(5),
            rate_limited("5"),
            quota_held_elsewhere(5),
        ];
        let details = answers.iter().map(|a| a.details).chain([CHALLENGE]);
        for d in details {
            let word = d
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            assert!(word && d.starts_with("l402_"), "{d:?}");
        }
    }
}
