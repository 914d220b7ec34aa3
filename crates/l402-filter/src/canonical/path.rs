//! The request path as upstreams read it.
//!
//! A paywall that matches the raw `:path` can be walked around: `//weather/x`, `/./weather/x`,
//! `/%77eather/x`, `/weather;x/x` or `/x/../weather/x` miss a `/weather/` prefix while the upstream
//! serves the paid resource. So the path is first brought into one canonical form (RFC 3986 §6.2.2:
//! escapes of characters that may stand for themselves decoded, hex digits upper-case, dot segments
//! removed; repeated slashes merged as most servers do), and anything that cannot be read one safe
//! way is refused.
//!
//! Servers do not all read a path the same way, so where they disagree the filter keeps every
//! reading (see [`CanonicalPath::readings`]) and the route decision takes all of them into account:
//! - `\`: a separator for IIS and some frameworks, a plain character elsewhere;
//! - `;params`: stripped from each segment before dot removal by Tomcat, Jetty and Spring
//!   (`/weather;x/today`, `/..;/premium`), part of the segment elsewhere;
//! - dot segments: resolved by most servers, routed as literal segments by routers that do not
//!   normalise (`/weather/..` matching `/weather/:id`);
//! - escaped `/` and `\` (`%2F`, `%5C`), when allowed at all: decoded into separators by servers
//!   that decode before routing (WSGI, Go's `URL.Path`), kept by others.
//!
//! Refused: bytes outside visible ASCII (a raw non-UTF-8 or control byte, NUL, a space), a `%`
//! without two hex digits, an escaped control byte, escapes that do not decode to UTF-8 (overlong
//! `%C0%AE` is `.` to some decoders), an escaped `%` followed by two hex digits (double encoding:
//! a server that decodes twice reads a different path), a fragment, and escaped slashes unless
//! the configuration allows them.

use std::borrow::Cow;

use super::Refusal;

/// What to do with `%2F` and `%5C` in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EscapedSlashes {
    /// Refuse the request (400): the only choice that cannot be read two ways.
    #[default]
    Reject,
    /// Accept it, and match both the decoded and the kept reading.
    Allow,
}

/// A path that passed the checks: its strict canonical form and every other reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath<'a> {
    readings: Vec<Cow<'a, str>>,
    upper_case: bool,
}

impl<'a> CanonicalPath<'a> {
    /// The RFC 3986 reading (dot segments removed, slashes merged, `\` and `;` ordinary
    /// characters): what the callout carries and what a strict upstream sees.
    pub fn strict(&self) -> &str {
        &self.readings[0]
    }

    /// Every distinct reading, the strict one first.
    pub fn readings(&self) -> impl Iterator<Item = &str> {
        self.readings.iter().map(|r| r.as_ref())
    }

    /// Whether the path holds an upper-case letter (not counting the hex digits of escapes):
    /// only then can a case-insensitive router read it differently from a case-sensitive one.
    pub fn has_upper_case(&self) -> bool {
        self.upper_case
    }
}

/// Characters a canonical path writes as themselves: unreserved, sub-delims except `;`, `:`, `@`.
/// An escape of one of them is decoded, as every server that decodes anything decodes them.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

/// One unit of the path after escapes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Slash,
    Backslash,
    Semicolon,
    /// A character written as itself.
    Plain(u8),
    /// A byte written as `%XX`.
    Escaped(u8),
    /// `%2F` or `%5C`, when allowed.
    EscapedSlash(u8),
}

/// The path part of `:path` (before `?`), or a refusal. `max_bytes` bounds the path part only:
/// the query string is never used for matching and never leaves the filter.
pub fn canonical_path(
    raw: &[u8],
    escaped_slashes: EscapedSlashes,
    max_bytes: usize,
) -> Result<CanonicalPath<'_>, Refusal> {
    let path = match raw.iter().position(|&b| b == b'?') {
        Some(end) => &raw[..end],
        None => raw,
    };
    if path.len() > max_bytes {
        return Err(Refusal::PathTooLong);
    }
    if path.first() != Some(&b'/') {
        return Err(if path.is_empty() {
            Refusal::PathMissing
        } else {
            Refusal::PathNotOriginForm
        });
    }
    if let Some(text) = already_canonical(path) {
        return Ok(CanonicalPath {
            readings: vec![Cow::Borrowed(text)],
            upper_case: path.iter().any(u8::is_ascii_uppercase),
        });
    }
    let tokens = tokenize(&path[1..], escaped_slashes)?;
    if !decodes_to_utf8(&tokens) {
        return Err(Refusal::PathEscapesNotUtf8);
    }
    Ok(CanonicalPath {
        readings: readings(&tokens).into_iter().map(Cow::Owned).collect(),
        upper_case: tokens
            .iter()
            .any(|t| matches!(t, Token::Plain(b) if b.is_ascii_uppercase())),
    })
}

/// The common case, without allocating: only plain characters and single slashes, no dot
/// segments. Such a path is its own canonical form and has one reading.
fn already_canonical(path: &[u8]) -> Option<&str> {
    let mut segment_start = 1;
    for end in 1..=path.len() {
        if end < path.len() && path[end] != b'/' {
            if !is_plain(path[end]) {
                return None;
            }
            continue;
        }
        match &path[segment_start..end] {
            // An empty segment is fine only last: a trailing slash, or the path "/".
            b"" if end < path.len() => return None,
            b"." | b".." => return None,
            _ => segment_start = end + 1,
        }
    }
    std::str::from_utf8(path).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn escape_at(path: &[u8], i: usize) -> Option<u8> {
    let hi = hex_value(*path.get(i + 1)?)?;
    let lo = hex_value(*path.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

/// Reads the path after its leading `/` into tokens, refusing what cannot be read safely.
fn tokenize(path: &[u8], escaped_slashes: EscapedSlashes) -> Result<Vec<Token>, Refusal> {
    let mut tokens = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        let token = match b {
            b'/' => Token::Slash,
            b'\\' => Token::Backslash,
            b';' => Token::Semicolon,
            b'#' => return Err(Refusal::PathFragment),
            b'%' => {
                let decoded = escape_at(path, i).ok_or(Refusal::PathBadEscape)?;
                i += 2;
                match decoded {
                    0x00..=0x1f | 0x7f => return Err(Refusal::PathEscapedControl),
                    b'/' | b'\\' => match escaped_slashes {
                        EscapedSlashes::Reject => return Err(Refusal::PathEscapedSlash),
                        EscapedSlashes::Allow => Token::EscapedSlash(decoded),
                    },
                    b'%' if escape_at(path, i).is_some() => return Err(Refusal::PathDoubleEncoded),
                    c if is_plain(c) => Token::Plain(c),
                    c => Token::Escaped(c),
                }
            }
            0x21..=0x7e if is_plain(b) => Token::Plain(b),
            // Visible characters that may not appear raw (`"`, `<`, `|`, `{`, …): the same byte
            // as its escape, so both spellings have one canonical form.
            0x21..=0x7e => Token::Escaped(b),
            _ => return Err(Refusal::PathNotVisibleAscii),
        };
        tokens.push(token);
        i += 1;
    }
    Ok(tokens)
}

/// Escaped bytes above 0x7F must spell UTF-8: servers decode other bytes differently (as
/// Latin-1, as U+FFFD, or, for overlong forms such as `%C0%AE`, as the ASCII they mimic).
fn decodes_to_utf8(tokens: &[Token]) -> bool {
    let mut run = Vec::new();
    for token in tokens.iter().chain(std::iter::once(&Token::Slash)) {
        match token {
            Token::Escaped(b) if *b >= 0x80 => run.push(*b),
            _ if run.is_empty() => {}
            _ => {
                if std::str::from_utf8(&run).is_err() {
                    return false;
                }
                run.clear();
            }
        }
    }
    true
}

/// The readings servers disagree on. Each flag is varied only when the path holds what it
/// concerns, so an ordinary path has one reading.
#[derive(Debug, Clone, Copy)]
struct Flags {
    backslash_separates: bool,
    strip_parameters: bool,
    decode_escaped_slashes: bool,
}

fn readings(tokens: &[Token]) -> Vec<String> {
    let has = |f: fn(&Token) -> bool| tokens.iter().any(f);
    let both = |present: bool| {
        if present {
            &[false, true][..]
        } else {
            &[false][..]
        }
    };
    let backslash = both(has(|t| *t == Token::Backslash));
    let semicolon = both(has(|t| *t == Token::Semicolon));
    let escaped = both(has(|t| matches!(t, Token::EscapedSlash(_))));

    let mut out: Vec<String> = Vec::new();
    let mut add = |reading: String| {
        if !out.contains(&reading) {
            out.push(reading);
        }
    };
    // The first combination (everything false) with dots resolved is the strict reading.
    for &decode_escaped_slashes in escaped {
        for &strip_parameters in semicolon {
            for &backslash_separates in backslash {
                let flags = Flags {
                    backslash_separates,
                    strip_parameters,
                    decode_escaped_slashes,
                };
                let segments = segments(tokens, flags);
                add(join(&segments, true));
                if segments.iter().any(|s| s == "." || s == "..") {
                    add(join(&segments, false));
                }
            }
        }
    }
    out
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// The segments after the leading `/`, escapes written canonically.
fn segments(tokens: &[Token], flags: Flags) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut in_parameters = false;
    for &token in tokens {
        let separator = match token {
            Token::Slash => true,
            Token::Backslash => flags.backslash_separates,
            Token::EscapedSlash(_) => flags.decode_escaped_slashes,
            _ => false,
        };
        if separator {
            segments.push(std::mem::take(&mut current));
            in_parameters = false;
            continue;
        }
        if token == Token::Semicolon && flags.strip_parameters {
            in_parameters = true;
        }
        if in_parameters {
            continue;
        }
        match token {
            Token::Semicolon => current.push(';'),
            Token::Plain(b) => current.push(char::from(b)),
            Token::Backslash => push_escaped(&mut current, b'\\'),
            Token::Escaped(b) | Token::EscapedSlash(b) => push_escaped(&mut current, b),
            Token::Slash => {}
        }
    }
    segments.push(current);
    segments
}

/// `/`-joined segments with empty ones merged; with `resolve_dots`, RFC 3986 §5.2.4 dot-segment
/// removal (a final `.` or `..` leaves a trailing slash, `..` never climbs above the root).
fn join(segments: &[String], resolve_dots: bool) -> String {
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    for segment in segments {
        match segment.as_str() {
            "" => {}
            "." if resolve_dots => {}
            ".." if resolve_dots => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let trailing = match segments.last().map(String::as_str) {
        Some("") => true,
        Some("." | "..") => resolve_dots,
        _ => false,
    };
    let mut path = String::with_capacity(segments.iter().map(|s| s.len() + 1).sum::<usize>() + 1);
    for segment in &kept {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() || trailing {
        path.push('/');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings_of(raw: &str) -> Vec<String> {
        canonical_path(raw.as_bytes(), EscapedSlashes::Allow, 4096)
            .unwrap()
            .readings()
            .map(str::to_string)
            .collect()
    }

    fn strict(raw: &[u8]) -> Result<String, Refusal> {
        canonical_path(raw, EscapedSlashes::Reject, 4096).map(|p| p.strict().to_string())
    }

    #[test]
    fn ordinary_paths_are_their_own_single_reading() {
        for path in [
            "/",
            "/weather/today",
            "/weather/",
            "/a.b/c~d/e-f_g",
            "/v1/x:batch",
            "/@me",
        ] {
            assert_eq!(readings_of(path), vec![path.to_string()], "{path}");
            let parsed = canonical_path(path.as_bytes(), EscapedSlashes::Reject, 4096).unwrap();
            assert!(
                matches!(parsed.readings[0], Cow::Borrowed(_)),
                "{path} allocated"
            );
        }
    }

    #[test]
    fn the_query_string_is_not_part_of_the_path() {
        assert_eq!(
            strict(b"/weather/today?x=/../premium&y=%zz").unwrap(),
            "/weather/today"
        );
        assert_eq!(strict(b"/?").unwrap(), "/");
    }

    #[test]
    fn rfc_3986_normalisation() {
        let cases: &[(&[u8], &str)] = &[
            (b"//weather/today", "/weather/today"),
            (b"/weather//today", "/weather/today"),
            (b"/./weather/today", "/weather/today"),
            (b"/x/../weather/today", "/weather/today"),
            (b"/../../weather", "/weather"),
            (b"/weather/.", "/weather/"),
            (b"/weather/today/..", "/weather/"),
            (b"/%2e%2e/weather/today", "/weather/today"),
            (b"/%2E/weather", "/weather"),
            (b"/%77eather/today", "/weather/today"),
            (b"/%57EATHER", "/WEATHER"),
            (b"/caf%c3%a9", "/caf%C3%A9"),
            (b"/a%20b", "/a%20b"),
            (b"/a|b", "/a%7Cb"),
            (b"/a%7cb", "/a%7Cb"),
            (b"/x%3Abatch", "/x:batch"),
            (b"/100%25", "/100%25"),
            (b"/a%3Fb", "/a%3Fb"),
            (b"/a%3bb", "/a%3Bb"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                strict(raw).as_deref(),
                Ok(*want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn disputed_spellings_keep_every_reading() {
        assert_eq!(
            readings_of("/weather;x/today"),
            ["/weather;x/today", "/weather/today"]
        );
        assert_eq!(
            readings_of("/weather/..;/premium/x"),
            [
                "/weather/..;/premium/x",
                "/premium/x",
                "/weather/../premium/x"
            ]
        );
        assert_eq!(
            readings_of("/weather\\today"),
            ["/weather%5Ctoday", "/weather/today"]
        );
        assert_eq!(
            readings_of("/weather\\..\\premium"),
            ["/weather%5C..%5Cpremium", "/premium", "/weather/../premium"]
        );
        assert_eq!(
            readings_of("/weather%2ftoday"),
            ["/weather%2Ftoday", "/weather/today"]
        );
        assert_eq!(
            readings_of("/weather/../premium/x"),
            ["/premium/x", "/weather/../premium/x"]
        );
        assert_eq!(readings_of("/weather/.."), ["/", "/weather/.."]);
    }

    #[test]
    fn unreadable_paths_are_refused() {
        let cases: &[(&[u8], Refusal)] = &[
            (b"/weather/\xff", Refusal::PathNotVisibleAscii),
            (b"/weather/\x00", Refusal::PathNotVisibleAscii),
            (b"/weather/ today", Refusal::PathNotVisibleAscii),
            (b"/weather/\x7f", Refusal::PathNotVisibleAscii),
            (b"/weather/caf\xc3\xa9", Refusal::PathNotVisibleAscii),
            (b"/weather/%c0%ae%c0%ae/x", Refusal::PathEscapesNotUtf8),
            (b"/weather/%e9t%e9", Refusal::PathEscapesNotUtf8),
            (b"/weather/%C3", Refusal::PathEscapesNotUtf8),
            (b"/weather/%", Refusal::PathBadEscape),
            (b"/weather/%4", Refusal::PathBadEscape),
            (b"/weather/%zz", Refusal::PathBadEscape),
            (b"/weather/%00", Refusal::PathEscapedControl),
            (b"/weather/%0a", Refusal::PathEscapedControl),
            (b"/weather%2ftoday", Refusal::PathEscapedSlash),
            (b"/weather%5Ctoday", Refusal::PathEscapedSlash),
            (b"/weather%252ftoday", Refusal::PathDoubleEncoded),
            (b"/weather/today#x", Refusal::PathFragment),
            (b"weather/today", Refusal::PathNotOriginForm),
            (b"*", Refusal::PathNotOriginForm),
            (b"", Refusal::PathMissing),
            (b"?x", Refusal::PathMissing),
        ];
        for (raw, want) in cases {
            assert_eq!(strict(raw), Err(*want), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn length_is_checked_on_the_path_part_only() {
        let long = format!("/{}", "a".repeat(100));
        assert_eq!(
            canonical_path(long.as_bytes(), EscapedSlashes::Reject, 100),
            Err(Refusal::PathTooLong)
        );
        let query = format!("/a?{}", "q".repeat(10_000));
        assert!(canonical_path(query.as_bytes(), EscapedSlashes::Reject, 100).is_ok());
    }

    #[test]
    fn upper_case_letters_are_reported_but_not_hex_digits() {
        let upper = |p: &str| {
            canonical_path(p.as_bytes(), EscapedSlashes::Reject, 99)
                .unwrap()
                .has_upper_case()
        };
        assert!(upper("/Weather"));
        assert!(upper("//%57eather"));
        assert!(!upper("/weather/%c3%a9"));
        assert!(!upper("/weather"));
    }
}
