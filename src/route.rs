//! Which requests are paid for, and by which service.

/// How a route matches the request path (the `:path` without its query string).
#[derive(Debug)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(regex_lite::Regex),
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
    /// Lower-case, without port; empty matches every host.
    pub hosts: Vec<String>,
    pub action: RouteAction,
}

impl Route {
    pub fn matches(&self, path: &str, method: &str, host: &str) -> bool {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let path_ok = match &self.path {
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Regex(re) => re.is_match(path),
        };
        path_ok
            && (self.methods.is_empty()
                || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && (self.hosts.is_empty()
                || self
                    .hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(strip_port(host))))
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        // An IPv6 literal keeps its colons inside brackets.
        Some((name, port)) if !name.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: PathMatch) -> Route {
        Route {
            path,
            methods: vec![],
            hosts: vec!["api.example.com".into()],
            action: RouteAction::Free,
        }
    }

    #[test]
    fn query_string_is_ignored_and_port_stripped() {
        let r = route(PathMatch::Exact("/a".into()));
        assert!(r.matches("/a?x=1", "GET", "api.example.com:8080"));
        assert!(!r.matches("/a/b", "GET", "api.example.com"));
        assert!(!r.matches("/a", "GET", "evil.example.com"));
    }

    #[test]
    fn ipv6_hosts_keep_their_address() {
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
