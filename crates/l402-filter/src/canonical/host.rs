//! The request host as virtual hosts compare it: `API.Example.COM.:8080` is `api.example.com`.
//!
//! Servers compare host names case-insensitively, ignore the port and treat a trailing dot (the
//! fully qualified spelling) as the same name, so a route restricted to a host must match all
//! those spellings. Anything that is not a host name, an IPv4 address or a bracketed IPv6 address
//! (user info, escapes, spaces, empty labels, non-ASCII) is refused rather than matched as some
//! other host.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::Refusal;

/// DNS names are at most 253 characters (255 octets on the wire).
const MAX_NAME: usize = 253;

/// `raw` is `:authority` (HTTP/2) or `Host` (HTTP/1, which Envoy presents as `:authority`).
pub fn canonical_host(raw: &[u8]) -> Result<Cow<'_, str>, Refusal> {
    if raw.is_empty() {
        return Err(Refusal::HostMissing);
    }
    let name = strip_port(raw)?;
    if let Some(inside) = name.strip_prefix(b"[").and_then(|n| n.strip_suffix(b"]")) {
        let address = std::str::from_utf8(inside)
            .ok()
            .and_then(|a| a.parse::<Ipv6Addr>().ok())
            .ok_or(Refusal::HostInvalid)?;
        return Ok(Cow::Owned(format!("[{address}]")));
    }
    // Any number of trailing dots: `a.example..` reaches the same virtual host on servers that
    // strip dots, and matching more only costs the client a challenge.
    let end = name.iter().rposition(|&b| b != b'.').map_or(0, |i| i + 1);
    let name = &name[..end];
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .split(|&b| b == b'.')
            .all(|label| !label.is_empty() && label.iter().all(|&b| is_name_byte(b)));
    if !valid {
        return Err(Refusal::HostInvalid);
    }
    // Each byte is ASCII, so the text is valid UTF-8.
    let text = std::str::from_utf8(name).map_err(|_| Refusal::HostInvalid)?;
    // Dotted quads in their one spelling; `127.1` or `0x7f.0.0.1` stay names, matched as written.
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Ok(Cow::Owned(v4.to_string()));
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(Cow::Owned(text.to_ascii_lowercase()))
    } else {
        Ok(Cow::Borrowed(text))
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The host without `:port`; an empty port (`host:`) is allowed as RFC 3986 allows it.
fn strip_port(raw: &[u8]) -> Result<&[u8], Refusal> {
    let split = if raw.first() == Some(&b'[') {
        let close = raw
            .iter()
            .position(|&b| b == b']')
            .ok_or(Refusal::HostInvalid)?;
        match raw.get(close + 1) {
            None => return Ok(raw),
            Some(b':') => close + 1,
            Some(_) => return Err(Refusal::HostInvalid),
        }
    } else {
        match raw.iter().position(|&b| b == b':') {
            None => return Ok(raw),
            Some(colon) => colon,
        }
    };
    let port = &raw[split + 1..];
    if port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return Err(Refusal::HostInvalid);
    }
    Ok(&raw[..split])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_host_are_one_host() {
        for raw in [
            "api.example.com",
            "API.EXAMPLE.COM",
            "api.example.com.",
            "API.EXAMPLE.COM.",
            "api.example.com.:80",
            "api.example.com:8080",
            "api.example.com:",
            "api.example.com..",
        ] {
            assert_eq!(
                canonical_host(raw.as_bytes()).as_deref(),
                Ok("api.example.com"),
                "{raw}"
            );
        }
    }

    #[test]
    fn addresses_have_one_spelling() {
        assert_eq!(canonical_host(b"[::1]:443").as_deref(), Ok("[::1]"));
        assert_eq!(canonical_host(b"[0:0:0:0:0:0:0:1]").as_deref(), Ok("[::1]"));
        assert_eq!(
            canonical_host(b"[2001:DB8::1]").as_deref(),
            Ok("[2001:db8::1]")
        );
        assert_eq!(
            canonical_host(b"127.0.0.1:10000").as_deref(),
            Ok("127.0.0.1")
        );
    }

    #[test]
    fn what_is_not_a_host_is_refused() {
        for raw in [
            &b"user@api.example.com"[..],
            b"api.example.com:http",
            b"api.example.com:123456",
            b"api..example.com",
            b".api.example.com",
            b".",
            b"api%2eexample.com",
            b"api example.com",
            b"api.example.com\xff",
            b"caf\xc3\xa9.example",
            b"[::1",
            b"[::1]x",
            b"[nope]",
            b"a:b:c",
            b"*",
        ] {
            assert_eq!(
                canonical_host(raw),
                Err(Refusal::HostInvalid),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(canonical_host(b""), Err(Refusal::HostMissing));
        let long = format!("{}.com", "a.".repeat(130));
        assert_eq!(canonical_host(long.as_bytes()), Err(Refusal::HostInvalid));
    }
}
