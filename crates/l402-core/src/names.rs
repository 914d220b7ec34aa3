//! What service and capability names may be. Both end up inside caveats (`services=<name>:0`,
//! `<name>_capabilities=a,b`, `<name>_valid_until=…`), so the characters that structure caveats
//! are kept out; and the filter's routes may only name what the invoice service can sell, so both
//! configurations check names by this one rule.

/// Longest name: caveats stay short, and nothing real needs more.
pub const MAX_NAME_BYTES: usize = 64;

/// The rule, as configuration errors state it.
pub const NAME_RULE: &str = "must be 1-64 characters of A-Z a-z 0-9 . _ -";

/// Whether `name` may name a service or a capability.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_break_a_caveat() {
        for good in ["weather", "news-v2", "a.b_c", &"x".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "a=b",
            "a,b",
            "a:b",
            "read:all",
            "a b",
            "caf\u{e9}",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
