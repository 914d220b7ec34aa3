//! The plugin configuration: JSON from Envoy, validated strictly and compiled once in
//! `on_configure` into an immutable [`FilterConfig`] shared by every request.
//!
//! Secrets never appear in the JSON: `keys` names environment variables of the VM
//! (`vm_config.environment_variables`), whose values are hex master secrets.

use std::sync::Arc;

use l402_core::names::{is_valid_name, NAME_RULE};
use l402_core::{KeyRing, KeySpec, RevocationList, RootKeySource, TokenId, Verifier};
use serde::Deserialize;
use thiserror::Error;

use crate::canonical::{canonical_host, canonical_path, EscapedSlashes, PathRules};
use crate::response::Form;
use crate::route::{PathMatch, Route, RouteAction};
use crate::routing::{RouteTable, Unmatched};
use l402_core::contract::PaidRoute;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration is not valid JSON for this filter: {0}")]
    Json(String),
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    invoice_service: RawInvoiceService,
    routes: Vec<RawRoute>,
    keys: Vec<KeySpec>,
    #[serde(default)]
    revoked_token_ids: Vec<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    fail_open: bool,
    #[serde(default)]
    credentials: Credentials,
    #[serde(default = "default_retry_after")]
    retry_after_seconds: u32,
    unmatched: Option<RawUnmatched>,
    #[serde(default)]
    escaped_slashes: RawEscapedSlashes,
    #[serde(default = "default_max_path_bytes")]
    max_path_bytes: usize,
    #[serde(default)]
    quota: RawQuota,
    revocations: Option<RawRevocations>,
    #[serde(default = "default_credential_cache_size")]
    credential_cache_size: usize,
    #[serde(default)]
    challenge: RawChallenge,
    #[serde(default = "default_discovery")]
    discovery: bool,
}

/// The manifest is public catalogue data that the spec asks every provider to serve unpaid.
fn default_discovery() -> bool {
    true
}

/// `challenge`: the 2026 revision of the spec, each part off by default because today's clients
/// (lnget, the L402 SDK, Aperture's client) would not read it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawChallenge {
    token_line: bool,
    invalid_credential_status: u32,
}

impl Default for RawChallenge {
    fn default() -> Self {
        Self {
            token_line: false,
            invalid_credential_status: 402,
        }
    }
}

/// How challenges are answered (the `challenge` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeOptions {
    /// A third `WWW-Authenticate` line in the 2026 form, after the two current ones.
    pub token_line: bool,
    /// 402 (Aperture: a fresh challenge) or 401 for a request whose credential is present but
    /// invalid; 401 carries the same fresh challenge, so the client can still pay.
    pub invalid_credential_status: u32,
}

impl ChallengeOptions {
    pub fn form(&self, grpc: bool, invalid: bool) -> Form {
        Form {
            grpc,
            status: if invalid {
                self.invalid_credential_status
            } else {
                402
            },
            token_line: self.token_line,
        }
    }
}

/// Tokens in use at once per worker that skip re-authentication (about 1 KiB each).
fn default_credential_cache_size() -> usize {
    1024
}

const MAX_CREDENTIAL_CACHE_SIZE: usize = 1 << 20;

/// `quota`: how this worker serves counted tokens (`<service>_requests=N`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawQuota {
    lease_size: u32,
    idle_return_ms: u64,
    remaining_header: bool,
}

impl Default for RawQuota {
    fn default() -> Self {
        Self {
            lease_size: 100,
            idle_return_ms: 1_000,
            remaining_header: false,
        }
    }
}

/// `revocations`: read the ids revoked in the shared store through the invoice service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocations {
    #[serde(default = "default_sync_interval_ms")]
    sync_interval_ms: u64,
}

fn default_sync_interval_ms() -> u64 {
    1_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum RawUnmatched {
    Pass,
    Deny,
    Paid {
        service: String,
        #[serde(default)]
        capabilities: Vec<String>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawEscapedSlashes {
    #[default]
    Reject,
    Allow,
}

/// Long enough for any real API path; short enough that the callout (which carries the path)
/// stays far below the invoice service's body limit.
fn default_max_path_bytes() -> usize {
    4096
}

const MAX_PATH_BYTES_RANGE: std::ops::RangeInclusive<usize> = 256..=6144;

fn default_retry_after() -> u32 {
    5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvoiceService {
    cluster: String,
    #[serde(default = "default_authority")]
    authority: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_authority() -> String {
    "l402-invoicer".into()
}

fn default_path() -> String {
    l402_core::contract::CHALLENGE_PATH.into()
}

fn default_timeout_ms() -> u64 {
    2000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(rename = "match")]
    path: RawPathMatch,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
    service: Option<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    free: bool,
    #[serde(default)]
    strict: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum RawPathMatch {
    Prefix(String),
    Exact(String),
    Regex(String),
}

/// What the upstream gets of the credential once a token is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credentials {
    /// Every L402 credential removed (other `Authorization` schemes stay).
    #[default]
    Strip,
    /// Passed on as the client sent it.
    Keep,
    /// Aperture's pair instead: `Authorization: LSAT …` and `Authorization: L402 …`, for
    /// backends written for Aperture.
    Aperture,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceService {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
}

/// Counted tokens and shared revocations, as this worker takes part in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counting {
    /// How many requests of a counted token a worker asks for at once.
    pub lease_size: u32,
    /// A block unused this long goes back to the service.
    pub idle_return_ms: u64,
    /// How often revocations are read from the shared store; `None`: only `revoked_token_ids`.
    pub revocation_sync_ms: Option<u64>,
    /// Tell the upstream about how many requests a counted token has left
    /// (`x-l402-requests-remaining`; one more header write per request).
    pub remaining_header: bool,
}

impl Counting {
    /// How often the root context's timer runs: often enough to give blocks back and to read
    /// revocations on time.
    pub fn tick_ms(&self) -> u64 {
        let half_idle = self.idle_return_ms / 2;
        self.revocation_sync_ms
            .map_or(half_idle, |sync| sync.min(half_idle))
            .max(50)
    }

    /// The Retry-After for a counted token whose last units are held by other workers: by then
    /// idle blocks have gone back.
    pub fn retry_after_seconds(&self) -> u32 {
        u32::try_from(self.idle_return_ms.div_ceil(1000) + 1).unwrap_or(u32::MAX)
    }
}

#[derive(Debug)]
pub struct FilterConfig {
    pub invoice_service: InvoiceService,
    pub routes: RouteTable,
    pub path_rules: PathRules,
    pub verifier: Verifier,
    /// The master secrets by id and variable, as configured (the secrets are in `verifier`).
    pub keys: Vec<KeySpec>,
    pub dry_run: bool,
    pub fail_open: bool,
    pub credentials: Credentials,
    pub retry_after_seconds: u32,
    pub counting: Counting,
    /// Authenticated credentials kept per worker (see [`crate::credential_cache`]); 0: none.
    pub credential_cache_size: usize,
    pub challenge: ChallengeOptions,
    /// The paid routes the discovery manifest is priced from; `None` with `discovery: false`.
    pub manifest: Option<Vec<PaidRoute<'static>>>,
    /// Accepted, but worth an operator's attention; logged at warn when the plugin starts.
    pub warnings: Vec<String>,
}

impl FilterConfig {
    /// Parses and validates `json`; `env` looks up the VM's environment variables.
    pub fn compile(
        json: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<Self>, ConfigError> {
        // The path tells a user which route holds the typo: `routes[2].prce: unknown field …`.
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            match path.as_str() {
                "." | "" => ConfigError::Json(e.inner().to_string()),
                _ => field(path, e.inner().to_string()),
            }
        })?;
        let invoice_service = compile_invoice_service(raw.invoice_service)?;
        if raw.routes.is_empty() {
            return Err(field("routes", "at least one route is required"));
        }
        let routes = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile_route(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut warnings = Vec::new();
        let unmatched = match raw.unmatched {
            Some(RawUnmatched::Pass) => Unmatched::Pass,
            Some(RawUnmatched::Deny) => Unmatched::Deny,
            Some(RawUnmatched::Paid {
                service,
                capabilities,
            }) => match paid_action("unmatched.paid", service, capabilities)? {
                RouteAction::Paid {
                    service,
                    capabilities,
                } => Unmatched::Paid {
                    service,
                    capabilities,
                },
                RouteAction::Free => Unmatched::Pass,
            },
            None => {
                if routes
                    .iter()
                    .any(|r| matches!(r.action, RouteAction::Paid { .. }))
                    && !routes.iter().any(is_catch_all)
                {
                    warnings.push(
                        "unmatched: not set, so a request that matches no route passes unpaid; \
                         set it to `deny`, `pass` or `{\"paid\": {\"service\": …}}`"
                            .to_string(),
                    );
                }
                Unmatched::Pass
            }
        };
        if let Some(warning) = unanchored_regex_warning(&routes) {
            warnings.push(warning);
        }
        if !MAX_PATH_BYTES_RANGE.contains(&raw.max_path_bytes) {
            return Err(field(
                "max_path_bytes",
                format!(
                    "must be between {} and {}",
                    MAX_PATH_BYTES_RANGE.start(),
                    MAX_PATH_BYTES_RANGE.end()
                ),
            ));
        }
        let path_rules = PathRules {
            escaped_slashes: match raw.escaped_slashes {
                RawEscapedSlashes::Reject => EscapedSlashes::Reject,
                RawEscapedSlashes::Allow => EscapedSlashes::Allow,
            },
            max_path_bytes: raw.max_path_bytes,
        };
        let counting = compile_counting(&raw.quota, raw.revocations.as_ref())?;
        if raw.credential_cache_size > MAX_CREDENTIAL_CACHE_SIZE {
            return Err(field(
                "credential_cache_size",
                format!("must be at most {MAX_CREDENTIAL_CACHE_SIZE} (0 turns the cache off)"),
            ));
        }
        if !matches!(raw.challenge.invalid_credential_status, 401 | 402) {
            return Err(field(
                "challenge.invalid_credential_status",
                "must be 402 (a fresh challenge, as Aperture answers) or 401",
            ));
        }
        let ring = compile_keys(&raw.keys, env)?;
        let revoked = raw
            .revoked_token_ids
            .iter()
            .enumerate()
            .map(|(i, t)| {
                TokenId::from_hex(t.trim()).ok_or_else(|| {
                    field(format!("revoked_token_ids[{i}]"), "must be 64 hex digits")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = raw.discovery.then(|| paid_routes(&routes, &unmatched));
        Ok(Arc::new(Self {
            invoice_service,
            routes: RouteTable::new(routes, unmatched),
            path_rules,
            verifier: Verifier::new(RootKeySource::Derived(ring), RevocationList::new(revoked)),
            keys: raw.keys,
            dry_run: raw.dry_run,
            fail_open: raw.fail_open,
            credentials: raw.credentials,
            retry_after_seconds: raw.retry_after_seconds,
            counting,
            credential_cache_size: raw.credential_cache_size,
            manifest,
            challenge: ChallengeOptions {
                token_line: raw.challenge.token_line,
                invalid_credential_status: raw.challenge.invalid_credential_status,
            },
            warnings,
        }))
    }
}

/// Regex routes without a literal directory (`^/dir/…`) are each run on every request's path.
/// One costs 0.3 to 0.5 µs, so a handful do not matter; from this many on, the load
/// says which ones to anchor (100 cost 30 to 50 µs per request).
const UNANCHORED_REGEX_WARNING_FROM: usize = 10;

fn unanchored_regex_warning(routes: &[Route]) -> Option<String> {
    let unanchored: Vec<String> = routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path.runs_on_every_path())
        .map(|(i, _)| format!("routes[{i}]"))
        .collect();
    (unanchored.len() >= UNANCHORED_REGEX_WARNING_FROM).then(|| {
        format!(
            "{} regex routes ({}) start with no literal directory, so each runs on every \
             request (0.3 to 0.5 µs each); begin them with `^/<directory>/` where you can",
            unanchored.len(),
            unanchored.join(", ")
        )
    })
}

/// What the filter sells where, for the discovery manifest (the service adds the prices).
fn paid_routes(routes: &[Route], unmatched: &Unmatched) -> Vec<PaidRoute<'static>> {
    let owned = |v: &[String]| v.iter().map(|s| s.clone().into()).collect();
    let mut paid: Vec<PaidRoute<'static>> = routes
        .iter()
        .filter_map(|route| {
            let RouteAction::Paid {
                service,
                capabilities,
            } = &route.action
            else {
                return None;
            };
            let path = match &route.path {
                PathMatch::Exact(path) => Some(path.clone().into()),
                PathMatch::Prefix(prefix) => Some(format!("{prefix}*").into()),
                PathMatch::Regex { .. } => None,
            };
            Some(PaidRoute {
                service: service.clone().into(),
                path,
                methods: owned(&route.methods),
                capabilities: owned(capabilities),
            })
        })
        .collect();
    if let Unmatched::Paid {
        service,
        capabilities,
    } = unmatched
    {
        paid.push(PaidRoute {
            service: service.clone().into(),
            path: None,
            methods: Vec::new(),
            capabilities: owned(capabilities),
        });
    }
    paid
}

fn compile_counting(
    quota: &RawQuota,
    revocations: Option<&RawRevocations>,
) -> Result<Counting, ConfigError> {
    let within = |name: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(field(
                name,
                format!("must be between {} and {}", range.start(), range.end()),
            ))
        }
    };
    within("quota.lease_size", quota.lease_size.into(), 1..=10_000)?;
    Ok(Counting {
        lease_size: quota.lease_size,
        idle_return_ms: within("quota.idle_return_ms", quota.idle_return_ms, 100..=10_000)?,
        revocation_sync_ms: revocations
            .map(|r| {
                within(
                    "revocations.sync_interval_ms",
                    r.sync_interval_ms,
                    100..=60_000,
                )
            })
            .transpose()?,
        remaining_header: quota.remaining_header,
    })
}

/// A route that every request matches, so nothing is left to the `unmatched` default.
fn is_catch_all(route: &Route) -> bool {
    matches!(&route.path, PathMatch::Prefix(p) if p == "/")
        && route.methods.is_empty()
        && route.hosts.is_empty()
}

fn compile_invoice_service(raw: RawInvoiceService) -> Result<InvoiceService, ConfigError> {
    if raw.cluster.trim().is_empty() {
        return Err(field(
            "invoice_service.cluster",
            "must name an Envoy cluster",
        ));
    }
    if !raw.path.starts_with('/') {
        return Err(field("invoice_service.path", "must start with `/`"));
    }
    if raw.timeout_ms == 0 || raw.timeout_ms > 60_000 {
        return Err(field(
            "invoice_service.timeout_ms",
            "must be between 1 and 60000",
        ));
    }
    Ok(InvoiceService {
        cluster: raw.cluster,
        authority: raw.authority,
        path: raw.path,
        timeout_ms: raw.timeout_ms,
    })
}

fn compile_route(index: usize, raw: RawRoute) -> Result<Route, ConfigError> {
    let name = |f: &str| format!("routes[{index}].{f}");
    let path = match raw.path {
        RawPathMatch::Prefix(p) => PathMatch::Prefix(canonical_pattern(&name("match.prefix"), p)?),
        RawPathMatch::Exact(p) => PathMatch::Exact(canonical_pattern(&name("match.exact"), p)?),
        RawPathMatch::Regex(r) => {
            let compile = |pattern: &str| {
                regex_lite::Regex::new(pattern)
                    .map_err(|e| field(name("match.regex"), e.to_string()))
            };
            PathMatch::Regex {
                exact: compile(&r)?,
                folded: compile(&format!("(?i){r}"))?,
                literal: crate::route::literal_prefix(&r),
            }
        }
    };
    let action = match (raw.free, raw.service) {
        (true, None) if raw.capabilities.is_empty() => RouteAction::Free,
        (true, _) => {
            return Err(field(
                name("free"),
                "a free route takes no `service` or `capabilities`",
            ))
        }
        (false, None) => return Err(field(name("service"), "required unless `free: true`")),
        (false, Some(service)) => {
            paid_action(&format!("routes[{index}]"), service, raw.capabilities)?
        }
    };
    let hosts = raw
        .hosts
        .iter()
        .enumerate()
        .map(|(j, h)| {
            canonical_host(h.as_bytes())
                .map(|c| c.into_owned())
                .map_err(|_| {
                    field(
                        name(&format!("hosts[{j}]")),
                        format!("`{h}` is not a host name or IP address"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Route {
        path,
        methods: raw
            .methods
            .into_iter()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        hosts,
        strict: raw.strict,
        action,
    })
}

/// A paid route's or the paid default's service and capabilities; `at` names the object.
fn paid_action(
    at: &str,
    service: String,
    capabilities: Vec<String>,
) -> Result<RouteAction, ConfigError> {
    if !is_valid_name(&service) {
        return Err(field(format!("{at}.service"), NAME_RULE));
    }
    if let Some(j) = capabilities.iter().position(|c| !is_valid_name(c)) {
        return Err(field(format!("{at}.capabilities[{j}]"), NAME_RULE));
    }
    Ok(RouteAction::Paid {
        service,
        capabilities,
    })
}

/// Prefix and exact patterns are compared with canonical paths, so they must be canonical
/// themselves: a pattern no canonical path can equal would silently never match.
fn canonical_pattern(at: &str, pattern: String) -> Result<String, ConfigError> {
    if pattern.contains(['?', ';', '\\']) {
        return Err(field(
            at,
            format!("`{pattern}`: `?`, `;` and `\\` cannot appear in a route's path"),
        ));
    }
    let path = canonical_path(pattern.as_bytes(), EscapedSlashes::Reject, usize::MAX)
        .map_err(|refusal| field(at, format!("`{pattern}`: {}", refusal.message())))?;
    if path.strict() != pattern {
        return Err(field(
            at,
            format!(
                "`{pattern}` is not in canonical form; write `{}`",
                path.strict()
            ),
        ));
    }
    Ok(pattern)
}

fn compile_keys(
    specs: &[KeySpec],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KeyRing, ConfigError> {
    KeyRing::from_env(specs, env).map_err(|e| field(e.field(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::RequestLine;
    use crate::routing::Decision;

    pub const SECRET: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn env(name: &str) -> Option<String> {
        (name == "L402_KEY_1").then(|| SECRET.to_string())
    }

    fn compile(json: serde_json::Value) -> Result<Arc<FilterConfig>, ConfigError> {
        FilterConfig::compile(json.to_string().as_bytes(), &env)
    }

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "invoice_service": {"cluster": "l402_invoicer"},
            "routes": [{"match": {"prefix": "/api/"}, "service": "api"}],
            "keys": [{"id": 1, "env": "L402_KEY_1"}]
        })
    }

    fn error_field(json: serde_json::Value) -> String {
        match compile(json).unwrap_err() {
            ConfigError::Field { field, .. } => field,
            ConfigError::Json(message) => message,
        }
    }

    #[test]
    fn minimal_config_compiles_with_defaults() {
        let c = compile(minimal()).unwrap();
        assert_eq!(c.invoice_service.path, "/v1/challenges");
        assert_eq!(c.invoice_service.timeout_ms, 2000);
        assert_eq!(c.credentials, Credentials::Strip);
        assert!(!c.fail_open && !c.dry_run);
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let mut json = minimal();
        json["routes"][0]["prce"] = 5.into();
        let err = compile(json).unwrap_err().to_string();
        assert!(
            err.starts_with("routes[0].prce: unknown field `prce`"),
            "{err}"
        );
        let mut json = minimal();
        json["fail_closed"] = true.into();
        let err = compile(json).unwrap_err().to_string();
        assert!(
            err.starts_with("fail_closed: unknown field `fail_closed`"),
            "{err}"
        );
        let mut json = minimal();
        json["invoice_service"]["timeout_ms"] = "fast".into();
        assert_eq!(error_field(json), "invoice_service.timeout_ms");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                "/invoice_service/cluster",
                serde_json::json!(""),
                "invoice_service.cluster",
            ),
            (
                "/invoice_service/timeout_ms",
                serde_json::json!(0),
                "invoice_service.timeout_ms",
            ),
            (
                "/routes/0/match",
                serde_json::json!({"regex": "("}),
                "routes[0].match.regex",
            ),
            (
                "/routes/0/match",
                serde_json::json!({"prefix": "api"}),
                "routes[0].match.prefix",
            ),
            (
                "/routes/0/service",
                serde_json::json!("a=b"),
                "routes[0].service",
            ),
            ("/keys/0/env", serde_json::json!("MISSING"), "keys[0].env"),
            (
                "/revoked_token_ids",
                serde_json::json!(["xyz"]),
                "revoked_token_ids[0]",
            ),
        ];
        for (pointer, value, want) in cases {
            let mut json = minimal();
            let mut slot = &mut json;
            for part in pointer.split('/').skip(1) {
                slot = match part.parse::<usize>() {
                    Ok(i) => &mut slot[i],
                    Err(_) => &mut slot[part],
                };
            }
            *slot = value;
            assert_eq!(error_field(json), want, "{pointer}");
        }
    }

    #[test]
    fn route_needs_a_service_unless_free() {
        let mut json = minimal();
        json["routes"] = serde_json::json!([{"match": {"prefix": "/"}}]);
        assert_eq!(error_field(json), "routes[0].service");
        let mut json = minimal();
        json["routes"] =
            serde_json::json!([{"match": {"prefix": "/"}, "free": true, "service": "x"}]);
        assert_eq!(error_field(json), "routes[0].free");
    }

    #[test]
    fn weak_master_secret_is_refused_without_echoing_it() {
        let env = |_: &str| Some("abcd".to_string());
        let err = FilterConfig::compile(minimal().to_string().as_bytes(), &env).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("keys:"), "{text}");
        assert!(!text.contains("abcd"));
    }

    /// The decision for a request line, as the filter makes it.
    fn decide<'c>(c: &'c FilterConfig, method: &str, path: &str, host: &str) -> Decision<'c> {
        let headers: crate::host::Headers = vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
            (":authority".into(), host.as_bytes().to_vec()),
        ];
        let line = RequestLine::read(&headers, &c.path_rules).unwrap();
        c.routes.decide(&line)
    }

    fn paid(service: &str) -> Decision<'_> {
        Decision::Paid {
            service,
            capabilities: std::borrow::Cow::Borrowed(&[]),
        }
    }

    #[test]
    fn first_matching_route_wins() {
        let mut json = minimal();
        json["routes"] = serde_json::json!([
            {"match": {"exact": "/api/health"}, "free": true},
            {"match": {"prefix": "/api/"}, "methods": ["post"], "service": "writes"},
            {"match": {"regex": "^/api/v[0-9]+/"}, "hosts": ["API.example.com"], "service": "api"}
        ]);
        let c = compile(json).unwrap();
        assert_eq!(decide(&c, "GET", "/api/health", "x"), Decision::Free);
        assert_eq!(decide(&c, "POST", "/api/x", "x"), paid("writes"));
        assert_eq!(
            decide(&c, "GET", "/api/v2/x", "api.example.com"),
            paid("api")
        );
        assert_eq!(
            decide(&c, "GET", "/api/v2/x", "other.example.com"),
            Decision::Unmatched
        );
        assert_eq!(
            decide(&c, "GET", "/other", "api.example.com"),
            Decision::Unmatched
        );
    }

    #[test]
    fn unmatched_policy_and_the_warning_without_one() {
        let c = compile(minimal()).unwrap();
        assert_eq!(decide(&c, "GET", "/other", "x"), Decision::Unmatched);
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].starts_with("unmatched: not set"),
            "{:?}",
            c.warnings
        );

        for (policy, want) in [
            (serde_json::json!("pass"), Decision::Unmatched),
            (serde_json::json!("deny"), Decision::Deny),
            (
                serde_json::json!({"paid": {"service": "rest"}}),
                paid("rest"),
            ),
        ] {
            let mut json = minimal();
            json["unmatched"] = policy;
            let c = compile(json).unwrap();
            assert_eq!(decide(&c, "GET", "/other", "x"), want);
            assert!(c.warnings.is_empty());
        }

        let mut json = minimal();
        json["routes"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"match": {"prefix": "/"}, "free": true}));
        assert!(
            compile(json).unwrap().warnings.is_empty(),
            "a catch-all route decides"
        );
    }

    #[test]
    fn many_regex_routes_without_a_literal_directory_are_named_at_load() {
        let with = |patterns: &[String]| {
            let mut json = minimal();
            json["unmatched"] = "deny".into();
            for p in patterns {
                let route = serde_json::json!({"match": {"regex": p}, "service": "api"});
                json["routes"].as_array_mut().unwrap().push(route);
            }
            compile(json).unwrap().warnings.clone()
        };
        let unanchored: Vec<String> = (0..10).map(|i| format!("/x{i}/[a-z]+$")).collect();
        let warnings = with(&unanchored);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("10 regex routes (routes[1], routes[2]"));
        assert!(with(&unanchored[..9]).is_empty(), "a few cost little");
        let slash_only: Vec<String> = (0..10).map(|i| format!("^/[a-z]+/{i}")).collect();
        assert_eq!(with(&slash_only).len(), 1, "`/` turns no path away");
        let anchored: Vec<String> = (0..50).map(|i| format!("^/v{i}/[a-z]+$")).collect();
        assert!(with(&anchored).is_empty());
    }

    #[test]
    fn a_strict_route_is_matched_on_the_strict_reading_only() {
        let mut json = minimal();
        json["routes"] = serde_json::json!([
            {"match": {"prefix": "/api/"}, "service": "api", "strict": true},
            {"match": {"prefix": "/news/"}, "service": "news"}
        ]);
        json["unmatched"] = "pass".into();
        let c = compile(json).unwrap();
        assert_eq!(decide(&c, "GET", "//api/./x", "h"), paid("api"));
        for path in ["/API/x", "/api;v=1/x", "/api", "/x/..;/api/x"] {
            assert_eq!(decide(&c, "GET", path, "h"), Decision::Unmatched, "{path}");
        }
        assert_eq!(
            decide(&c, "GET", "/NEWS/x", "h"),
            paid("news"),
            "others stay lenient"
        );
    }

    #[test]
    fn route_patterns_must_be_canonical() {
        let cases = [
            (
                serde_json::json!({"prefix": "/a//b/"}),
                "routes[0].match.prefix",
                "write `/a/b/`",
            ),
            (
                serde_json::json!({"prefix": "/a/./b"}),
                "routes[0].match.prefix",
                "write `/a/b`",
            ),
            (
                serde_json::json!({"exact": "/%61pi"}),
                "routes[0].match.exact",
                "write `/api`",
            ),
            (
                serde_json::json!({"exact": "/a;b"}),
                "routes[0].match.exact",
                "cannot appear",
            ),
            (
                serde_json::json!({"prefix": "/a\\b"}),
                "routes[0].match.prefix",
                "cannot appear",
            ),
            (
                serde_json::json!({"prefix": "/a?b"}),
                "routes[0].match.prefix",
                "cannot appear",
            ),
            (
                serde_json::json!({"prefix": "/a%2Fb"}),
                "routes[0].match.prefix",
                "escaped slash",
            ),
            (
                serde_json::json!({"prefix": "api"}),
                "routes[0].match.prefix",
                "start with `/`",
            ),
        ];
        for (pattern, want_field, want_text) in cases {
            let mut json = minimal();
            json["routes"][0]["match"] = pattern.clone();
            let err = compile(json).unwrap_err();
            let ConfigError::Field { field, problem } = &err else {
                panic!("{pattern}: {err}")
            };
            assert_eq!(field, want_field, "{pattern}");
            assert!(problem.contains(want_text), "{pattern}: {problem}");
        }
    }

    #[test]
    fn hosts_are_canonical_and_checked() {
        let mut json = minimal();
        json["routes"][0]["hosts"] = serde_json::json!(["API.Example.com."]);
        let c = compile(json).unwrap();
        assert_eq!(c.routes.routes[0].hosts, ["api.example.com"]);
        assert_eq!(
            decide(&c, "GET", "/api/x", "api.EXAMPLE.com.:443"),
            paid("api")
        );
        let mut json = minimal();
        json["routes"][0]["hosts"] = serde_json::json!(["not a host"]);
        assert_eq!(error_field(json), "routes[0].hosts[0]");
    }

    #[test]
    fn path_options_are_checked() {
        let mut json = minimal();
        json["max_path_bytes"] = 10.into();
        assert_eq!(error_field(json), "max_path_bytes");
        let mut json = minimal();
        json["escaped_slashes"] = "decode".into();
        assert_eq!(error_field(json), "escaped_slashes");
        let mut json = minimal();
        json["unmatched"] = "maybe".into();
        assert_eq!(error_field(json), "unmatched");
        let mut json = minimal();
        json["unmatched"] = serde_json::json!({"paid": {"service": "a=b"}});
        assert_eq!(error_field(json), "unmatched.paid.service");
    }

    /// The `pluginConfig` of the Istio manifests, through the parser `on_configure` runs, so
    /// the examples in deploy/ cannot drift from the code.
    #[test]
    fn istio_manifests_plugin_config_is_accepted() {
        for variant in ["sidecar", "gateway"] {
            let path = format!(
                "{}/../../deploy/{variant}/wasmplugin.yaml",
                env!("CARGO_MANIFEST_DIR")
            );
            let manifest = std::fs::read_to_string(&path).unwrap();
            // Written as JSON (a YAML subset) under `pluginConfig:`, the last key of the file.
            let json = manifest.split("\n  pluginConfig:\n").nth(1).unwrap();
            let env = |name: &str| (name == "L402_MASTER_KEY_1").then(|| SECRET.to_string());
            let config = FilterConfig::compile(json.as_bytes(), &env)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(
                config.invoice_service.cluster,
                "outbound|8402||l402-invoicer.l402-system.svc.cluster.local"
            );
            assert!(matches!(
                decide(&config, "GET", "/weather/today", "api.example"),
                Decision::Paid {
                    service: "weather",
                    ..
                }
            ));
            assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        }
    }
}
