//! Every branch of the request state machine, against an in-memory host.

use std::rc::Rc;

use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint_derived, Grant};
use l402_core::{Challenge, KeyId, KeyRing, Macaroon};
use sha2::{Digest, Sha256};

use crate::config::{FilterConfig, InvoiceService};
use crate::host::{DispatchError, Headers, Host, Level};
use crate::request::{RequestFilter, Verdict, SERVICE_HEADER, TOKEN_ID_HEADER};
use crate::response::LocalResponse;

const SECRET: [u8; 32] = [0x11; 32];
const NOW: i64 = 1_700_000_000;
const PREIMAGE: [u8; 32] = [0x42; 32];
const INVOICE: &str = "lnbcrt10n1pjtest";

/// The host, in memory: records what the filter did to it.
#[derive(Default)]
struct MemoryHost {
    headers: Headers,
    dispatched: Vec<(String, serde_json::Value)>,
    refuse_dispatch: bool,
    sent: Option<LocalResponse>,
    resumed: bool,
    counters: Vec<String>,
}

impl MemoryHost {
    fn request(method: &str, path: &str, extra: &[(&str, &[u8])]) -> Self {
        let mut headers: Headers = vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
            (":authority".into(), b"api.example.com".to_vec()),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_vec())));
        Self {
            headers,
            ..Self::default()
        }
    }

    fn header(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    fn counted(&self, name: &str) -> bool {
        self.counters.iter().any(|c| c == name)
    }
}

impl Host for MemoryHost {
    fn request_headers(&self) -> Headers {
        self.headers.clone()
    }
    fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        self.headers.retain(|(n, _)| n != name);
        if let Some(v) = value {
            self.headers.push((name.to_string(), v.to_vec()));
        }
    }
    fn add_request_header(&mut self, name: &str, value: &[u8]) {
        self.headers.push((name.to_string(), value.to_vec()));
    }
    fn now_unix(&self) -> i64 {
        NOW
    }
    fn client_ip(&self) -> Option<String> {
        Some("203.0.113.9".into())
    }
    fn dispatch(&mut self, service: &InvoiceService, body: Vec<u8>) -> Result<u32, DispatchError> {
        if self.refuse_dispatch {
            return Err(DispatchError::Refused("BadArgument".into()));
        }
        self.dispatched.push((
            service.cluster.clone(),
            serde_json::from_slice(&body).unwrap(),
        ));
        Ok(7)
    }
    fn send_response(&mut self, response: LocalResponse) {
        assert!(self.sent.is_none(), "two local responses");
        self.sent = Some(response);
    }
    fn resume(&mut self) {
        self.resumed = true;
    }
    fn count(&mut self, metric: &str) {
        self.counters.push(metric.to_string());
    }
    fn log(&self, _level: Level, _message: &str) {}
}

fn config_with(extra: serde_json::Value) -> Rc<FilterConfig> {
    let mut json = serde_json::json!({
        "invoice_service": {"cluster": "l402_invoicer", "timeout_ms": 500},
        "routes": [
            {"match": {"exact": "/free"}, "free": true},
            {"match": {"prefix": "/api/"}, "service": "weather", "capabilities": ["read"]},
            {"match": {"prefix": "/news/"}, "service": "news"}
        ],
        "keys": [{"id": 1, "env": "KEY_1"}]
    });
    for (k, v) in extra.as_object().unwrap() {
        json[k] = v.clone();
    }
    let env = |name: &str| (name == "KEY_1").then(|| hex::encode(SECRET));
    FilterConfig::compile(json.to_string().as_bytes(), &env).unwrap()
}

fn config() -> Rc<FilterConfig> {
    config_with(serde_json::json!({}))
}

fn token(service: &str, valid_until: Option<i64>) -> Macaroon {
    let ring = KeyRing::new([(KeyId(1), SECRET.to_vec())]).unwrap();
    let grant = Grant {
        service: service.into(),
        capabilities: vec!["read".into()],
        valid_until,
        ..Grant::default()
    };
    let hash: [u8; 32] = Sha256::digest(PREIMAGE).into();
    mint_derived(&ring, KeyId(1), [3; 28], hash, &aperture_caveats(&grant))
        .unwrap()
        .0
}

fn authorization(m: &Macaroon) -> Vec<u8> {
    format!("L402 {}:{}", to_base64(&m.encode()), hex::encode(PREIMAGE)).into_bytes()
}

fn challenge_answer() -> Headers {
    vec![(":status".into(), b"200".to_vec())]
}

fn challenge_body() -> Vec<u8> {
    let m = token("weather", None);
    serde_json::json!({"macaroon": to_base64(&m.encode()), "invoice": INVOICE, "amount_msat": 10000}).to_string().into_bytes()
}

fn run(host: &mut MemoryHost) -> (RequestFilter, Verdict) {
    let mut filter = RequestFilter::new(config());
    let verdict = filter.on_request_headers(host);
    (filter, verdict)
}

#[test]
fn unmatched_request_passes_untouched_but_spoofed_headers_are_removed() {
    let mut host = MemoryHost::request(
        "GET",
        "/other",
        &[(TOKEN_ID_HEADER, b"spoof"), (SERVICE_HEADER, b"spoof")],
    );
    let (_, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Continue);
    assert!(host.header(TOKEN_ID_HEADER).is_empty() && host.header(SERVICE_HEADER).is_empty());
    assert!(host.dispatched.is_empty() && host.sent.is_none());
    assert!(host.counted("l402_requests_unmatched"));
}

#[test]
fn free_route_passes_without_a_token() {
    let mut host = MemoryHost::request("GET", "/free", &[]);
    assert_eq!(run(&mut host).1, Verdict::Continue);
    assert!(host.counted("l402_requests_free"));
}

#[test]
fn valid_token_continues_without_callout_and_forwards_identity() {
    let m = token("weather", Some(NOW + 60));
    let mut host = MemoryHost::request(
        "GET",
        "/api/x",
        &[
            ("authorization", &authorization(&m)),
            (TOKEN_ID_HEADER, b"spoof"),
        ],
    );
    assert_eq!(run(&mut host).1, Verdict::Continue);
    assert!(host.dispatched.is_empty());
    let expected_id = hex::encode(
        l402_core::Identifier::decode(&m.identifier)
            .unwrap()
            .token_id
            .0,
    );
    assert_eq!(host.header(TOKEN_ID_HEADER), vec![expected_id.as_bytes()]);
    assert_eq!(host.header(SERVICE_HEADER), vec![&b"weather"[..]]);
    assert!(
        host.header("authorization").is_empty(),
        "credential stripped by default"
    );
    assert!(host.counted("l402_requests_allowed"));
}

#[test]
fn aperture_headers_can_be_forwarded_instead() {
    let m = token("weather", None);
    let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &authorization(&m))]);
    let mut filter = RequestFilter::new(config_with(
        serde_json::json!({"forward_aperture_headers": true}),
    ));
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
    let lines = host.header("authorization");
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with(b"LSAT ") && lines[1].starts_with(b"L402 "));
}

fn assert_challenged(host: &mut MemoryHost, filter: &mut RequestFilter, reason: &str) {
    assert_eq!(host.dispatched.len(), 1, "one callout");
    let (cluster, body) = &host.dispatched[0];
    assert_eq!(cluster, "l402_invoicer");
    assert_eq!(body["reason"], reason);
    assert_eq!(body["client_ip"], "203.0.113.9");
    filter.on_callout_response(host, 7, &challenge_answer(), Some(&challenge_body()));
    let sent = host.sent.as_ref().expect("a 402");
    assert_eq!(sent.status, 402);
    let www: Vec<_> = sent
        .headers
        .iter()
        .filter(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(www.len(), 2);
    assert!(www[0].starts_with("LSAT macaroon=\"") && www[1].starts_with("L402 macaroon=\""));
    assert!(Challenge::parse_header(&www[0]).is_ok());
    assert_eq!(sent.header("cache-control"), Some("no-store"));
    assert_eq!(
        sent.header("access-control-expose-headers"),
        Some("WWW-Authenticate")
    );
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["error"], "payment required");
    assert_eq!(body["amount_msat"], 10000);
    assert_eq!(body["invoice"], INVOICE);
    assert!(!host.resumed);
}

#[test]
fn missing_token_gets_a_fresh_challenge() {
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    let (mut filter, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    assert_challenged(&mut host, &mut filter, "missing");
    assert!(host.counted("l402_requests_challenged") && host.counted("l402_rejected_missing"));
}

#[test]
fn expired_token_gets_a_fresh_challenge() {
    let m = token("weather", Some(NOW));
    let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &authorization(&m))]);
    let (mut filter, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    assert_challenged(&mut host, &mut filter, "expired");
}

#[test]
fn wrong_service_tampered_and_malformed_tokens_get_challenges() {
    let mut tampered = token("weather", None);
    tampered.signature[0] ^= 1;
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            authorization(&token("weather", None)),
            "/news/x",
            "wrong_service",
        ),
        (authorization(&tampered), "/api/x", "bad_signature"),
        (b"L402 garbage:00".to_vec(), "/api/x", "malformed"),
        (b"L402 \xff\xfe:\x80".to_vec(), "/api/x", "malformed"),
    ];
    for (value, path, reason) in cases {
        let mut host = MemoryHost::request("GET", path, &[("authorization", &value)]);
        let (mut filter, verdict) = run(&mut host);
        assert_eq!(verdict, Verdict::Pause, "{reason}");
        assert_challenged(&mut host, &mut filter, reason);
    }
}

#[test]
fn revoked_token_gets_a_challenge() {
    let m = token("weather", None);
    let id = hex::encode(
        l402_core::Identifier::decode(&m.identifier)
            .unwrap()
            .token_id
            .0,
    );
    let mut filter =
        RequestFilter::new(config_with(serde_json::json!({"revoked_token_ids": [id]})));
    let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &authorization(&m))]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    assert_challenged(&mut host, &mut filter, "revoked");
}

#[test]
fn grpc_request_gets_grpc_status_13_with_the_challenge() {
    let mut host = MemoryHost::request(
        "POST",
        "/api/svc.Method",
        &[("content-type", b"application/grpc+proto")],
    );
    let (mut filter, _) = run(&mut host);
    filter.on_callout_response(&mut host, 7, &challenge_answer(), Some(&challenge_body()));
    let sent = host.sent.unwrap();
    assert_eq!(sent.status, 200);
    assert_eq!(sent.header("grpc-status"), Some("13"));
    assert_eq!(sent.header("grpc-message"), Some("payment required"));
    assert!(sent
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("LSAT ")));
}

#[test]
fn invoice_service_faults_are_503_and_never_forward() {
    let faults: Vec<(Headers, Option<Vec<u8>>, &str)> = vec![
        (vec![(":status".into(), b"504".to_vec())], None, "timeout"),
        (
            vec![(":status".into(), b"503".to_vec())],
            None,
            "unavailable",
        ),
        (vec![], None, "reset"),
        (
            vec![(":status".into(), b"500".to_vec())],
            Some(b"{}".to_vec()),
            "status",
        ),
        (challenge_answer(), Some(b"not json".to_vec()), "malformed"),
        (
            challenge_answer(),
            Some(br#"{"macaroon":"AAAA","invoice":"lnbc1"}"#.to_vec()),
            "malformed",
        ),
        (
            challenge_answer(),
            Some(br#"{"macaroon":"AgEE","invoice":"lnbc\"1"}"#.to_vec()),
            "malformed",
        ),
    ];
    for (headers, body, kind) in faults {
        let mut host = MemoryHost::request("GET", "/api/x", &[]);
        let (mut filter, _) = run(&mut host);
        filter.on_callout_response(&mut host, 7, &headers, body.as_deref());
        let sent = host
            .sent
            .as_ref()
            .unwrap_or_else(|| panic!("{kind}: no response"));
        assert_eq!(sent.status, 503, "{kind}");
        assert!(sent.header("retry-after").is_some());
        assert!(!host.resumed, "{kind}: request forwarded");
        assert!(
            host.counted(&format!("l402_callout_errors_{kind}")),
            "{kind}: {:?}",
            host.counters
        );
    }
}

#[test]
fn unknown_cluster_is_503_at_dispatch() {
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    host.refuse_dispatch = true;
    let (_, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    assert_eq!(host.sent.as_ref().unwrap().status, 503);
    assert!(host.counted("l402_callout_errors_dispatch"));
}

#[test]
fn rate_limit_passes_through_as_429_with_retry_after() {
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    let (mut filter, _) = run(&mut host);
    let headers = vec![
        (":status".into(), b"429".to_vec()),
        ("retry-after".into(), b"30".to_vec()),
    ];
    filter.on_callout_response(&mut host, 7, &headers, None);
    let sent = host.sent.unwrap();
    assert_eq!((sent.status, sent.header("retry-after")), (429, Some("30")));
}

#[test]
fn fail_open_lets_the_request_through_on_faults_only() {
    let mut filter = RequestFilter::new(config_with(serde_json::json!({"fail_open": true})));
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    filter.on_callout_response(
        &mut host,
        7,
        &vec![(":status".into(), b"503".to_vec())],
        None,
    );
    assert!(host.resumed && host.sent.is_none());
    assert!(host.counted("l402_requests_fail_open"));

    let mut filter = RequestFilter::new(config_with(serde_json::json!({"fail_open": true})));
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    filter.on_request_headers(&mut host);
    filter.on_callout_response(&mut host, 7, &challenge_answer(), Some(&challenge_body()));
    assert_eq!(
        host.sent.unwrap().status,
        402,
        "a working invoice service still challenges"
    );
}

#[test]
fn dry_run_verifies_and_logs_but_never_blocks() {
    let mut filter = RequestFilter::new(config_with(serde_json::json!({"dry_run": true})));
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
    assert!(host.dispatched.is_empty() && host.sent.is_none());
    assert!(host.counted("l402_requests_dry_run_would_reject"));
}

#[test]
fn a_stale_callout_answer_is_ignored() {
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    let (mut filter, _) = run(&mut host);
    filter.on_callout_response(&mut host, 99, &challenge_answer(), Some(&challenge_body()));
    assert!(host.sent.is_none() && !host.resumed);
    filter.on_callout_response(&mut host, 7, &challenge_answer(), Some(&challenge_body()));
    assert_eq!(host.sent.as_ref().unwrap().status, 402);
}

#[test]
fn capability_required_by_the_route_is_enforced() {
    let ring = KeyRing::new([(KeyId(1), SECRET.to_vec())]).unwrap();
    let grant = Grant {
        service: "weather".into(),
        capabilities: vec!["write".into()],
        ..Grant::default()
    };
    let hash: [u8; 32] = Sha256::digest(PREIMAGE).into();
    let m = mint_derived(&ring, KeyId(1), [3; 28], hash, &aperture_caveats(&grant))
        .unwrap()
        .0;
    let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &authorization(&m))]);
    let (mut filter, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    assert_challenged(&mut host, &mut filter, "missing_capability");
}
