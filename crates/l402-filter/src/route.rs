//! One route: which requests it covers, and whether they are paid for and by which service.

use crate::canonical::RequestLine;

/// How a route matches the canonical path (without its query string).
#[derive(Debug)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// The pattern as written, a case-insensitive copy for [`Mode::Folded`], and the literal
    /// text every match starts with (see [`literal_prefix`]).
    Regex {
        exact: regex_lite::Regex,
        folded: regex_lite::Regex,
        literal: String,
    },
}

/// The literal text a path must start with to match `pattern`: the plain characters after a
/// leading `^`, up to the first one with a special meaning (and without the last one if a
/// quantifier follows it). Empty when nothing is certain (no anchor, an alternation). Most
/// regex routes are anchored at a literal directory (`^/v[0-9]+/…` is `/v`), so a path outside
/// it is turned away with a byte comparison instead of running the automaton: with many regex
/// routes, most of them cost nothing for a given path.
pub fn literal_prefix(pattern: &str) -> String {
    let Some(rest) = pattern.strip_prefix('^') else {
        return String::new();
    };
    if pattern.contains('|') {
        return String::new();
    }
    let plain =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '~' | ',' | '=');
    let mut literal: String = rest.chars().take_while(|&c| plain(c)).collect();
    if matches!(rest[literal.len()..].chars().next(), Some('?' | '*' | '{')) {
        literal.pop();
    }
    literal
}

/// How a path reading is compared with the patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Byte for byte.
    Exact,
    /// As routers that ignore letter case and a trailing slash compare (Express' defaults, IIS,
    /// ASP.NET): `/WEATHER` is under `/weather/`, `/premium/` is `/premium`.
    Folded,
}

/// One way an upstream may read the request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading<'a> {
    pub path: &'a str,
    pub host: &'a str,
    pub method: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Passes without a token.
    Free,
    /// Needs a token for `service` granting every one of `capabilities`.
    Paid {
        service: String,
        capabilities: Vec<String>,
    },
}

#[derive(Debug)]
pub struct Route {
    pub path: PathMatch,
    /// Upper-case; empty matches every method.
    pub methods: Vec<String>,
    /// Canonical (see [`crate::canonical::canonical_host`]); empty matches every host.
    pub hosts: Vec<String>,
    /// The upstream is known to read paths strictly (RFC 3986, case-sensitive, `\` and `;`
    /// ordinary characters): the route is matched on the strict reading only, byte for byte.
    pub strict: bool,
    pub action: RouteAction,
}

impl Route {
    /// Whether the route covers the request as `reading` reads it, compared by `mode`.
    pub fn matches(&self, line: &RequestLine<'_>, reading: Reading<'_>, mode: Mode) -> bool {
        let (path, mode) = if self.strict {
            (line.path.strict(), Mode::Exact)
        } else {
            (reading.path, mode)
        };
        self.path.matches(path, mode)
            && (self.methods.is_empty()
                || self
                    .methods
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(reading.method)))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h == reading.host))
    }
}

impl PathMatch {
    pub fn matches(&self, path: &str, mode: Mode) -> bool {
        match (self, mode) {
            (Self::Prefix(prefix), Mode::Exact) => path.starts_with(prefix.as_str()),
            (Self::Exact(exact), Mode::Exact) => path == exact,
            (Self::Regex { exact, literal, .. }, Mode::Exact) => {
                path.starts_with(literal.as_str()) && exact.is_match(path)
            }
            (Self::Prefix(prefix), Mode::Folded) => {
                starts_with_folded(path, prefix) || path.eq_ignore_ascii_case(without_slash(prefix))
            }
            (Self::Exact(exact), Mode::Folded) => {
                without_slash(path).eq_ignore_ascii_case(without_slash(exact))
            }
            (
                Self::Regex {
                    folded, literal, ..
                },
                Mode::Folded,
            ) => starts_with_folded(path, literal) && folded.is_match(path),
        }
    }

    /// A regex with no literal directory to turn paths away by: its automaton runs on every
    /// path (`/` alone turns none away).
    pub fn runs_on_every_path(&self) -> bool {
        matches!(self, Self::Regex { literal, .. } if literal.len() <= 1)
    }

    /// Whether the pattern holds an upper-case letter (conservatively, for regexes: any in
    /// the source), which makes case-insensitive matching differ even for a lower-case path.
    pub fn has_upper_case(&self) -> bool {
        let text = match self {
            Self::Prefix(p) | Self::Exact(p) => p.as_str(),
            Self::Regex { exact, .. } => exact.as_str(),
        };
        text.bytes().any(|b| b.is_ascii_uppercase())
    }

    /// The spelling a folded match accepts besides the pattern itself: without its trailing
    /// slash (`/premium/` also covers `/premium`). `None` for regexes.
    pub fn slash_variant(&self) -> Option<&str> {
        match self {
            Self::Prefix(p) | Self::Exact(p) => Some(without_slash(p)),
            Self::Regex { .. } => None,
        }
    }
}

fn starts_with_folded(path: &str, prefix: &str) -> bool {
    path.len() >= prefix.len()
        && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// `/a/` is `/a`; `/` stays `/`.
fn without_slash(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex(pattern: &str) -> PathMatch {
        PathMatch::Regex {
            exact: regex_lite::Regex::new(pattern).unwrap(),
            folded: regex_lite::Regex::new(&format!("(?i){pattern}")).unwrap(),
            literal: literal_prefix(pattern),
        }
    }

    #[test]
    fn exact_mode_is_byte_for_byte() {
        let prefix = PathMatch::Prefix("/weather/".into());
        assert!(prefix.matches("/weather/today", Mode::Exact));
        assert!(!prefix.matches("/Weather/today", Mode::Exact));
        assert!(!prefix.matches("/weather", Mode::Exact));
        let exact = PathMatch::Exact("/premium".into());
        assert!(exact.matches("/premium", Mode::Exact));
        assert!(!exact.matches("/premium/", Mode::Exact));
    }

    #[test]
    fn folded_mode_ignores_case_and_a_trailing_slash() {
        let prefix = PathMatch::Prefix("/weather/".into());
        for path in ["/WEATHER/today", "/Weather/", "/weather", "/WEATHER"] {
            assert!(prefix.matches(path, Mode::Folded), "{path}");
        }
        assert!(!prefix.matches("/weathers", Mode::Folded));
        let exact = PathMatch::Exact("/premium".into());
        assert!(exact.matches("/PREMIUM/", Mode::Folded));
        assert!(!exact.matches("/premium/x", Mode::Folded));
        let root = PathMatch::Exact("/".into());
        assert!(root.matches("/", Mode::Folded));
        let re = regex("^/v[0-9]+/weather");
        assert!(re.matches("/V2/WEATHER", Mode::Folded));
        assert!(!re.matches("/V2/WEATHER", Mode::Exact));
    }

    #[test]
    fn upper_case_patterns_and_slash_variants() {
        assert!(PathMatch::Prefix("/Api/".into()).has_upper_case());
        assert!(!PathMatch::Prefix("/api/".into()).has_upper_case());
        assert!(regex("^/api/\\S+").has_upper_case());
        assert_eq!(
            PathMatch::Prefix("/api/".into()).slash_variant(),
            Some("/api")
        );
        assert_eq!(PathMatch::Exact("/".into()).slash_variant(), Some("/"));
    }

    #[test]
    fn a_regex_is_run_only_on_paths_with_its_literal_prefix() {
        for (pattern, literal) in [
            ("^/v[0-9]+/items", "/v"),
            ("^/api/items/[a-z]+$", "/api/items/"),
            ("^/api/itemsx?/", "/api/items"),
            ("^/api/item{2}", "/api/ite"),
            ("^/a.b", "/a"),
            ("/api/", ""),
            ("^/a|^/b", ""),
            ("(?i)^/api", ""),
            ("^\\/x", ""),
        ] {
            assert_eq!(literal_prefix(pattern), literal, "{pattern}");
        }
        // Whatever the prefix says, the outcome is the automaton's.
        for pattern in ["^/api/itemsx?/", "^/v[0-9]+/items", "^/api/item{2}s"] {
            let re = regex(pattern);
            let full = regex_lite::Regex::new(pattern).unwrap();
            for path in [
                "/api/items/",
                "/api/itemsx/",
                "/v2/items",
                "/api/itemms",
                "/api/iteMMs",
                "/x",
            ] {
                assert_eq!(
                    re.matches(path, Mode::Exact),
                    full.is_match(path),
                    "{pattern} {path}"
                );
            }
        }
        assert!(regex("^/api/items/").matches("/API/Items/x", Mode::Folded));
    }
}
