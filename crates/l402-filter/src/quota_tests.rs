//! Counted tokens in the request state machine, against an in-memory host: served from a block
//! without a callout, asked for when there is none, used up, held elsewhere, store down, revoked.

use std::sync::Arc;

use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint_derived, Grant};
use l402_core::{KeyId, KeyRing, Macaroon, TokenId};
use sha2::{Digest, Sha256};

use crate::config::FilterConfig;
use crate::host::Headers;
use crate::memory_host::MemoryHost;
use crate::request::{RequestFilter, Verdict, REQUESTS_REMAINING_HEADER};
use crate::worker::Worker;

const SECRET: [u8; 32] = [0x11; 32];
const PREIMAGE: [u8; 32] = [0x42; 32];

fn config(extra: serde_json::Value) -> Arc<FilterConfig> {
    let mut json = serde_json::json!({
        "invoice_service": {"cluster": "l402_invoicer"},
        "routes": [{"match": {"prefix": "/api/"}, "service": "weather"}],
        "keys": [{"id": 1, "env": "KEY_1"}],
        "quota": {"lease_size": 10, "idle_return_ms": 1000, "remaining_header": true}
    });
    for (k, v) in extra.as_object().unwrap() {
        json[k] = v.clone();
    }
    let env = |name: &str| (name == "KEY_1").then(|| hex::encode(SECRET));
    FilterConfig::compile(json.to_string().as_bytes(), &env).unwrap()
}

fn counted(requests: Option<u64>) -> (Macaroon, TokenId) {
    let ring = KeyRing::new([(KeyId(1), SECRET.to_vec())]).unwrap();
    let grant = Grant {
        service: "weather".into(),
        requests,
        ..Grant::default()
    };
    let hash: [u8; 32] = Sha256::digest(PREIMAGE).into();
    let (m, id) = mint_derived(&ring, KeyId(1), [5; 28], hash, &aperture_caveats(&grant)).unwrap();
    (m, id.token_id)
}

fn request(m: &Macaroon, millis: u64) -> MemoryHost {
    let auth = format!("L402 {}:{}", to_base64(&m.encode()), hex::encode(PREIMAGE));
    let mut host = MemoryHost::request("GET", "/api/x", &[("authorization", auth.as_bytes())]);
    host.millis = millis;
    host
}

fn ok(body: serde_json::Value) -> (Headers, Vec<u8>) {
    (
        vec![(":status".into(), b"200".to_vec())],
        body.to_string().into_bytes(),
    )
}

fn answer(
    filter: &mut RequestFilter,
    host: &mut MemoryHost,
    token: u32,
    reply: (Headers, Vec<u8>),
) {
    let (headers, body) = reply;
    filter.on_callout_response(host, token, &headers, body.len(), Some(&body));
}

fn lease(granted: u32, remaining: u64, held: u32) -> (Headers, Vec<u8>) {
    ok(serde_json::json!({
        "granted": granted, "lease": if granted > 1 { "00112233445566778899aabbccddeeff" } else { "" },
        "remaining": remaining, "held": held, "hold_ms": 5000
    }))
}

#[test]
fn a_plain_token_makes_no_callout() {
    let (m, _) = counted(None);
    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config(serde_json::json!({})), Default::default());
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Continue);
    assert!(host.dispatched.is_empty());
    assert!(!host.counters.iter().any(|c| c.starts_with("l402_quota_")));
}

#[test]
fn a_cached_counted_token_is_still_counted_on_every_request() {
    let cache = Arc::new(crate::credential_cache::CredentialCache::new(16));
    let (m, _) = counted(Some(50));
    let config = config(serde_json::json!({}));
    let worker = Arc::new(Worker::default());
    let run = |host: &mut MemoryHost| {
        let mut filter =
            RequestFilter::new(config.clone(), worker.clone()).with_cache(Arc::clone(&cache));
        let verdict = filter.on_request_headers(host);
        (filter, verdict)
    };
    let mut host = request(&m, 0);
    let (mut filter, verdict) = run(&mut host);
    assert_eq!(verdict, Verdict::Pause);
    assert_eq!(cache.len(), 1, "the authentication is kept");
    answer(&mut filter, &mut host, 7, lease(2, 48, 1));
    assert!(host.resumed);

    // A cache hit serves the block's second unit, and the next request asks for another.
    let mut second = request(&m, 1);
    assert_eq!(run(&mut second).1, Verdict::Continue);
    assert!(second.dispatched.is_empty());
    assert_eq!(second.header(REQUESTS_REMAINING_HEADER), vec![&b"48"[..]]);
    let mut third = request(&m, 2);
    assert_eq!(run(&mut third).1, Verdict::Pause);
    assert_eq!(third.dispatched_paths, ["/v1/quota/leases"]);
}

#[test]
fn a_counted_token_asks_once_then_serves_from_its_block() {
    let (m, _) = counted(Some(50));
    let config = config(serde_json::json!({}));
    let worker = Arc::new(Worker::default());

    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config.clone(), worker.clone());
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    assert_eq!(host.dispatched_paths, ["/v1/quota/leases"]);
    let asked = &host.dispatched[0].1;
    assert_eq!(asked["want"], 10);
    assert_eq!(asked["service"], "weather");
    assert!(asked["token"]
        .as_str()
        .unwrap()
        .ends_with(&hex::encode(PREIMAGE)));
    answer(&mut filter, &mut host, 7, lease(3, 40, 1));
    assert!(host.resumed && host.sent.is_none());
    assert_eq!(host.header(REQUESTS_REMAINING_HEADER), vec![&b"42"[..]]);
    assert!(
        host.header("authorization").is_empty(),
        "credential stripped"
    );

    for (n, left) in [(1, "41"), (2, "40")] {
        let mut host = request(&m, n);
        let mut filter = RequestFilter::new(config.clone(), worker.clone());
        assert_eq!(
            filter.on_request_headers(&mut host),
            Verdict::Continue,
            "from the block"
        );
        assert!(host.dispatched.is_empty());
        assert!(
            !host.counted("l402_quota_served_from_block"),
            "counted by the timer"
        );
        assert_eq!(
            host.header(REQUESTS_REMAINING_HEADER),
            vec![left.as_bytes()]
        );
    }
    assert_eq!(worker.take_served_from_blocks(), 2);
    let mut host = request(&m, 3);
    let mut filter = RequestFilter::new(config, worker);
    assert_eq!(
        filter.on_request_headers(&mut host),
        Verdict::Pause,
        "block used up: ask again"
    );
}

#[test]
fn a_used_up_token_gets_a_fresh_challenge() {
    let (m, _) = counted(Some(5));
    let mut host = request(&m, 0);
    // Read while in the request's headers, and kept for the challenge asked after the answer.
    host.headers
        .push(("x-request-id".into(), b"req-1".to_vec()));
    let mut filter = RequestFilter::new(config(serde_json::json!({})), Default::default());
    filter.on_request_headers(&mut host);
    answer(&mut filter, &mut host, 7, lease(0, 0, 0));
    assert!(host.counted("l402_rejected_quota_exhausted"));
    assert_eq!(
        host.dispatched_paths,
        ["/v1/quota/leases", "/v1/challenges"]
    );
    assert_eq!(host.dispatched[1].1["reason"], "quota_exhausted");
    assert_eq!(host.dispatched[1].1["path"], "/api/x");
    assert_eq!(
        host.dispatched_ids,
        [Some("req-1".into()), Some("req-1".into())]
    );
    assert!(
        !host.resumed && host.sent.is_none(),
        "waits for the challenge"
    );
}

#[test]
fn a_zero_count_is_used_up_without_asking() {
    let (m, _) = counted(Some(0));
    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config(serde_json::json!({})), Default::default());
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    assert_eq!(host.dispatched_paths, ["/v1/challenges"]);
}

#[test]
fn units_held_by_other_workers_mean_retry_shortly() {
    let (m, _) = counted(Some(5));
    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config(serde_json::json!({})), Default::default());
    filter.on_request_headers(&mut host);
    answer(&mut filter, &mut host, 7, lease(0, 0, 2));
    let sent = host.sent.as_ref().unwrap();
    assert_eq!(sent.status, 429);
    assert_eq!(sent.header("retry-after"), Some("2"));
    assert!(host.counted("l402_quota_held_elsewhere"));
}

#[test]
fn no_permission_is_a_503_even_with_fail_open() {
    let (m, _) = counted(Some(5));
    for reply in [
        (vec![(":status".into(), b"503".to_vec())], Vec::new()),
        (
            vec![(":status".into(), b"200".to_vec())],
            b"garbage".to_vec(),
        ),
        (vec![], Vec::new()),
    ] {
        let mut host = request(&m, 0);
        let config = config(serde_json::json!({"fail_open": true}));
        let mut filter = RequestFilter::new(config, Default::default());
        filter.on_request_headers(&mut host);
        answer(&mut filter, &mut host, 7, reply);
        assert_eq!(host.sent.as_ref().map(|r| r.status), Some(503));
        assert!(!host.resumed);
        assert!(host.counted("l402_quota_unavailable"));
    }
}

#[test]
fn with_revocation_sync_nothing_paid_is_served_before_the_first_read() {
    let (m, id) = counted(None);
    let config = config(serde_json::json!({"revocations": {"sync_interval_ms": 1000}}));
    let worker = Arc::new(Worker::default());
    let mut host = request(&m, 0);
    RequestFilter::new(config.clone(), worker.clone()).on_request_headers(&mut host);
    assert_eq!(host.sent.as_ref().map(|r| r.status), Some(503));
    assert!(host.counted("l402_revocations_unsynced"));

    worker.tick(0, &config.counting);
    let page = serde_json::json!({"ids": [id.to_hex()], "cursor": 1, "epoch": "e"});
    worker
        .sync_answered(page.to_string().as_bytes(), 0, &config.counting)
        .unwrap();
    let mut host = request(&m, 0);
    RequestFilter::new(config.clone(), worker.clone()).on_request_headers(&mut host);
    assert!(
        host.counted("l402_rejected_revoked"),
        "revoked in the shared store"
    );
    assert_eq!(host.dispatched_paths, ["/v1/challenges"]);
}

#[test]
fn a_dry_run_lets_counted_tokens_through_whatever_the_answer() {
    let (m, _) = counted(Some(5));
    let dry = serde_json::json!({"dry_run": true});
    for reply in [
        lease(0, 0, 0),
        lease(0, 0, 2),
        (vec![(":status".into(), b"503".to_vec())], Vec::new()),
    ] {
        let mut host = request(&m, 0);
        let mut filter = RequestFilter::new(config(dry.clone()), Default::default());
        filter.on_request_headers(&mut host);
        answer(&mut filter, &mut host, 7, reply);
        assert!(host.resumed && host.sent.is_none());
        assert!(host.counted("l402_requests_dry_run_would_reject"));
    }
    let unsynced = serde_json::json!({"dry_run": true, "revocations": {"sync_interval_ms": 1000}});
    let mut host = request(&m, 0);
    let verdict =
        RequestFilter::new(config(unsynced), Default::default()).on_request_headers(&mut host);
    assert_eq!(verdict, Verdict::Continue);
    assert!(host.sent.is_none(), "{:?}", host.sent);
    assert!(
        !host.counted("l402_callout_errors_unavailable"),
        "{:?}",
        host.counters
    );
}

#[test]
fn the_remaining_header_is_opt_in() {
    let (m, _) = counted(Some(50));
    let mut host = request(&m, 0);
    let off = serde_json::json!({"quota": {"lease_size": 10}});
    let mut filter = RequestFilter::new(config(off), Default::default());
    filter.on_request_headers(&mut host);
    answer(&mut filter, &mut host, 7, lease(3, 40, 1));
    assert!(host.resumed);
    assert!(host.header(REQUESTS_REMAINING_HEADER).is_empty());
}

#[test]
fn a_used_up_block_goes_with_the_next_lease_request_or_back_to_the_timer() {
    let (m, _) = counted(Some(50));
    let config = config(serde_json::json!({}));
    let worker = Arc::new(Worker::default());
    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config.clone(), worker.clone());
    filter.on_request_headers(&mut host);
    answer(&mut filter, &mut host, 7, lease(2, 40, 1));
    let mut host = request(&m, 1);
    RequestFilter::new(config.clone(), worker.clone()).on_request_headers(&mut host);
    assert!(
        host.dispatched.is_empty(),
        "served from the block, now used up"
    );

    let mut host = request(&m, 2);
    let mut filter = RequestFilter::new(config.clone(), worker.clone());
    filter.on_request_headers(&mut host);
    assert_eq!(
        host.dispatched[0].1["done"],
        "00112233445566778899aabbccddeeff"
    );
    assert!(worker
        .tick(3, &config.counting)
        .iter()
        .all(|c| c.path != "/v1/quota/returns"));
    let down = (vec![(":status".into(), b"503".to_vec())], Vec::new());
    answer(&mut filter, &mut host, 7, down);
    let returns: Vec<_> = worker
        .tick(4, &config.counting)
        .into_iter()
        .filter(|c| c.path == "/v1/quota/returns")
        .collect();
    assert_eq!(
        returns.len(),
        1,
        "the hand-in failed: the timer gives the block back"
    );
}

#[test]
fn an_attenuated_copy_is_not_served_from_the_original_copys_block() {
    let (m, _) = counted(Some(50));
    let mut fewer = m.clone();
    fewer.add_first_party_caveat(b"weather_requests=5".to_vec());
    let config = config(serde_json::json!({}));
    let worker = Arc::new(Worker::default());
    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config.clone(), worker.clone());
    assert_eq!(filter.on_request_headers(&mut host), Verdict::Pause);
    answer(&mut filter, &mut host, 7, lease(10, 40, 1));

    // The lent copy's ceiling is the service's to enforce: it asks, and is refused there.
    let mut lent = request(&fewer, 1);
    let mut filter = RequestFilter::new(config.clone(), worker.clone());
    assert_eq!(filter.on_request_headers(&mut lent), Verdict::Pause);
    assert_eq!(lent.dispatched_paths, ["/v1/quota/leases"]);

    let mut again = request(&m, 2);
    let mut filter = RequestFilter::new(config, worker);
    assert_eq!(filter.on_request_headers(&mut again), Verdict::Continue);
    assert!(
        again.dispatched.is_empty(),
        "the original copy keeps its block"
    );
}

#[test]
fn a_used_up_token_is_never_let_through_by_fail_open() {
    let (m, _) = counted(Some(5));
    let config = config(serde_json::json!({"fail_open": true}));
    // The challenge callout fails after the answer, or cannot be made at all.
    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config.clone(), Default::default());
    filter.on_request_headers(&mut host);
    answer(&mut filter, &mut host, 7, lease(0, 0, 0));
    answer(&mut filter, &mut host, 8, (vec![], Vec::new()));
    assert_eq!(host.sent.as_ref().map(|r| r.status), Some(503));
    assert!(!host.resumed && !host.counted("l402_requests_fail_open"));

    let mut host = request(&m, 0);
    let mut filter = RequestFilter::new(config, Default::default());
    filter.on_request_headers(&mut host);
    host.refuse_dispatch = true;
    answer(&mut filter, &mut host, 7, lease(0, 0, 0));
    assert_eq!(host.sent.as_ref().map(|r| r.status), Some(503));
    assert!(!host.resumed && !host.counted("l402_requests_fail_open"));
}
