//! The request line (path, host, method) read once, the way upstreams read it, before any route
//! is matched. What cannot be read safely is a [`Refusal`]: never "no route matched".

mod host;
mod path;

use std::borrow::Cow;

pub use host::canonical_host;
pub use path::{canonical_path, CanonicalPath, EscapedSlashes};

use crate::host::{header, Headers};
use crate::labels::labelled;

labelled! {
    /// Why a request line was refused. `label()` names its counter.
    pub enum Refusal {
        PathMissing => "path_missing",
        PathNotOriginForm => "path_not_origin_form",
        PathTooLong => "path_too_long",
        PathNotVisibleAscii => "path_not_visible_ascii",
        PathBadEscape => "path_bad_escape",
        PathEscapedControl => "path_escaped_control",
        PathEscapesNotUtf8 => "path_escapes_not_utf8",
        PathEscapedSlash => "path_escaped_slash",
        PathDoubleEncoded => "path_double_encoded",
        PathFragment => "path_fragment",
        HostMissing => "host_missing",
        HostInvalid => "host_invalid",
        MethodInvalid => "method_invalid",
        /// The readings of the path lead to different paid routes: no one token can be asked for.
        Ambiguous => "ambiguous_path",
    }
}

impl Refusal {
    pub fn status(self) -> u32 {
        match self {
            Self::PathTooLong => 414,
            _ => 400,
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
            Self::PathEscapesNotUtf8 => "the path's %-escapes do not decode to UTF-8",
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

/// Headers some upstreams take as the real path (Symfony and Zend, IIS URL Rewrite): `GET /free`
/// with `X-Original-URL: /premium/x` serves the premium resource there.
const PATH_OVERRIDES: [&str; 2] = ["x-original-url", "x-rewrite-url"];

/// Headers some upstreams take as the real host (Rails, Django and Symfony behind proxies).
const FORWARDED_HOST: &str = "x-forwarded-host";
const FORWARDED: &str = "forwarded";

/// Every header [`RequestLine::read`] looks at.
pub const HEADERS_READ: [&str; 11] = [
    ":method",
    ":path",
    ":authority",
    "host",
    METHOD_OVERRIDES[0],
    METHOD_OVERRIDES[1],
    METHOD_OVERRIDES[2],
    PATH_OVERRIDES[0],
    PATH_OVERRIDES[1],
    FORWARDED_HOST,
    FORWARDED,
];

/// Longest method accepted; real ones are short, and it travels in the callout.
const MAX_METHOD: usize = 32;

/// The request line, canonical, with what an upstream may read instead of each part.
#[derive(Debug)]
pub struct RequestLine<'a> {
    /// `:path`: what the callout carries.
    pub path: CanonicalPath<'a>,
    /// Paths from override headers; an unreadable one refuses the request as `:path` would.
    pub other_paths: Vec<CanonicalPath<'a>>,
    /// `:authority` (or `Host`).
    pub host: Cow<'a, str>,
    /// Hosts from forwarding headers, those that are host names at all.
    pub other_hosts: Vec<Cow<'a, str>>,
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
        let mut other_paths = Vec::new();
        for name in PATH_OVERRIDES {
            if let Some(value) = header(headers, name) {
                other_paths.push(canonical_path(
                    value,
                    rules.escaped_slashes,
                    rules.max_path_bytes,
                )?);
            }
        }
        let other_hosts = forwarded_hosts(headers)
            .filter_map(|h| canonical_host(h).ok())
            .collect();
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
        methods.extend(query_method(header(headers, ":path").unwrap_or_default()));
        Ok(Self {
            path,
            other_paths,
            host,
            other_hosts,
            methods,
        })
    }

    pub fn method(&self) -> &str {
        self.methods[0]
    }

    /// Every reading of every path, `:path`'s strict reading first.
    pub fn path_readings(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.path)
            .chain(&self.other_paths)
            .flat_map(CanonicalPath::readings)
    }

    /// The host, then the forwarded ones.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.host)
            .chain(&self.other_hosts)
            .map(|h| h.as_ref())
    }

    pub fn has_upper_case(&self) -> bool {
        std::iter::once(&self.path)
            .chain(&self.other_paths)
            .any(CanonicalPath::has_upper_case)
    }
}

/// `?_method=GET`: Express' method-override, Sinatra and Laravel take it from the query (a
/// `_method` in a form body is beyond what a header filter sees; see the README).
fn query_method(path: &[u8]) -> Option<&str> {
    let query = &path[path.iter().position(|&b| b == b'?')? + 1..];
    query
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"_method="))
        .and_then(method_token)
}

/// Every `X-Forwarded-Host` entry and every `host=` of `Forwarded` (RFC 7239).
fn forwarded_hosts(headers: &Headers) -> impl Iterator<Item = &[u8]> {
    headers
        .iter()
        .filter(|(name, _)| name == FORWARDED_HOST || name == FORWARDED)
        .flat_map(|(name, value)| {
            let forwarded = name == FORWARDED;
            value.split(|&b| b == b',').flat_map(move |element| {
                let pairs: Vec<&[u8]> = if forwarded {
                    element
                        .split(|&b| b == b';')
                        .filter_map(host_parameter)
                        .collect()
                } else {
                    vec![element.trim_ascii()]
                };
                pairs
            })
        })
}

/// The value of a `host=…` parameter of `Forwarded`, unquoted.
fn host_parameter(pair: &[u8]) -> Option<&[u8]> {
    let pair = pair.trim_ascii();
    let equals = pair.iter().position(|&b| b == b'=')?;
    let (key, value) = (&pair[..equals], &pair[equals + 1..]);
    if !key.eq_ignore_ascii_case(b"host") {
        return None;
    }
    Some(
        value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value),
    )
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
    fn override_and_forwarding_headers_are_readings_too() {
        let h = headers(&[
            (":method", b"GET"),
            (":path", b"/free"),
            (":authority", b"other.example"),
            ("x-original-url", b"/Premium/x?y"),
            ("x-forwarded-host", b"API.example.com, proxy.example:8080"),
            (
                "forwarded",
                b"for=1.2.3.4;host=\"api2.example.com.\";proto=https, host=bad host",
            ),
        ]);
        let line = RequestLine::read(&h, &RULES).unwrap();
        assert_eq!(line.path.strict(), "/free", "the callout keeps :path");
        assert_eq!(
            line.path_readings().collect::<Vec<_>>(),
            ["/free", "/Premium/x"]
        );
        assert!(line.has_upper_case());
        assert_eq!(
            line.hosts().collect::<Vec<_>>(),
            [
                "other.example",
                "api.example.com",
                "proxy.example",
                "api2.example.com"
            ]
        );
        let h = headers(&[
            (":method", b"GET"),
            (":path", b"/free"),
            (":authority", b"a.example"),
            ("x-rewrite-url", b"/weather%2ftoday"),
        ]);
        assert_eq!(
            RequestLine::read(&h, &RULES).unwrap_err(),
            Refusal::PathEscapedSlash
        );
    }

    #[test]
    fn a_method_in_the_query_is_a_reading() {
        let h = headers(&[
            (":method", b"POST"),
            (":path", b"/reports/q1?x=1&_method=GET"),
            (":authority", b"a.example"),
        ]);
        assert_eq!(
            RequestLine::read(&h, &RULES).unwrap().methods,
            ["POST", "GET"]
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
}
