//! The request line (path, host, method) read once, the way upstreams read it, before any route
//! is matched. What cannot be read safely is a [`Refusal`]: never "no route matched".

mod host;
mod path;

use std::borrow::Cow;

pub use host::canonical_host;
pub use path::{canonical_path, CanonicalPath, EscapedSlashes};

use crate::host::Headers;

/// Why a request line was refused. `reason()` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PathMissing,
    PathNotOriginForm,
    PathTooLong,
    PathNotVisibleAscii,
    PathBadEscape,
    PathEscapedControl,
    PathEscapedSlash,
    PathDoubleEncoded,
    PathFragment,
    HostMissing,
    HostInvalid,
    MethodInvalid,
    /// The readings of the path lead to different paid routes: no one token can be asked for.
    Ambiguous,
}

impl Refusal {
    pub const ALL: [Refusal; 13] = [
        Self::PathMissing,
        Self::PathNotOriginForm,
        Self::PathTooLong,
        Self::PathNotVisibleAscii,
        Self::PathBadEscape,
        Self::PathEscapedControl,
        Self::PathEscapedSlash,
        Self::PathDoubleEncoded,
        Self::PathFragment,
        Self::HostMissing,
        Self::HostInvalid,
        Self::MethodInvalid,
        Self::Ambiguous,
    ];

    pub fn status(self) -> u32 {
        match self {
            Self::PathTooLong => 414,
            _ => 400,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::PathMissing => "path_missing",
            Self::PathNotOriginForm => "path_not_origin_form",
            Self::PathTooLong => "path_too_long",
            Self::PathNotVisibleAscii => "path_not_visible_ascii",
            Self::PathBadEscape => "path_bad_escape",
            Self::PathEscapedControl => "path_escaped_control",
            Self::PathEscapedSlash => "path_escaped_slash",
            Self::PathDoubleEncoded => "path_double_encoded",
            Self::PathFragment => "path_fragment",
            Self::HostMissing => "host_missing",
            Self::HostInvalid => "host_invalid",
            Self::MethodInvalid => "method_invalid",
            Self::Ambiguous => "ambiguous_path",
        }
    }

    /// Told to the client: what is wrong with its request, in terms it can fix.
    pub fn message(self) -> &'static str {
        match self {
            Self::PathMissing => "the request has no path",
            Self::PathNotOriginForm => "the path must start with `/`",
            Self::PathTooLong => "the path is too long",
            Self::PathNotVisibleAscii => {
                "the path holds a byte that is not visible ASCII; percent-encode it"
            }
            Self::PathBadEscape => "the path holds a `%` that is not followed by two hex digits",
            Self::PathEscapedControl => "the path holds an escaped control character",
            Self::PathEscapedSlash => "the path holds an escaped slash (%2F or %5C)",
            Self::PathDoubleEncoded => "the path is percent-encoded twice (%25 before hex digits)",
            Self::PathFragment => "the path holds a fragment (`#`)",
            Self::HostMissing => "the request has no host",
            Self::HostInvalid => "the host is not a host name or IP address",
            Self::MethodInvalid => "the method is not an HTTP token",
            Self::Ambiguous => "the path can be read as more than one paid resource",
        }
    }
}

/// How the filter reads paths (from the plugin configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    pub escaped_slashes: EscapedSlashes,
    pub max_path_bytes: usize,
}

/// Headers some frameworks take as the real method of a POST (Express' method-override,
/// Rails, Spring, ASP.NET): a route restricted by method is also tried with their value.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Longest method accepted; real ones are short, and it travels in the callout.
const MAX_METHOD: usize = 32;

/// The request line, canonical.
#[derive(Debug)]
pub struct RequestLine<'a> {
    pub path: CanonicalPath<'a>,
    pub host: Cow<'a, str>,
    /// The method first, then what an upstream may take it for: GET for HEAD (frameworks run
    /// the GET handler), and any method-override header's value.
    pub methods: Vec<&'a str>,
}

impl<'a> RequestLine<'a> {
    pub fn read(headers: &'a Headers, rules: &PathRules) -> Result<Self, Refusal> {
        let path = canonical_path(
            header(headers, ":path").unwrap_or_default(),
            rules.escaped_slashes,
            rules.max_path_bytes,
        )?;
        let authority = header(headers, ":authority")
            .filter(|a| !a.is_empty())
            .or_else(|| header(headers, "host"))
            .unwrap_or_default();
        let host = canonical_host(authority)?;
        let method = header(headers, ":method")
            .and_then(method_token)
            .ok_or(Refusal::MethodInvalid)?;
        let mut methods = vec![method];
        if method.eq_ignore_ascii_case("HEAD") {
            methods.push("GET");
        }
        for name in METHOD_OVERRIDES {
            if let Some(other) = header(headers, name).and_then(method_token) {
                methods.push(other);
            }
        }
        Ok(Self {
            path,
            host,
            methods,
        })
    }

    pub fn method(&self) -> &str {
        self.methods[0]
    }
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// An RFC 9110 token of at most [`MAX_METHOD`] bytes.
fn method_token(value: &[u8]) -> Option<&str> {
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if value.is_empty() || value.len() > MAX_METHOD || !value.iter().all(tchar) {
        return None;
    }
    std::str::from_utf8(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: PathRules = PathRules {
        escaped_slashes: EscapedSlashes::Reject,
        max_path_bytes: 4096,
    };

    fn headers(pairs: &[(&str, &[u8])]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn reads_path_host_and_methods() {
        let h = headers(&[
            (":method", b"HEAD"),
            (":path", b"//weather/./today?x"),
            (":authority", b"API.example.com.:443"),
            ("x-http-method-override", b"DELETE"),
        ]);
        let line = RequestLine::read(&h, &RULES).unwrap();
        assert_eq!(line.path.strict(), "/weather/today");
        assert_eq!(line.host, "api.example.com");
        assert_eq!(line.methods, ["HEAD", "GET", "DELETE"]);
        assert_eq!(line.method(), "HEAD");
    }

    #[test]
    fn host_header_is_used_without_authority() {
        let h = headers(&[(":method", b"GET"), (":path", b"/"), ("host", b"a.example")]);
        assert_eq!(RequestLine::read(&h, &RULES).unwrap().host, "a.example");
    }

    #[test]
    fn unreadable_parts_are_refusals() {
        type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], Refusal);
        let cases: &[Case] = &[
            (
                b"GET",
                b"/weather/\xff",
                b"a.example",
                Refusal::PathNotVisibleAscii,
            ),
            (b"GET", b"/weather", b"", Refusal::HostMissing),
            (b"GET", b"/weather", b"a.example\xff", Refusal::HostInvalid),
            (b"G\xffT", b"/weather", b"a.example", Refusal::MethodInvalid),
            (b"GET /", b"/weather", b"a.example", Refusal::MethodInvalid),
        ];
        for (method, path, host, want) in cases {
            let h = headers(&[(":method", method), (":path", path), (":authority", host)]);
            assert_eq!(RequestLine::read(&h, &RULES).unwrap_err(), *want);
        }
        let h = headers(&[(":method", b"GET"), (":authority", b"a.example")]);
        assert_eq!(
            RequestLine::read(&h, &RULES).unwrap_err(),
            Refusal::PathMissing
        );
    }

    #[test]
    fn invalid_override_values_are_ignored() {
        let h = headers(&[
            (":method", b"POST"),
            (":path", b"/"),
            (":authority", b"a.example"),
            ("x-http-method", b"G E T"),
        ]);
        assert_eq!(RequestLine::read(&h, &RULES).unwrap().methods, ["POST"]);
    }

    #[test]
    fn every_refusal_has_a_distinct_label() {
        let mut labels: Vec<_> = Refusal::ALL.iter().map(|r| r.reason()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Refusal::ALL.len());
    }
}
