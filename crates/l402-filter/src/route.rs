//! One route: which requests it covers, and whether they are paid for and by which service.

use crate::canonical::RequestLine;

/// How a route matches the canonical path (without its query string).
#[derive(Debug)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// The pattern as written, and a case-insensitive copy for [`Mode::Folded`].
    Regex {
        exact: regex_lite::Regex,
        folded: regex_lite::Regex,
    },
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
            (Self::Regex { exact, .. }, Mode::Exact) => exact.is_match(path),
            (Self::Prefix(prefix), Mode::Folded) => {
                starts_with_folded(path, prefix) || path.eq_ignore_ascii_case(without_slash(prefix))
            }
            (Self::Exact(exact), Mode::Folded) => {
                without_slash(path).eq_ignore_ascii_case(without_slash(exact))
            }
            (Self::Regex { folded, .. }, Mode::Folded) => folded.is_match(path),
        }
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
}
