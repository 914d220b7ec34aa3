//! The callout to the invoice service: what the filter asks, and how it reads the answer.

use l402_core::Challenge;
use serde::{Deserialize, Serialize};

use crate::host::Headers;

/// Largest answer read from the invoice service; a challenge is well under 2 KiB.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

#[derive(Debug, Serialize)]
pub struct ChallengeRequest<'a> {
    pub service: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    pub client_ip: Option<&'a str>,
    /// Why the request had no valid token (`missing`, `expired`, …).
    pub reason: &'a str,
}

#[derive(Debug, Deserialize)]
struct ChallengeAnswer {
    macaroon: String,
    invoice: String,
    #[serde(default)]
    amount_msat: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Challenge {
        challenge: Challenge,
        amount_msat: Option<u64>,
    },
    RateLimited {
        retry_after: String,
    },
    Failed(Failure),
}

/// Why no challenge came back. `kind()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Envoy's synthetic 504: the callout timed out.
    Timeout,
    /// 503: no healthy upstream, connection refused.
    Unavailable,
    /// An answer without headers: the connection was reset.
    Reset,
    Status(u16),
    Malformed(String),
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Reset => "reset",
            Self::Status(_) => "status",
            Self::Malformed(_) => "malformed",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Timeout => "invoice service timed out".into(),
            Self::Unavailable => "invoice service unreachable".into(),
            Self::Reset => "invoice service connection reset".into(),
            Self::Status(s) => format!("invoice service answered HTTP {s}"),
            Self::Malformed(why) => format!("invoice service answer unusable: {why}"),
        }
    }
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Reads the invoice service's answer (`headers` include `:status`).
pub fn interpret(headers: &Headers, body: Option<&[u8]>) -> Outcome {
    let Some(status) = header(headers, ":status") else {
        return Outcome::Failed(Failure::Reset);
    };
    let status = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => {}
        Some(429) => {
            let retry_after = header(headers, "retry-after")
                .and_then(|v| std::str::from_utf8(v).ok())
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or("1");
            return Outcome::RateLimited {
                retry_after: retry_after.to_string(),
            };
        }
        Some(504) => return Outcome::Failed(Failure::Timeout),
        Some(503) => return Outcome::Failed(Failure::Unavailable),
        Some(other) => return Outcome::Failed(Failure::Status(other)),
        None => return Outcome::Failed(Failure::Malformed("no valid :status".into())),
    }
    let body = body.unwrap_or_default();
    let answer: ChallengeAnswer = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(e) => return Outcome::Failed(Failure::Malformed(format!("not challenge JSON ({e})"))),
    };
    match Challenge::from_parts(&answer.macaroon, &answer.invoice) {
        Ok(challenge) => Outcome::Challenge {
            challenge,
            amount_msat: answer.amount_msat,
        },
        Err(e) => Outcome::Failed(Failure::Malformed(e.to_string())),
    }
}
