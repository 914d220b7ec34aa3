//! Every shipped filter configuration against the invoice-service configuration it is deployed
//! with: each is loaded by its own parser (as Envoy and the service load it), then every paid
//! route must be sellable by the service with the capabilities it requires, the master keys must
//! agree, and the filter must wait for the service longer than the service waits for lnd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use l402_filter::config::FilterConfig;
use l402_filter::route::{PathMatch, RouteAction};
use l402_filter::routing::Unmatched;
use l402_invoicer::config::{Config, LND_MACAROON_ENV};

mod common;
use common::shipped::{plugin_json, root};

/// Filter configuration → the service configuration deployed beside it.
const PAIRS: [(&str, &str); 7] = [
    ("envoy/envoy.yaml", "crates/l402-invoicer/invoicer.toml"),
    ("envoy/envoy.yaml", "docker/invoicer.toml"),
    (
        "envoy/envoy-native.yaml",
        "crates/l402-invoicer/invoicer.toml",
    ),
    ("envoy/envoy-native.yaml", "docker/invoicer.toml"),
    (
        "deploy/envoy-gateway/extension-policy.yaml",
        "deploy/base/invoicer.toml",
    ),
    (
        "deploy/sidecar/wasmplugin.yaml",
        "deploy/base/invoicer.toml",
    ),
    (
        "deploy/gateway/wasmplugin.yaml",
        "deploy/base/invoicer.toml",
    ),
];

/// Every variable a secret of the kind its name says (a Redis URL, else 64 hex digits, which is
/// a master secret and a long enough admin token); the lnd macaroon comes from the file.
fn any_secret(name: &str) -> Option<String> {
    match name {
        LND_MACAROON_ENV => None,
        name if name.contains("REDIS_URL") => Some("redis://127.0.0.1:6379/0".into()),
        _ => Some("42".repeat(32)),
    }
}

fn filter_config(yaml: &str) -> std::sync::Arc<FilterConfig> {
    FilterConfig::compile(plugin_json(yaml).as_bytes(), &any_secret).unwrap()
}

/// The service configuration with its lnd files (which exist only where it is deployed) replaced
/// by the test fixtures: a certificate and a macaroon.
fn service_config(toml_text: &str, scratch: &Path) -> Config {
    let macaroon = l402_core::Macaroon::new(&[7; 32], b"lnd".to_vec(), "lnd").encode();
    std::fs::write(scratch.join("invoice.macaroon"), macaroon).unwrap();
    let cert = root().join("crates/l402-invoicer/tests/fixtures/tls.cert");
    let mut doc: toml::Table = toml_text.parse().unwrap();
    let lnd = doc["lnd"].as_table_mut().unwrap();
    lnd.insert("tls_cert_path".into(), cert.display().to_string().into());
    lnd.insert("macaroon_path".into(), "invoice.macaroon".into());
    Config::parse(&doc.to_string(), scratch, &any_secret).unwrap()
}

/// A paid route, or the paid default, as the check needs it.
struct Sold<'a> {
    at: String,
    service: &'a str,
    capabilities: &'a [String],
    methods: Vec<&'a str>,
    /// The prefix or exact path; `None` for a regex or the default.
    path: Option<&'a str>,
}

fn sold(filter: &FilterConfig) -> Vec<Sold<'_>> {
    let mut sold: Vec<Sold<'_>> = filter
        .routes
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, route)| match &route.action {
            RouteAction::Paid {
                service,
                capabilities,
            } => Some(Sold {
                at: format!("routes[{i}]"),
                service,
                capabilities,
                methods: route.methods.iter().map(String::as_str).collect(),
                path: match &route.path {
                    PathMatch::Prefix(p) | PathMatch::Exact(p) => Some(p),
                    PathMatch::Regex { .. } => None,
                },
            }),
            RouteAction::Free => None,
        })
        .collect();
    if let Unmatched::Paid {
        service,
        capabilities,
    } = &filter.routes.unmatched
    {
        sold.push(Sold {
            at: "unmatched".into(),
            service,
            capabilities,
            methods: vec![],
            path: None,
        });
    }
    sold
}

/// What does not fit between the two configurations; empty when they agree.
fn disagreements(filter: &FilterConfig, service: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for route in sold(filter) {
        let (at, name, required) = (&route.at, route.service, route.capabilities);
        let Some(offered) = service.catalog.get(name) else {
            problems.push(format!("{at}: the service sells no `{name}`"));
            continue;
        };
        let grants = |capabilities: &[String]| required.iter().all(|c| capabilities.contains(c));
        let sellable = match route.path {
            // What the service sells for this path, for each method the route takes.
            Some(path) => {
                let methods = if route.methods.is_empty() {
                    vec!["GET"]
                } else {
                    route.methods
                };
                methods
                    .iter()
                    .all(|m| grants(offered.offer(m, path).capabilities))
            }
            // No one path: some offer of the service must grant the capabilities.
            None => {
                grants(&offered.capabilities)
                    || offered
                        .overrides
                        .iter()
                        .any(|o| o.capabilities.as_deref().is_some_and(grants))
            }
        };
        if !sellable {
            problems.push(format!(
                "{at}: requires {required:?} of `{name}`, which the service does not sell there"
            ));
        }
    }
    for key in &service.keys {
        match filter.keys.iter().find(|k| k.id == key.id) {
            Some(k) if k.env == key.env => {}
            Some(k) => problems.push(format!(
                "key {}: the filter reads `{}`, the service `{}`",
                key.id, k.env, key.env
            )),
            None if key.id == service.minting.key_id.0 => problems.push(format!(
                "key {}: the service mints with it, the filter does not know it",
                key.id
            )),
            None => {}
        }
    }
    let callout = filter.invoice_service.timeout_ms;
    let lnd = service.lnd.request_timeout.as_millis();
    if u128::from(callout) <= lnd {
        problems.push(format!(
            "invoice_service.timeout_ms {callout} must exceed the service's lnd.request_timeout_ms \
             {lnd}, or the filter gives up before the service can answer with the cause"
        ));
    }
    problems
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn every_shipped_filter_config_agrees_with_its_service_config() {
    let dir = scratch();
    for (filter_path, service_path) in PAIRS {
        let filter = filter_config(&read(filter_path));
        let service = service_config(&read(service_path), dir.path());
        let problems = disagreements(&filter, &service);
        assert!(
            problems.is_empty(),
            "{filter_path} with {service_path}: {problems:#?}"
        );
    }
}

/// Deliberately broken copies of the shipped configurations are caught.
#[test]
fn broken_copies_are_caught() {
    let dir = scratch();
    let envoy = read("envoy/envoy.yaml");
    let service = service_config(&read("crates/l402-invoicer/invoicer.toml"), dir.path());
    let cases = [
        (
            envoy.replace(r#""service": "news""#, r#""service": "newz""#),
            "the service sells no `newz`",
        ),
        (
            envoy.replace(
                r#""capabilities": ["premium"]"#,
                r#""capabilities": ["platinum"]"#,
            ),
            r#"requires ["platinum"] of `weather`"#,
        ),
        (
            envoy.replace(r#""prefix": "/premium/""#, r#""prefix": "/vip/""#),
            r#"requires ["premium"] of `weather`, which the service does not sell there"#,
        ),
        (
            envoy.replace(r#""timeout_ms": 1000"#, r#""timeout_ms": 500"#),
            "invoice_service.timeout_ms 500 must exceed",
        ),
        (
            envoy.replace(r#""env": "L402_MASTER_KEY_1""#, r#""env": "L402_KEY_ONE""#),
            "the filter reads `L402_KEY_ONE`, the service `L402_MASTER_KEY_1`",
        ),
    ];
    for (broken, expected) in cases {
        assert_ne!(broken, envoy, "the case {expected:?} changed nothing");
        let problems = disagreements(&filter_config(&broken), &service);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected:?} not among {problems:#?}"
        );
    }
}

#[test]
fn every_shipped_config_is_in_a_pair() {
    let listed: Vec<PathBuf> = PAIRS
        .iter()
        .flat_map(|(f, s)| [root().join(f), root().join(s)])
        .collect();
    let shipped = [
        "envoy/envoy.yaml",
        "envoy/envoy-native.yaml",
        "deploy/envoy-gateway/extension-policy.yaml",
        "deploy/sidecar/wasmplugin.yaml",
        "deploy/gateway/wasmplugin.yaml",
        "crates/l402-invoicer/invoicer.toml",
        "docker/invoicer.toml",
        "deploy/base/invoicer.toml",
    ];
    for path in shipped {
        assert!(
            listed.contains(&root().join(path)),
            "{path} is checked against nothing"
        );
    }
    let envoy_configs = std::fs::read_dir(root().join("envoy")).unwrap().count();
    assert_eq!(envoy_configs, 2, "a new file in envoy/ needs a pair here");
}
