//! The L402 discovery manifest (`/.well-known/l402.json`, lightninglabs/L402
//! `discovery-spec.md`): the filter sends its paid routes, this side prices them from the catalog
//! it sells by, so the document can never quote a price the challenge would not charge.

use l402_core::contract::{ManifestRequest, PaidRoute};
use serde_json::{json, Map, Value};

use crate::pricing::{Catalog, Service};

/// The manifest schema version the spec defines.
const VERSION: &str = "1.0";

/// The manifest for `request`. Routes of services this instance does not sell are left out
/// (the filter would get 503 for them anyway); a service appears once, in route order.
pub fn manifest(catalog: &Catalog, request: &ManifestRequest<'_>) -> Value {
    let mut names: Vec<&str> = Vec::new();
    for route in request.resources.iter() {
        if catalog.get(&route.service).is_some() && !names.contains(&route.service.as_ref()) {
            names.push(&route.service);
        }
    }
    let services: Vec<Value> = names
        .iter()
        .filter_map(|name| catalog.get(name))
        .map(|service| service_entry(service, &request.resources))
        .collect();
    let mut caveats = Map::new();
    caveats.insert(
        "services".into(),
        json!({"type": "service_list", "attenuation": "subset"}),
    );
    for name in &names {
        caveats.insert(
            format!("{name}_capabilities"),
            json!({"type": "string", "attenuation": "subset"}),
        );
        caveats.insert(
            format!("{name}_valid_until"),
            json!({"type": "timestamp", "attenuation": "earlier"}),
        );
        caveats.insert(
            format!("{name}_requests"),
            json!({"type": "integer", "attenuation": "decreasing",
                   "description": "requests the token is good for in all"}),
        );
    }
    let host = if request.host.is_empty() {
        "l402"
    } else {
        &request.host
    };
    json!({
        "version": VERSION,
        "provider": {"name": host},
        "currencies": ["msat"],
        "macaroon_versions": [0],
        "payment_methods": ["bolt11"],
        "services": services,
        "caveats": caveats,
    })
}

fn service_entry(service: &Service, routes: &[PaidRoute<'_>]) -> Value {
    let mut resources = Vec::new();
    for route in routes.iter().filter(|r| r.service == service.name) {
        let methods: Vec<&str> = if route.methods.is_empty() {
            vec!["GET"]
        } else {
            route.methods.iter().map(AsRef::as_ref).collect()
        };
        let prefix = route.path.as_deref().map(|p| p.trim_end_matches('*'));
        for method in methods {
            resources.push(resource(
                service,
                route,
                method,
                route.path.as_deref(),
                prefix,
            ));
            // A price override under this route is a resource of its own: its path costs
            // something else.
            for o in &service.overrides {
                let (Some(under), Some(route_prefix)) = (o.path_prefix.as_deref(), prefix) else {
                    continue;
                };
                let method_applies = o
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method));
                let inside = route.path.as_deref().is_some_and(|p| p.ends_with('*'))
                    && under.starts_with(route_prefix)
                    && under != route_prefix;
                if method_applies && inside {
                    let template = format!("{under}*");
                    resources.push(resource(
                        service,
                        route,
                        method,
                        Some(&template),
                        Some(under),
                    ));
                }
            }
        }
    }
    // Every capability a token of this service can carry or a route can ask for: the spec
    // wants each resource's capability to be in this list.
    let mut capabilities: Vec<&str> = Vec::new();
    let granted = service
        .overrides
        .iter()
        .filter_map(|o| o.capabilities.as_deref())
        .chain([service.capabilities.as_slice()])
        .flatten()
        .map(String::as_str);
    let asked = routes
        .iter()
        .filter(|r| r.service == service.name)
        .flat_map(|r| r.capabilities.iter().map(AsRef::as_ref));
    for capability in granted.chain(asked) {
        if !capabilities.contains(&capability) {
            capabilities.push(capability);
        }
    }
    json!({
        "name": service.name,
        "description": service.memo,
        "tiers": [{"tier": service.tier}],
        "capabilities": capabilities,
        "resources": resources,
    })
}

/// One priced entry point: what a request for `priced_path` would be charged.
fn resource(
    service: &Service,
    route: &PaidRoute<'_>,
    method: &str,
    template: Option<&str>,
    priced_path: Option<&str>,
) -> Value {
    let offer = service.offer(method, priced_path.unwrap_or(""));
    let mut entry = Map::new();
    if let Some(template) = template {
        entry.insert("path".into(), json!(template));
    }
    entry.insert("method".into(), json!(method));
    if let [only] = route.capabilities.as_slice() {
        entry.insert("capability".into(), json!(only));
    }
    entry.insert(
        "pricing".into(),
        json!({"model": "fixed", "price_msat": offer.price_msat}),
    );
    // Beyond the spec's resource members: what one payment buys, which a client needs to
    // compare offers and the spec has no member for.
    if let Some(requests) = offer.requests {
        entry.insert("requests".into(), json!(requests));
    }
    if let Some(seconds) = service.token_lifetime_seconds {
        entry.insert("valid_seconds".into(), json!(seconds));
    }
    Value::Object(entry)
}
