//! The `402 Payment Required` challenge, formatted the way every real client parses it.
//!
//! Two `WWW-Authenticate` lines, `LSAT` first because lnget and older clients read only the first
//! value; values quoted; the macaroon in standard padded base64.

use thiserror::Error;

use crate::encoding::{from_base64, to_base64};
use crate::macaroon::{DecodeError, Macaroon};

pub const WWW_AUTHENTICATE: &str = "www-authenticate";

/// Headers every challenge response carries besides the two `WWW-Authenticate` lines: browsers
/// (Alby) must be allowed to read the challenge, and no cache may keep a one-time invoice.
pub const EXTRA_HEADERS: [(&str, &str); 2] = [
    ("access-control-expose-headers", "WWW-Authenticate"),
    ("cache-control", "no-store"),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    #[error("challenge macaroon is not base64")]
    MacaroonNotBase64,
    #[error("challenge macaroon does not decode: {0}")]
    Macaroon(#[from] DecodeError),
    #[error("challenge invoice is not a BOLT11 payment request")]
    Invoice,
    #[error("header is not an L402/LSAT challenge")]
    NotAChallenge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    macaroon_base64: String,
    invoice: String,
}

impl Challenge {
    pub fn new(macaroon: &Macaroon, invoice: &str) -> Result<Self, ChallengeError> {
        check_invoice(invoice)?;
        Ok(Self {
            macaroon_base64: to_base64(&macaroon.encode()),
            invoice: invoice.to_owned(),
        })
    }

    /// From the parts an invoice service returned, checked so that nothing malformed (or able to
    /// break out of the quoted header value) reaches a client.
    pub fn from_parts(macaroon_base64: &str, invoice: &str) -> Result<Self, ChallengeError> {
        let bytes =
            from_base64(macaroon_base64.as_bytes()).ok_or(ChallengeError::MacaroonNotBase64)?;
        let (macaroon, _) = Macaroon::decode(&bytes)?;
        Self::new(&macaroon, invoice)
    }

    pub fn macaroon_base64(&self) -> &str {
        &self.macaroon_base64
    }

    pub fn invoice(&self) -> &str {
        &self.invoice
    }

    /// The two `WWW-Authenticate` values, `LSAT` first.
    pub fn header_values(&self) -> [String; 2] {
        ["LSAT", "L402"].map(|scheme| {
            format!(
                "{scheme} macaroon=\"{}\", invoice=\"{}\"",
                self.macaroon_base64, self.invoice
            )
        })
    }

    /// The 2026 revision's form, `L402 version="0", token="…", invoice="…"`. Sent only as a
    /// line after [`Self::header_values`]: today's clients read `macaroon=` right after the
    /// scheme on the first line, and this one has none.
    pub fn token_header_value(&self) -> String {
        format!(
            "L402 version=\"0\", token=\"{}\", invoice=\"{}\"",
            self.macaroon_base64, self.invoice
        )
    }

    /// Parses one `WWW-Authenticate` value as lnget does:
    /// `(?i)(LSAT|L402)\s+macaroon="([^"]+)",\s*invoice="([^"]+)"`.
    pub fn parse_header(value: &str) -> Result<Self, ChallengeError> {
        let rest = value.trim_start();
        let scheme = rest.get(..4).ok_or(ChallengeError::NotAChallenge)?;
        if !scheme.eq_ignore_ascii_case("LSAT") && !scheme.eq_ignore_ascii_case("L402") {
            return Err(ChallengeError::NotAChallenge);
        }
        let rest = &rest[4..];
        if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
            return Err(ChallengeError::NotAChallenge);
        }
        let rest = rest.trim_start();
        let (macaroon, rest) = quoted_param(rest, "macaroon=")?;
        let rest = rest
            .strip_prefix(',')
            .ok_or(ChallengeError::NotAChallenge)?;
        let (invoice, _) = quoted_param(rest.trim_start(), "invoice=")?;
        Self::from_parts(macaroon, invoice)
    }
}

fn quoted_param<'a>(text: &'a str, name: &str) -> Result<(&'a str, &'a str), ChallengeError> {
    let rest = text
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix('"'))
        .ok_or(ChallengeError::NotAChallenge)?;
    let end = rest.find('"').ok_or(ChallengeError::NotAChallenge)?;
    Ok((&rest[..end], &rest[end + 1..]))
}

/// BOLT11 is bech32: `ln` then ASCII letters and digits only.
fn check_invoice(invoice: &str) -> Result<(), ChallengeError> {
    let starts_ln = invoice
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("ln"));
    if starts_ln && invoice.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ChallengeError::Invoice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVOICE: &str = "lnbcrt10n1pjexample";

    fn macaroon() -> Macaroon {
        Macaroon::new(b"k", vec![0u8; 66], b"lsat".to_vec())
    }

    #[test]
    fn lsat_line_comes_first_and_values_are_quoted() {
        let c = Challenge::new(&macaroon(), INVOICE).unwrap();
        let b64 = to_base64(&macaroon().encode());
        assert_eq!(
            c.header_values(),
            [
                format!("LSAT macaroon=\"{b64}\", invoice=\"{INVOICE}\""),
                format!("L402 macaroon=\"{b64}\", invoice=\"{INVOICE}\""),
            ]
        );
    }

    #[test]
    fn the_token_line_is_the_2026_form_and_not_a_challenge_to_todays_parsers() {
        let c = Challenge::new(&macaroon(), INVOICE).unwrap();
        let line = c.token_header_value();
        assert_eq!(
            line,
            format!(
                "L402 version=\"0\", token=\"{}\", invoice=\"{INVOICE}\"",
                c.macaroon_base64()
            )
        );
        assert_eq!(
            Challenge::parse_header(&line),
            Err(ChallengeError::NotAChallenge)
        );
    }

    #[test]
    fn parses_back_what_it_writes() {
        let c = Challenge::new(&macaroon(), INVOICE).unwrap();
        for value in c.header_values() {
            assert_eq!(Challenge::parse_header(&value), Ok(c.clone()));
        }
        let spaced = format!(
            "l402  macaroon=\"{}\",invoice=\"{INVOICE}\"",
            c.macaroon_base64()
        );
        assert_eq!(Challenge::parse_header(&spaced), Ok(c));
    }

    #[test]
    fn refuses_invoices_that_could_break_the_header() {
        for bad in ["", "lnbc\"x", "lnbc\r\nX-Evil: 1", "bitcoin:abc", "lnbc 1"] {
            assert_eq!(
                Challenge::new(&macaroon(), bad),
                Err(ChallengeError::Invoice),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_parts_that_are_not_a_macaroon() {
        assert_eq!(
            Challenge::from_parts("!!!", INVOICE),
            Err(ChallengeError::MacaroonNotBase64)
        );
        assert_eq!(
            Challenge::from_parts("AAAA", INVOICE),
            Err(ChallengeError::Macaroon(DecodeError::UnknownFormat))
        );
    }

    #[test]
    fn non_challenges_are_refused() {
        for bad in [
            "Basic realm=\"x\"",
            "L402 token=\"abc\", version=\"0\"",
            "L402",
        ] {
            assert_eq!(
                Challenge::parse_header(bad),
                Err(ChallengeError::NotAChallenge),
                "{bad}"
            );
        }
    }
}
