//! The client address Envoy reports (`source.address`), as the invoice service's per-client limit
//! wants it: the IP without the port.

/// `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1`; a bare address stays as it is. `None` for
/// what is not text.
pub fn ip_of(address: &[u8]) -> Option<String> {
    let address = std::str::from_utf8(address).ok()?.trim();
    if address.is_empty() {
        return None;
    }
    let ip = match address.rsplit_once(':') {
        // IPv4 with a port, or a bracketed IPv6 with a port: what follows the last colon is digits
        // and what precedes it is not a bare IPv6 address (which holds colons of its own).
        Some((ip, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!ip.contains(':') || ip.starts_with('[')) =>
        {
            ip
        }
        _ => address,
    };
    Some(ip.trim_start_matches('[').trim_end_matches(']').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_their_port() {
        assert_eq!(ip_of(b"203.0.113.9:5555").as_deref(), Some("203.0.113.9"));
        assert_eq!(ip_of(b"[2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_of(b"203.0.113.9").as_deref(), Some("203.0.113.9"));
        assert_eq!(ip_of(b"2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_of(b"::1").as_deref(), Some("::1"));
        assert_eq!(ip_of(b"1.2.3.4:0").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip_of(b""), None);
        assert_eq!(ip_of(b"\xff:1"), None);
    }
}
