//! Reading the L402 credential a request carries.
//!
//! Accepted, as a superset of Aperture's `(LSAT|L402) (.*?):([a-f0-9]{64})`:
//! - `Authorization: L402 <base64 macaroon>:<hex preimage>` or the same with `LSAT`; scheme in any
//!   case, one or more spaces, base64 standard or url-safe with or without padding, hex in either
//!   case. Several `Authorization` lines, or one comma-joined line, are fine when every L402/LSAT
//!   credential among them is the same (Aperture's own client sends an `LSAT` and an `L402` line).
//! - Otherwise `Grpc-Metadata-Macaroon: <hex>` or `Macaroon: <hex>`, or the 2026 spec's names for
//!   the same, `Grpc-Metadata-Token: <hex>` or `Token: <hex>`: the macaroon with a `preimage=<hex>`
//!   caveat appended by the client, the last such caveat winning. `Token` is a common name, so a
//!   value that is not hex is taken for someone else's token (like a `Bearer` line), not an error.

use thiserror::Error;

use crate::caveat::{Caveat, PREIMAGE};
use crate::encoding::{from_base64, from_hex, hex32};
use crate::limits::MAX_CREDENTIAL_HEADER_BYTES;
use crate::macaroon::{DecodeError, Macaroon};

pub const AUTHORIZATION: &str = "authorization";
pub const GRPC_METADATA_MACAROON: &str = "grpc-metadata-macaroon";
pub const MACAROON: &str = "macaroon";
pub const GRPC_METADATA_TOKEN: &str = "grpc-metadata-token";
pub const TOKEN: &str = "token";

/// Which request header carried the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Authorization,
    GrpcMetadataMacaroon,
    Macaroon,
    GrpcMetadataToken,
    Token,
}

/// The headers that carry a hex macaroon, in the order they are read when no `Authorization`
/// line carries a credential, and whether a value that is not hex belongs to someone else.
const HEX_HEADERS: [(&str, Source, bool); 4] = [
    (GRPC_METADATA_MACAROON, Source::GrpcMetadataMacaroon, false),
    (MACAROON, Source::Macaroon, false),
    (GRPC_METADATA_TOKEN, Source::GrpcMetadataToken, true),
    (TOKEN, Source::Token, true),
];

/// Every request header a credential may come in: what the filter reads, caches by and removes
/// before the request goes upstream.
pub const CREDENTIAL_HEADERS: [&str; 5] = [
    AUTHORIZATION,
    GRPC_METADATA_MACAROON,
    MACAROON,
    GRPC_METADATA_TOKEN,
    TOKEN,
];

/// Whether a value of the hex header `name` is an L402 credential (and so is removed before the
/// request goes upstream): always for the `Macaroon` names, and for the `Token` names when it
/// is hex, since a `Token` that is not belongs to the upstream.
pub fn is_l402_hex_header_value(name: &str, value: &[u8]) -> bool {
    HEX_HEADERS
        .iter()
        .find(|(n, _, _)| name.eq_ignore_ascii_case(n))
        .is_some_and(|&(_, _, shared)| !shared || is_hex(value))
}

fn is_hex(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    !value.is_empty() && value.len() % 2 == 0 && value.iter().all(u8::is_ascii_hexdigit)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub macaroon: Macaroon,
    pub preimage: [u8; 32],
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialError {
    #[error("no L402 credential in the request")]
    Missing,
    #[error("credential header is {len} bytes, more than the {max} accepted")]
    TooLarge { len: usize, max: usize },
    #[error("Authorization credential is not `<macaroon>:<preimage>`")]
    MalformedAuthorization,
    #[error("macaroon is not valid base64")]
    BadBase64,
    #[error("macaroon header is not valid hex")]
    BadHex,
    #[error("preimage is not 64 hex digits")]
    BadPreimage,
    #[error("macaroon header has no preimage caveat")]
    MissingPreimageCaveat,
    #[error("request carries different L402 credentials")]
    Conflicting,
    #[error(transparent)]
    Macaroon(#[from] DecodeError),
}

/// Finds and decodes the credential among a request's headers (`name`, `value` pairs, names in any
/// case, values as raw bytes since untrusted headers need not be UTF-8).
pub fn from_headers<'a, I>(headers: I) -> Result<Credential, CredentialError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut authorization: Option<(Vec<u8>, [u8; 32])> = None;
    let mut hex_values: [Option<&[u8]>; HEX_HEADERS.len()] = [None; HEX_HEADERS.len()];

    for (name, value) in headers {
        let slot = if name.eq_ignore_ascii_case(AUTHORIZATION.as_bytes()) {
            None
        } else if let Some(i) = HEX_HEADERS
            .iter()
            .position(|(n, _, _)| name.eq_ignore_ascii_case(n.as_bytes()))
        {
            Some(i)
        } else {
            continue;
        };
        if value.len() > MAX_CREDENTIAL_HEADER_BYTES {
            return Err(CredentialError::TooLarge {
                len: value.len(),
                max: MAX_CREDENTIAL_HEADER_BYTES,
            });
        }
        match slot {
            Some(i) => {
                let (_, _, shared) = HEX_HEADERS[i];
                if !shared || is_hex(value) {
                    hex_values[i] = hex_values[i].or(Some(value));
                }
            }
            None => {
                for item in value.split(|&b| b == b',') {
                    let Some(token) = l402_token(item) else {
                        continue;
                    };
                    let parsed = parse_token(token)?;
                    match &authorization {
                        Some(seen) if *seen != parsed => return Err(CredentialError::Conflicting),
                        Some(_) => {}
                        None => authorization = Some(parsed),
                    }
                }
            }
        }
    }

    if let Some((macaroon, preimage)) = authorization {
        let (macaroon, _) = Macaroon::decode(&macaroon)?;
        return Ok(Credential {
            macaroon,
            preimage,
            source: Source::Authorization,
        });
    }
    HEX_HEADERS
        .iter()
        .zip(hex_values)
        .find_map(|(&(_, source, _), value)| value.map(|hex| from_macaroon_header(hex, source)))
        .unwrap_or(Err(CredentialError::Missing))
}

/// An `Authorization` value with its L402/LSAT items removed, for forwarding: `None` when
/// nothing else is left, the value itself when it held none. Other schemes (a `Bearer` meant for
/// the upstream) are kept as they were.
pub fn without_l402_items(value: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    let items = || value.split(|&b| b == b',');
    if !items().any(|item| l402_token(item).is_some()) {
        return Some(std::borrow::Cow::Borrowed(value));
    }
    let kept: Vec<&[u8]> = items()
        .filter(|item| l402_token(item).is_none() && !item.trim_ascii().is_empty())
        .map(<[u8]>::trim_ascii)
        .collect();
    (!kept.is_empty()).then(|| std::borrow::Cow::Owned(kept.join(&b", "[..])))
}

/// The `<macaroon>:<preimage>` part of an `L402 …` or `LSAT …` item; `None` for other schemes.
fn l402_token(item: &[u8]) -> Option<&[u8]> {
    let item = item.trim_ascii();
    let (scheme, rest) = item.split_at_checked(4)?;
    let is_l402 = scheme.eq_ignore_ascii_case(b"L402") || scheme.eq_ignore_ascii_case(b"LSAT");
    let separated = rest.first().is_some_and(|b| b.is_ascii_whitespace());
    (is_l402 && separated).then(|| rest.trim_ascii_start())
}

fn parse_token(token: &[u8]) -> Result<(Vec<u8>, [u8; 32]), CredentialError> {
    let colon = token
        .iter()
        .rposition(|&b| b == b':')
        .ok_or(CredentialError::MalformedAuthorization)?;
    let (macaroon, preimage) = (&token[..colon], &token[colon + 1..]);
    if macaroon.is_empty() {
        return Err(CredentialError::MalformedAuthorization);
    }
    let preimage = hex32(preimage).ok_or(CredentialError::BadPreimage)?;
    let macaroon = from_base64(macaroon).ok_or(CredentialError::BadBase64)?;
    Ok((macaroon, preimage))
}

fn from_macaroon_header(value: &[u8], source: Source) -> Result<Credential, CredentialError> {
    let bytes = from_hex(value.trim_ascii()).ok_or(CredentialError::BadHex)?;
    let (macaroon, _) = Macaroon::decode(&bytes)?;
    let preimage = macaroon
        .caveats
        .iter()
        .rev()
        .filter_map(|c| Caveat::parse(&c.id))
        .find(|c| c.condition == PREIMAGE.as_bytes())
        .ok_or(CredentialError::MissingPreimageCaveat)?;
    let preimage = hex32(preimage.value).ok_or(CredentialError::BadPreimage)?;
    Ok(Credential {
        macaroon,
        preimage,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::to_base64;

    fn macaroon() -> Macaroon {
        let mut m = Macaroon::new(b"root", vec![0u8; 66], b"lsat".to_vec());
        m.add_first_party_caveat(b"services=svc:0".to_vec());
        m
    }

    fn parse(headers: &[(&str, &str)]) -> Result<Credential, CredentialError> {
        from_headers(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    fn auth(scheme: &str) -> String {
        format!(
            "{scheme} {}:{}",
            to_base64(&macaroon().encode()),
            "ab".repeat(32)
        )
    }

    #[test]
    fn reads_l402_and_lsat_authorization() {
        for scheme in ["L402", "LSAT", "l402", "lSaT"] {
            let c = parse(&[("Authorization", &auth(scheme))]).unwrap();
            assert_eq!(c.macaroon, macaroon());
            assert_eq!(c.preimage, [0xab; 32]);
            assert_eq!(c.source, Source::Authorization);
        }
    }

    #[test]
    fn tolerates_spacing_case_and_base64_variants() {
        let b64 = to_base64(&macaroon().encode());
        let url = b64.replace('+', "-").replace('/', "_");
        let unpadded = url.trim_end_matches('=');
        let value = format!("L402   {unpadded}:{}", "AB".repeat(32));
        let c = parse(&[("AUTHORIZATION", &value)]).unwrap();
        assert_eq!(c.macaroon, macaroon());
    }

    #[test]
    fn accepts_the_same_credential_on_several_lines_or_comma_joined() {
        let lsat = auth("LSAT");
        let l402 = auth("L402");
        assert!(parse(&[("authorization", &lsat), ("authorization", &l402)]).is_ok());
        assert!(parse(&[("authorization", &format!("{lsat}, {l402}"))]).is_ok());
        assert!(parse(&[("authorization", &format!("Bearer xyz, {l402}"))]).is_ok());
    }

    #[test]
    fn l402_items_are_removed_and_other_schemes_kept() {
        let l402 = auth("L402");
        let lsat = auth("LSAT");
        let strip = |v: &str| without_l402_items(v.as_bytes()).map(|c| c.into_owned());
        assert_eq!(strip(&l402), None);
        assert_eq!(strip(&format!("{lsat}, {l402}")), None);
        assert_eq!(
            strip(&format!("Bearer xyz, {l402}")),
            Some(b"Bearer xyz".to_vec())
        );
        assert_eq!(strip("Bearer xyz"), Some(b"Bearer xyz".to_vec()));
        assert_eq!(strip("l402 garbage"), None, "malformed L402 items go too");
    }

    #[test]
    fn rejects_different_credentials() {
        let other = format!(
            "L402 {}:{}",
            to_base64(&macaroon().encode()),
            "cd".repeat(32)
        );
        assert_eq!(
            parse(&[("authorization", &auth("LSAT")), ("authorization", &other)]),
            Err(CredentialError::Conflicting)
        );
    }

    #[test]
    fn malformed_authorization_values() {
        let b64 = to_base64(&macaroon().encode());
        let cases = [
            (
                format!("L402 {b64}"),
                CredentialError::MalformedAuthorization,
            ),
            (
                format!("L402 :{}", "ab".repeat(32)),
                CredentialError::MalformedAuthorization,
            ),
            (
                format!("L402 {b64}:{}", "ab".repeat(31)),
                CredentialError::BadPreimage,
            ),
            (
                format!("L402 {b64}:{}", "zz".repeat(32)),
                CredentialError::BadPreimage,
            ),
            (
                format!("L402 !!!!:{}", "ab".repeat(32)),
                CredentialError::BadBase64,
            ),
            (
                format!("L402 AAAA:{}", "ab".repeat(32)),
                CredentialError::Macaroon(DecodeError::UnknownFormat),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(parse(&[("authorization", &value)]), Err(want), "{value}");
        }
    }

    #[test]
    fn scheme_needs_a_separator_and_other_schemes_are_not_ours() {
        assert_eq!(
            parse(&[("authorization", "L402x")]),
            Err(CredentialError::Missing)
        );
        assert_eq!(
            parse(&[("authorization", "Bearer abc")]),
            Err(CredentialError::Missing)
        );
        assert_eq!(parse(&[]), Err(CredentialError::Missing));
    }

    #[test]
    fn oversized_header_is_refused_before_parsing() {
        let huge = format!(
            "L402 {}:{}",
            "A".repeat(MAX_CREDENTIAL_HEADER_BYTES),
            "ab".repeat(32)
        );
        assert!(matches!(
            parse(&[("authorization", &huge)]),
            Err(CredentialError::TooLarge { .. })
        ));
    }

    #[test]
    fn non_utf8_values_are_errors_not_panics() {
        let value: &[u8] = b"L402 \xff\xfe:\xff";
        let result = from_headers([(&b"authorization"[..], value)]);
        assert!(result.is_err());
    }

    fn with_preimage_caveats(preimages: &[&str]) -> String {
        let mut m = macaroon();
        for p in preimages {
            m.add_first_party_caveat(format!("preimage={p}").into_bytes());
        }
        hex::encode(m.encode())
    }

    #[test]
    fn macaroon_headers_carry_the_preimage_as_last_caveat() {
        let first = "11".repeat(32);
        let last = "22".repeat(32);
        let value = with_preimage_caveats(&[&first, &last]);
        for (name, source) in [
            ("Grpc-Metadata-Macaroon", Source::GrpcMetadataMacaroon),
            ("Macaroon", Source::Macaroon),
            ("Grpc-Metadata-Token", Source::GrpcMetadataToken),
            ("Token", Source::Token),
        ] {
            let c = parse(&[(name, &value)]).unwrap();
            assert_eq!((c.preimage, c.source), ([0x22; 32], source));
        }
    }

    #[test]
    fn authorization_wins_over_macaroon_headers() {
        let hex = with_preimage_caveats(&[&"11".repeat(32)]);
        let c = parse(&[("macaroon", &hex), ("authorization", &auth("L402"))]).unwrap();
        assert_eq!(c.source, Source::Authorization);
    }

    #[test]
    fn macaroon_header_errors() {
        assert_eq!(parse(&[("macaroon", "xyz")]), Err(CredentialError::BadHex));
        assert_eq!(
            parse(&[("macaroon", &with_preimage_caveats(&[]))]),
            Err(CredentialError::MissingPreimageCaveat)
        );
        assert_eq!(
            parse(&[("macaroon", &with_preimage_caveats(&["nothex"]))]),
            Err(CredentialError::BadPreimage)
        );
    }

    #[test]
    fn macaroon_names_win_over_token_names_and_a_token_that_is_not_hex_is_not_ours() {
        let a = with_preimage_caveats(&[&"11".repeat(32)]);
        let b = with_preimage_caveats(&[&"22".repeat(32)]);
        let c = parse(&[("token", &b), ("macaroon", &a)]).unwrap();
        assert_eq!((c.source, c.preimage), (Source::Macaroon, [0x11; 32]));
        let c = parse(&[("token", &b), ("grpc-metadata-token", &a)]).unwrap();
        assert_eq!(c.source, Source::GrpcMetadataToken);
        assert_eq!(
            parse(&[("token", "abc.def-upstream")]),
            Err(CredentialError::Missing)
        );
        let c = parse(&[("token", "opaque upstream key"), ("token", &b)]).unwrap();
        assert_eq!(c.source, Source::Token);
        assert!(is_l402_hex_header_value("Token", b.as_bytes()));
        assert!(!is_l402_hex_header_value("Token", b"abc.def"));
        assert!(is_l402_hex_header_value("Macaroon", b"not hex: still ours"));
        assert!(!is_l402_hex_header_value("authorization", b"ab"));
    }
}
