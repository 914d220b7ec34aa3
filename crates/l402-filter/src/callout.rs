//! The callout to the invoice service: how the filter reads its answer. What it sends and what it
//! reads are the contract types of `l402_core::contract`, shared with the service.

use l402_core::contract::{ChallengeAnswer, LeaseAnswer, Page};
use l402_core::Challenge;
use serde::de::DeserializeOwned;

use crate::host::{header, Headers};
use crate::labels::labelled;

/// Largest answer read from the invoice service: a challenge is well under 2 KiB, with its
/// payment page (a QR code of a long invoice) or the discovery manifest of many routes, tens.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Whether an answer body of `size` bytes is read at all; a larger one is a
/// [`Failure::TooLarge`] without being copied into the VM.
pub fn within_limit(size: usize) -> bool {
    size <= MAX_RESPONSE_BYTES
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Challenge {
        challenge: Challenge,
        amount_msat: u64,
        /// The payment page, if one was asked for and it can be sent as it is.
        page: Option<Page>,
    },
    RateLimited {
        retry_after: String,
    },
    Failed(Failure),
}

labelled! {
    /// The kinds of callout failure: `label()` names their counters.
    pub enum FailureKind {
        /// Envoy refused to start the call (a cluster missing from the bootstrap).
        Dispatch => "dispatch",
        Timeout => "timeout",
        Unavailable => "unavailable",
        Reset => "reset",
        Status => "status",
        Malformed => "malformed",
        TooLarge => "too_large",
    }
}

/// Why no challenge came back.
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
    /// A body over [`MAX_RESPONSE_BYTES`], left unread.
    TooLarge(usize),
}

impl Failure {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Timeout => FailureKind::Timeout,
            Self::Unavailable => FailureKind::Unavailable,
            Self::Reset => FailureKind::Reset,
            Self::Status(_) => FailureKind::Status,
            Self::Malformed(_) => FailureKind::Malformed,
            Self::TooLarge(_) => FailureKind::TooLarge,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Timeout => "invoice service timed out".into(),
            Self::Unavailable => "invoice service unreachable".into(),
            Self::Reset => "invoice service connection reset".into(),
            Self::Status(s) => format!("invoice service answered HTTP {s}"),
            Self::Malformed(why) => format!("invoice service answer unusable: {why}"),
            Self::TooLarge(size) => format!(
                "invoice service answered {size} bytes, more than the {MAX_RESPONSE_BYTES} read"
            ),
        }
    }
}

/// The answer's HTTP status, or the failure Envoy's synthetic answers stand for.
fn status(headers: &Headers) -> Result<u16, Failure> {
    let status = header(headers, ":status").ok_or(Failure::Reset)?;
    let status = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(504) => Err(Failure::Timeout),
        Some(503) => Err(Failure::Unavailable),
        Some(status) => Ok(status),
        None => Err(Failure::Malformed("no valid :status".into())),
    }
}

/// A successful answer's JSON body as `T`.
fn json<T: DeserializeOwned>(
    status: u16,
    body_size: usize,
    body: Option<&[u8]>,
    what: &str,
) -> Result<T, Failure> {
    if !(200..=299).contains(&status) {
        return Err(Failure::Status(status));
    }
    if !within_limit(body_size) {
        return Err(Failure::TooLarge(body_size));
    }
    serde_json::from_slice(body.unwrap_or_default())
        .map_err(|e| Failure::Malformed(format!("not {what} JSON ({e})")))
}

/// Reads the answer to a lease request (`l402_core::contract::LeaseAnswer`).
pub fn interpret_lease(
    headers: &Headers,
    body_size: usize,
    body: Option<&[u8]>,
) -> Result<LeaseAnswer, Failure> {
    json(status(headers)?, body_size, body, "lease")
}

/// The manifest's JSON as the service sent it: only checked to be a JSON object, since the
/// filter relays it and does not read it.
pub fn interpret_manifest<'b>(
    headers: &Headers,
    body_size: usize,
    body: Option<&'b [u8]>,
) -> Result<&'b [u8], Failure> {
    let status = status(headers)?;
    json::<serde::de::IgnoredAny>(status, body_size, body, "manifest")?;
    let body = body.unwrap_or_default();
    if body.trim_ascii_start().first() == Some(&b'{') {
        Ok(body)
    } else {
        Err(Failure::Malformed("manifest is not a JSON object".into()))
    }
}

/// Whether `value` can go into a response header as it is: printable ASCII, so nothing the
/// service sent can end the header or start another.
fn is_header_value(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Reads the invoice service's answer: `headers` include `:status`; `body` is `None` when the
/// answer had none or, at `body_size` over the limit, when it was not read.
pub fn interpret(headers: &Headers, body_size: usize, body: Option<&[u8]>) -> Outcome {
    let status = match status(headers) {
        Ok(status) => status,
        Err(failure) => return Outcome::Failed(failure),
    };
    if status == 429 {
        let retry_after = header(headers, "retry-after")
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or("1");
        return Outcome::RateLimited {
            retry_after: retry_after.to_string(),
        };
    }
    let answer: ChallengeAnswer = match json(status, body_size, body, "challenge") {
        Ok(answer) => answer,
        Err(failure) => return Outcome::Failed(failure),
    };
    match Challenge::from_parts(&answer.macaroon, &answer.invoice) {
        Ok(challenge) => Outcome::Challenge {
            challenge,
            amount_msat: answer.amount_msat,
            page: answer
                .page
                .filter(|p| is_header_value(&p.content_security_policy)),
        },
        Err(e) => Outcome::Failed(Failure::Malformed(e.to_string())),
    }
}
