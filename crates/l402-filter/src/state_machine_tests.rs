//! Every branch of the request state machine, against an in-memory host.

use std::sync::Arc;

use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint_derived, Grant};
use l402_core::{Challenge, KeyId, KeyRing, Macaroon};
use sha2::{Digest, Sha256};

use crate::config::FilterConfig;
use crate::host::Headers;
use crate::memory_host::{MemoryHost, NOW};
use crate::request::{RequestFilter, Verdict, SERVICE_HEADER, TOKEN_ID_HEADER};
use crate::response::LocalResponse;

const SECRET: [u8; 32] = [0x11; 32];
const PREIMAGE: [u8; 32] = [0x42; 32];
const INVOICE: &str = "lnbcrt10n1pjtest";

fn config_with(extra: serde_json::Value) -> Arc<FilterConfig> {
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

fn config() -> Arc<FilterConfig> {
    config_with(serde_json::json!({}))
}

pub(crate) fn token(service: &str, valid_until: Option<i64>) -> Macaroon {
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

pub(crate) fn authorization(m: &Macaroon) -> Vec<u8> {
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
    let mut filter = RequestFilter::new(config(), Default::default());
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
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"credentials": "aperture"})),
        Default::default(),
    );
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
    respond(
        filter,
        host,
        7,
        &challenge_answer(),
        Some(&challenge_body()),
    );
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
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"revoked_token_ids": [id]})),
        Default::default(),
    );
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
    respond(
        &mut filter,
        &mut host,
        7,
        &challenge_answer(),
        Some(&challenge_body()),
    );
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
        respond(&mut filter, &mut host, 7, &headers, body.as_deref());
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
    respond(&mut filter, &mut host, 7, &headers, None);
    let sent = host.sent.unwrap();
    assert_eq!((sent.status, sent.header("retry-after")), (429, Some("30")));
}

#[test]
fn fail_open_lets_the_request_through_on_faults_only() {
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"fail_open": true})),
        Default::default(),
    );
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    respond(
        &mut filter,
        &mut host,
        7,
        &vec![(":status".into(), b"503".to_vec())],
        None,
    );
    assert!(host.resumed && host.sent.is_none());
    assert!(host.counted("l402_requests_fail_open"));

    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"fail_open": true})),
        Default::default(),
    );
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    filter.on_request_headers(&mut host);
    respond(
        &mut filter,
        &mut host,
        7,
        &challenge_answer(),
        Some(&challenge_body()),
    );
    assert_eq!(
        host.sent.unwrap().status,
        402,
        "a working invoice service still challenges"
    );
}

#[test]
fn dry_run_verifies_and_logs_but_never_blocks() {
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"dry_run": true})),
        Default::default(),
    );
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
    assert!(host.dispatched.is_empty() && host.sent.is_none());
    assert!(host.counted("l402_requests_dry_run_would_reject"));
}

#[test]
fn a_stale_callout_answer_is_ignored() {
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    let (mut filter, _) = run(&mut host);
    respond(
        &mut filter,
        &mut host,
        99,
        &challenge_answer(),
        Some(&challenge_body()),
    );
    assert!(host.sent.is_none() && !host.resumed);
    respond(
        &mut filter,
        &mut host,
        7,
        &challenge_answer(),
        Some(&challenge_body()),
    );
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

fn sent_json(host: &MemoryHost) -> (u32, serde_json::Value) {
    let sent = host.sent.as_ref().expect("a local response");
    (sent.status, serde_json::from_slice(&sent.body).unwrap())
}

#[test]
fn unreadable_path_is_400_and_never_unmatched() {
    let mut host = MemoryHost::request("GET", "/api/\u{0}", &[]);
    host.headers[1].1 = b"/api/\xff".to_vec();
    let (_, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    let (status, body) = sent_json(&host);
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("not visible ASCII"));
    assert!(host.dispatched.is_empty());
    assert!(host.counted("l402_refused_path_not_visible_ascii"));
}

#[test]
fn over_long_path_is_414_not_our_outage() {
    let path = format!("/api/{}", "a".repeat(5000));
    let mut host = MemoryHost::request("GET", &path, &[]);
    run(&mut host);
    assert_eq!(sent_json(&host).0, 414);
    assert!(host.dispatched.is_empty() && host.counted("l402_refused_path_too_long"));
}

#[test]
fn a_long_query_string_is_fine_and_never_leaves_the_filter() {
    let path = format!("/api/x?access_token=s3cret&pad={}", "q".repeat(20_000));
    let mut host = MemoryHost::request("GET", &path, &[]);
    let (mut filter, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    let (_, body) = &host.dispatched[0];
    assert_eq!(body["path"], "/api/x");
    respond(
        &mut filter,
        &mut host,
        7,
        &challenge_answer(),
        Some(&challenge_body()),
    );
    assert!(!host.logs.borrow().iter().any(|l| l.contains("s3cret")));
}

#[test]
fn callout_carries_the_canonical_request_line() {
    let mut host = MemoryHost::request("GET", "//%61pi/./x?q=1", &[]);
    host.headers[2].1 = b"API.Example.COM.:8443".to_vec();
    run(&mut host);
    let (_, body) = &host.dispatched[0];
    assert_eq!(body["path"], "/api/x");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["reason"], "missing");
}

#[test]
fn unmatched_deny_is_404_with_nothing_forwarded() {
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"unmatched": "deny"})),
        Default::default(),
    );
    let mut host = MemoryHost::request("GET", "/other", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    assert_eq!(
        sent_json(&host),
        (404, serde_json::json!({"error": "not found"}))
    );
    assert!(host.counted("l402_requests_denied"));

    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"unmatched": "deny"})),
        Default::default(),
    );
    let mut host = MemoryHost::request("GET", "/free", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
}

#[test]
fn unmatched_can_be_sold_as_a_default_service() {
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"unmatched": {"paid": {"service": "news"}}})),
        Default::default(),
    );
    let mut host = MemoryHost::request("GET", "/anything/else", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    assert_eq!(host.dispatched[0].1["service"], "news");
}

#[test]
fn a_weather_token_cannot_walk_into_another_paid_route() {
    let m = token("weather", None);
    let auth = authorization(&m);
    for path in ["/api/../news/x", "/API/..;/news/x", "/api/%2e%2e/news/x"] {
        let mut host = MemoryHost::request("GET", path, &[("authorization", &auth)]);
        let (_, verdict) = run(&mut host);
        assert_eq!(verdict, Verdict::Pause, "{path}");
        assert!(
            !host.resumed && !host.counted("l402_requests_allowed"),
            "{path}"
        );
        assert_eq!(sent_json(&host).0, 400, "{path}: readings on two services");
        assert!(host.counted("l402_refused_ambiguous_path"));
    }
}

#[test]
fn readings_on_one_service_require_all_their_capabilities() {
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"routes": [
            {"match": {"prefix": "/premium/"}, "service": "weather", "capabilities": ["premium"]},
            {"match": {"prefix": "/api/"}, "service": "weather", "capabilities": ["read"]}
        ]})),
        Default::default(),
    );
    let m = token("weather", None); // grants `read` only
    let mut host = MemoryHost::request(
        "GET",
        "/api/../premium/x",
        &[("authorization", &authorization(&m))],
    );
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    assert_eq!(host.dispatched[0].1["reason"], "missing_capability");
}

#[test]
fn refusals_and_denials_are_only_counted_in_a_dry_run() {
    let json = serde_json::json!({"dry_run": true, "unmatched": "deny"});
    for path in [&b"/api/\xff"[..], b"/other"] {
        let mut filter = RequestFilter::new(config_with(json.clone()), Default::default());
        let mut host = MemoryHost::request("GET", "/", &[]);
        host.headers[1].1 = path.to_vec();
        assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
        assert!(host.sent.is_none() && host.counted("l402_requests_dry_run_would_reject"));
    }
}

#[test]
fn grpc_refusal_is_grpc_invalid_argument() {
    let mut host = MemoryHost::request(
        "POST",
        "/api/svc%2FMethod",
        &[("content-type", b"application/grpc")],
    );
    run(&mut host);
    let sent = host.sent.unwrap();
    assert_eq!((sent.status, sent.header("grpc-status")), (200, Some("3")));
}

#[test]
fn every_l402_credential_is_stripped_and_other_schemes_kept() {
    let m = token("weather", Some(NOW + 60));
    let other = hex::encode(token("news", None).encode());
    let bearer_and_l402 = [b"Bearer for-the-api, ".as_slice(), &authorization(&m)].concat();
    let mut host = MemoryHost::request(
        "GET",
        "/api/x",
        &[
            ("authorization", &bearer_and_l402),
            ("macaroon", other.as_bytes()),
            ("grpc-metadata-macaroon", other.as_bytes()),
        ],
    );
    assert_eq!(run(&mut host).1, Verdict::Continue);
    assert_eq!(
        host.header("authorization"),
        vec![&b"Bearer for-the-api"[..]]
    );
    assert!(host.header("macaroon").is_empty());
    assert!(host.header("grpc-metadata-macaroon").is_empty());
}

#[test]
fn a_token_header_is_a_credential_and_is_stripped_but_a_non_hex_one_is_the_upstreams() {
    let m = token("weather", Some(NOW + 60));
    let mut with_preimage = m.clone();
    with_preimage
        .add_first_party_caveat(format!("preimage={}", hex::encode(PREIMAGE)).into_bytes());
    let hex = hex::encode(with_preimage.encode());
    for name in ["token", "grpc-metadata-token"] {
        let mut host = MemoryHost::request("GET", "/api/x", &[(name, hex.as_bytes())]);
        assert_eq!(run(&mut host).1, Verdict::Continue, "{name}");
        assert!(host.header(name).is_empty(), "{name}");
    }
    let mut host = MemoryHost::request(
        "GET",
        "/api/x",
        &[
            ("authorization", &authorization(&m)),
            ("token", b"api-key.1"),
        ],
    );
    assert_eq!(run(&mut host).1, Verdict::Continue);
    assert_eq!(host.header("token"), vec![&b"api-key.1"[..]]);
    // Ours beside the upstream's, either way round: ours pays and goes, theirs stays.
    for lines in [
        [("token", hex.as_bytes()), ("token", &b"api-key.1"[..])],
        [("token", b"api-key.1"), ("token", hex.as_bytes())],
    ] {
        let mut host = MemoryHost::request("GET", "/api/x", &lines);
        assert_eq!(run(&mut host).1, Verdict::Continue);
        assert_eq!(host.header("token"), vec![&b"api-key.1"[..]]);
    }
}

#[test]
fn credentials_are_kept_when_stripping_is_off() {
    let m = token("weather", None);
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"credentials": "keep"})),
        Default::default(),
    );
    let mut host = MemoryHost::request(
        "GET",
        "/api/x",
        &[("authorization", &authorization(&m)), ("macaroon", b"ab")],
    );
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
    assert_eq!(host.header("authorization").len(), 1);
    assert_eq!(host.header("macaroon").len(), 1);
}

#[test]
fn nothing_is_written_to_a_free_request_without_spoofed_headers() {
    let mut host = MemoryHost::request("GET", "/free", &[]);
    run(&mut host);
    assert_eq!(host.header_writes, 0);
}

#[test]
fn a_listener_without_paid_routes_lets_everything_through() {
    let mut filter = RequestFilter::new(
        config_with(serde_json::json!({"routes": [
            {"match": {"prefix": "/"}, "free": true}
        ]})),
        Default::default(),
    );
    let mut host = MemoryHost::request("GET", "/", &[]);
    host.headers[1].1 = b"/\xff".to_vec();
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
    assert!(host.sent.is_none());
}

/// The callout answer, as the adapter hands it over (a body it read, with its size).
fn respond(
    filter: &mut RequestFilter,
    host: &mut MemoryHost,
    token: u32,
    headers: &Headers,
    body: Option<&[u8]>,
) {
    filter.on_callout_response(host, token, headers, body.map_or(0, <[u8]>::len), body);
}

#[test]
fn an_oversized_answer_is_its_own_failure_and_503() {
    let mut host = MemoryHost::request("GET", "/api/x", &[]);
    let (mut filter, _) = run(&mut host);
    filter.on_callout_response(&mut host, 7, &challenge_answer(), 1 << 20, None);
    assert_eq!(host.sent.as_ref().unwrap().status, 503);
    assert!(host.counted("l402_callout_errors_too_large"));
}

mod credential_cache {
    use super::*;
    use crate::credential_cache::{key_of, Authenticated, CredentialCache};

    fn cached_run(cache: &Arc<CredentialCache>, host: &mut MemoryHost) -> Verdict {
        RequestFilter::new(config(), Default::default())
            .with_cache(Arc::clone(cache))
            .on_request_headers(host)
    }

    #[test]
    fn a_token_is_kept_once_it_authenticates_and_its_caveats_are_checked_every_time() {
        let cache = Arc::new(CredentialCache::new(16));
        let auth = authorization(&token("weather", Some(NOW + 60)));
        let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &auth)]);
        assert_eq!(cached_run(&cache, &mut host), Verdict::Continue);
        assert_eq!(cache.len(), 1);

        let mut again = MemoryHost::request("GET", "/api/y", &[("authorization", &auth)]);
        assert_eq!(cached_run(&cache, &mut again), Verdict::Continue);
        assert!(again.counted("l402_requests_allowed"));

        // The same bytes on another service's route, or after the expiry: challenged.
        let mut news = MemoryHost::request("GET", "/news/x", &[("authorization", &auth)]);
        assert_eq!(cached_run(&cache, &mut news), Verdict::Pause);
        assert_eq!(news.dispatched[0].1["reason"], "wrong_service");
        let mut late = MemoryHost::request("GET", "/api/x", &[("authorization", &auth)]);
        late.seconds_later = 60;
        assert_eq!(cached_run(&cache, &mut late), Verdict::Pause);
        assert_eq!(late.dispatched[0].1["reason"], "expired");
    }

    #[test]
    fn a_hit_skips_authentication_so_only_authenticated_credentials_go_in() {
        let cache = Arc::new(CredentialCache::new(16));
        let mut tampered = token("weather", None);
        tampered.signature[0] ^= 1;
        let bad = authorization(&tampered);
        let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &bad)]);
        assert_eq!(cached_run(&cache, &mut host), Verdict::Pause);
        assert!(cache.is_empty(), "a rejected credential is not kept");

        // Planted under the tampered bytes' key, a good token's authentication is trusted: the
        // lookup is what the filter uses.
        let good = token("weather", None);
        let credential = l402_core::credentials::from_headers([(
            b"authorization".as_slice(),
            authorization(&good).as_slice(),
        )])
        .unwrap();
        let identifier = l402_core::Identifier::decode(&good.identifier).unwrap();
        let key = key_of(&host.request_headers_for_test()).unwrap();
        cache.insert(
            key,
            Arc::new(Authenticated {
                credential,
                identifier,
            }),
        );
        let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &bad)]);
        assert_eq!(cached_run(&cache, &mut host), Verdict::Continue);
    }

    #[test]
    fn a_new_configuration_starts_with_an_empty_cache_and_size_zero_turns_it_off() {
        let auth = authorization(&token("weather", None));
        let off = Arc::new(CredentialCache::new(0));
        let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", &auth)]);
        assert_eq!(cached_run(&off, &mut host), Verdict::Continue);
        assert!(off.is_empty());
        assert_eq!(config().credential_cache_size, 1024);
        let too_big = serde_json::json!({"credential_cache_size": 2_000_000});
        let json = serde_json::json!({
            "invoice_service": {"cluster": "c"},
            "routes": [{"match": {"prefix": "/"}, "service": "s"}],
            "keys": [{"id": 1, "env": "KEY_1"}],
            "credential_cache_size": too_big["credential_cache_size"],
        });
        let env = |_: &str| Some(hex::encode(SECRET));
        let error = FilterConfig::compile(json.to_string().as_bytes(), &env).unwrap_err();
        assert!(
            error.to_string().starts_with("credential_cache_size:"),
            "{error}"
        );
    }
}

/// The answer a filter configured with `extra` gives `headers` once the service sent a challenge.
fn challenged_with(extra: serde_json::Value, headers: &[(&str, &[u8])]) -> LocalResponse {
    let mut filter = RequestFilter::new(config_with(extra), Default::default());
    let mut host = MemoryHost::request("GET", "/api/x", headers);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    respond(
        &mut filter,
        &mut host,
        7,
        &challenge_answer(),
        Some(&challenge_body()),
    );
    host.sent.expect("a challenge")
}

fn www_authenticate(sent: &LocalResponse) -> Vec<&str> {
    sent.headers
        .iter()
        .filter(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_2026_options_are_off_by_default_and_do_what_they_say_when_on() {
    let mut tampered = token("weather", None);
    tampered.signature[0] ^= 1;
    let invalid = authorization(&tampered);
    let invalid: &[(&str, &[u8])] = &[("authorization", &invalid)];
    let default = challenged_with(serde_json::json!({}), invalid);
    assert_eq!((default.status, www_authenticate(&default).len()), (402, 2));

    let on =
        serde_json::json!({"challenge": {"token_line": true, "invalid_credential_status": 401}});
    let sent = challenged_with(on.clone(), invalid);
    assert_eq!(sent.status, 401);
    let lines = www_authenticate(&sent);
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("LSAT macaroon=") && lines[1].starts_with("L402 macaroon="));
    assert!(lines[2].starts_with("L402 version=\"0\", token=\""));
    assert!(lines[2].ends_with(&format!("invoice=\"{INVOICE}\"")));
    // No credential at all is not an invalid one: still 402, with the extra line.
    let missing = challenged_with(on, &[]);
    assert_eq!((missing.status, www_authenticate(&missing).len()), (402, 3));
}

#[test]
fn an_invalid_credential_status_other_than_401_or_402_is_refused_naming_the_field() {
    let raw = serde_json::json!({
        "invoice_service": {"cluster": "c"},
        "routes": [{"match": {"prefix": "/"}, "service": "weather"}],
        "keys": [{"id": 1, "env": "KEY_1"}],
        "challenge": {"invalid_credential_status": 403},
    });
    let env = |_: &str| Some(hex::encode(SECRET));
    let err = FilterConfig::compile(raw.to_string().as_bytes(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("challenge.invalid_credential_status:"),
        "{err}"
    );
}

fn ok_answer() -> Headers {
    vec![(":status".to_string(), b"200".to_vec())]
}

#[test]
fn the_manifest_is_the_services_pricing_of_the_filters_routes_and_never_challenged() {
    let mut host = MemoryHost::request("GET", "/.well-known/l402.json", &[]);
    let (mut filter, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    assert_eq!(host.dispatched_paths, ["/v1/manifest"]);
    let sent = &host.dispatched[0].1;
    let services: Vec<_> = sent["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["service"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(services, [("weather", "/api/*"), ("news", "/news/*")]);
    assert_eq!(
        sent["resources"][0]["capabilities"],
        serde_json::json!(["read"])
    );
    let doc = br#"{"version":"1.0"}"#;
    respond(&mut filter, &mut host, 7, &ok_answer(), Some(doc));
    let answer = host.sent.as_ref().unwrap();
    assert_eq!((answer.status, answer.body.as_slice()), (200, &doc[..]));
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert!(host.counted("l402_requests_manifest"));
}

#[test]
fn a_manifest_that_cannot_be_had_is_503_and_the_request_never_goes_upstream() {
    for body in [&b"[1]"[..], b"not json"] {
        let mut host = MemoryHost::request("GET", "/.well-known/l402.json", &[]);
        let (mut filter, _) = run(&mut host);
        respond(&mut filter, &mut host, 7, &ok_answer(), Some(body));
        assert_eq!(host.sent.as_ref().unwrap().status, 503);
        assert!(!host.resumed);
    }
}

#[test]
fn with_discovery_off_the_well_known_path_is_routed_like_any_other() {
    let config = config_with(serde_json::json!({"discovery": false, "unmatched": "deny"}));
    let mut filter = RequestFilter::new(config, Default::default());
    let mut host = MemoryHost::request("GET", "/.well-known/l402.json", &[]);
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    assert!(host.dispatched.is_empty());
    assert_eq!(host.sent.as_ref().unwrap().status, 404);
}

#[test]
fn a_browser_gets_the_services_page_and_a_program_the_json() {
    let page_answer = |csp: &str| {
        let m = token("weather", None);
        serde_json::json!({"macaroon": to_base64(&m.encode()), "invoice": INVOICE,
            "amount_msat": 10000, "page": {"html": "<p>pay</p>", "content_security_policy": csp}})
        .to_string()
        .into_bytes()
    };
    let browser: &[(&str, &[u8])] = &[("accept", b"text/html,*/*;q=0.8")];
    let mut host = MemoryHost::request("GET", "/api/x", browser);
    let (mut filter, _) = run(&mut host);
    assert_eq!(host.dispatched[0].1["page"], true);
    let body = page_answer("default-src 'none'");
    respond(&mut filter, &mut host, 7, &challenge_answer(), Some(&body));
    let sent = host.sent.as_ref().unwrap();
    assert_eq!(
        (sent.status, sent.body.as_slice()),
        (402, &b"<p>pay</p>"[..])
    );
    assert_eq!(
        sent.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        sent.header("content-security-policy"),
        Some("default-src 'none'")
    );
    assert_eq!(www_authenticate(sent).len(), 2);

    // A policy that could break the header: the JSON answer instead, never the page without it.
    let mut host = MemoryHost::request("GET", "/api/x", browser);
    let (mut filter, _) = run(&mut host);
    let body = page_answer("default-src 'none'\r\nx-evil: 1");
    respond(&mut filter, &mut host, 7, &challenge_answer(), Some(&body));
    assert_eq!(
        host.sent.as_ref().unwrap().header("content-type"),
        Some("application/json")
    );

    for accept in [&b"*/*"[..], b"application/json"] {
        let mut host = MemoryHost::request("GET", "/api/x", &[("accept", accept)]);
        run(&mut host);
        assert!(host.dispatched[0].1.get("page").is_none());
    }
    let grpc: &[(&str, &[u8])] = &[
        ("accept", b"text/html"),
        ("content-type", b"application/grpc"),
    ];
    let mut host = MemoryHost::request("POST", "/api/x", grpc);
    run(&mut host);
    assert!(
        host.dispatched[0].1.get("page").is_none(),
        "gRPC never gets a page"
    );
}

#[test]
fn every_callout_for_a_request_carries_its_id_and_a_bad_id_is_not_passed_on() {
    let id = "5d1e2c3b-9f4a-4e0b-8c7d-6a5b4c3d2e1f";
    for path in ["/api/x", "/.well-known/l402.json"] {
        let mut host = MemoryHost::request("GET", path, &[("x-request-id", id.as_bytes())]);
        run(&mut host);
        assert_eq!(host.dispatched_ids, [Some(id.to_string())], "{path}");
    }
    let too_long = "a".repeat(129);
    for bad in [
        &b"two words"[..],
        b"line\r\nx-evil: 1",
        b"",
        too_long.as_bytes(),
        b"\xff",
    ] {
        let mut host = MemoryHost::request("GET", "/api/x", &[("x-request-id", bad)]);
        run(&mut host);
        assert_eq!(host.dispatched_ids, [None], "{bad:?}");
    }
}

#[test]
fn a_paid_request_reads_neither_accept_nor_the_request_id() {
    let m = token("weather", None);
    let mut host = MemoryHost::request(
        "GET",
        "/api/x",
        &[
            ("authorization", &authorization(&m)),
            ("accept", b"text/html"),
            ("x-request-id", b"abc"),
        ],
    );
    assert_eq!(run(&mut host).1, Verdict::Continue);
    assert!(host.dispatched.is_empty());
    let asked = host.headers_asked.borrow().concat();
    assert!(asked.iter().any(|n| n == "authorization"), "{asked:?}");
    for name in ["accept", "x-request-id"] {
        assert!(!asked.iter().any(|n| n == name), "{name} read: {asked:?}");
    }
}

#[test]
fn a_challenge_reads_accept_and_the_request_id_in_one_pass() {
    let mut host = MemoryHost::request(
        "GET",
        "/api/x",
        &[("accept", b"text/html"), ("x-request-id", b"abc")],
    );
    run(&mut host);
    assert_eq!(host.dispatched_ids, [Some("abc".to_string())]);
    assert_eq!(host.dispatched[0].1["page"], true);
    let asked = host.headers_asked.borrow();
    let names = |read: &Vec<String>| {
        let has = |name: &str| read.iter().any(|n| n == name);
        (has("accept"), has("x-request-id"))
    };
    let reads: Vec<_> = asked
        .iter()
        .map(names)
        .filter(|&n| n != (false, false))
        .collect();
    assert_eq!(reads, [(true, true)], "{asked:?}");
}
