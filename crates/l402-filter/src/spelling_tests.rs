//! tests/spellings/cases.json over the request state machine, with the shipped Envoy config's
//! routes: no spelling of a paid request passes unpaid. The same table runs in real Envoy
//! (tests/envoy/test_spellings.py).

use crate::config::FilterConfig;
use crate::host::Headers;
use crate::memory_host::MemoryHost;
use crate::request::{RequestFilter, Verdict};

#[path = "../../../tests/common/shipped.rs"]
mod shipped;

const CASES: &str = include_str!("../../../tests/spellings/cases.json");

/// `\xHH` in the table stands for the byte 0xHH.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\x") {
            out.push(u8::from_str_radix(&text[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn table_config() -> std::sync::Arc<FilterConfig> {
    let cases: serde_json::Value = serde_json::from_str(CASES).unwrap();
    let mut plugin: serde_json::Value =
        serde_json::from_str(&shipped::envoy_plugin_json()).unwrap();
    plugin["unmatched"] = "pass".into();
    let routes = plugin["routes"].as_array_mut().unwrap();
    routes.extend(cases["extra_routes"].as_array().unwrap().iter().cloned());
    let env = |name: &str| (name == "L402_MASTER_KEY_1").then(|| "5e".repeat(32));
    FilterConfig::compile(plugin.to_string().as_bytes(), &env).unwrap()
}

#[test]
fn no_spelling_of_a_paid_request_passes_unpaid() {
    let config = table_config();
    let cases: serde_json::Value = serde_json::from_str(CASES).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 100,
        "the table keeps at least a hundred spellings"
    );
    let mut failures = Vec::new();
    for case in cases {
        let text = |key: &str, default: &str| case[key].as_str().unwrap_or(default).to_string();
        let mut headers: Headers = vec![
            (":method".into(), text("method", "GET").into_bytes()),
            (":path".into(), unescape(&text("path", ""))),
            (
                ":authority".into(),
                unescape(&text("host", "api.example.com")),
            ),
        ];
        if case["grpc"].as_bool() == Some(true) {
            headers.push(("content-type".into(), b"application/grpc".to_vec()));
        }
        if let Some(extra) = case["headers"].as_object() {
            for (name, value) in extra {
                // Envoy hands header names over in lower case.
                headers.push((name.to_ascii_lowercase(), unescape(value.as_str().unwrap())));
            }
        }
        let mut host = MemoryHost::with_headers(headers);
        let verdict =
            RequestFilter::new(config.clone(), Default::default()).on_request_headers(&mut host);
        let status = host.sent.as_ref().map(|r| {
            // gRPC answers carry their status in grpc-status; 3 is our refusal.
            match r.header("grpc-status") {
                Some("3") => 400,
                Some(_) => 0,
                None => r.status,
            }
        });
        let challenged_for = host
            .dispatched
            .first()
            .map(|(_, body)| body["service"].clone());
        let ok = match text("expect", "").as_str() {
            "paid" => {
                verdict == Verdict::Pause
                    && match (&challenged_for, status) {
                        (Some(service), None) => {
                            case["service"].is_null() || *service == case["service"]
                        }
                        (None, Some(s)) => [400, 404, 414].contains(&s),
                        _ => false,
                    }
            }
            "refused" => verdict == Verdict::Pause && matches!(status, Some(400 | 414)),
            "pass" => verdict == Verdict::Continue && challenged_for.is_none() && status.is_none(),
            other => panic!("unknown expectation {other}"),
        };
        if !ok {
            failures.push(format!(
                "{case} -> {verdict:?}, response {status:?}, callout for {challenged_for:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} spellings:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
