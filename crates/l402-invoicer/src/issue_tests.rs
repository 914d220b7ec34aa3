//! Issuing and the HTTP surface, against an in-memory STAND-IN for lnd that signs real BOLT 11
//! invoices; it also produces what real lnd cannot be made to (a mismatching invoice).
//! The same flows against real lnd on regtest are in tests/e2e.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use l402_core::credentials::{Credential, Source};
use l402_core::{KeyId, KeyRing, Macaroon, RevocationList, RootKeySource, Verifier};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use sha2::Digest;
use tower::ServiceExt;

use super::*;
use crate::config::Minting;
use crate::lnd::{CreatedInvoice, NodeStatus};
use crate::pricing::{Catalog, PriceOverride, Service};
use crate::ratelimit::{BucketConfig, RateLimits};

const SECRET: [u8; 32] = [0x42; 32];

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Honest,
    WrongHash,
    WrongAmount,
    Down,
}

/// STAND-IN for lnd: keeps the preimages of the invoices it "created".
struct FakeLnd {
    mode: Mutex<Mode>,
    calls: AtomicUsize,
    preimages: Mutex<Vec<[u8; 32]>>,
}

fn bolt11(payment_hash: [u8; 32], msat: u64) -> String {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[0x11; 32]).unwrap();
    InvoiceBuilder::new(Currency::Regtest)
        .description("test".into())
        .payment_hash(sha256::Hash::from_byte_array(payment_hash))
        .payment_secret(PaymentSecret([42; 32]))
        .duration_since_epoch(std::time::Duration::from_secs(unix_now() as u64))
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(msat)
        .build_signed(|m| secp.sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string()
}

impl InvoiceBackend for FakeLnd {
    async fn create_invoice(
        &self,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        if mode == Mode::Down {
            return Err(BackendError::Unreachable("connection refused".into()));
        }
        let mut preimage = [0u8; 32];
        getrandom::fill(&mut preimage).unwrap();
        self.preimages.lock().unwrap().push(preimage);
        let r_hash: [u8; 32] = sha2::Sha256::digest(preimage).into();
        let (invoice_hash, msat) = match mode {
            Mode::WrongHash => ([9; 32], request.value_msat),
            Mode::WrongAmount => (r_hash, request.value_msat + 1),
            _ => (r_hash, request.value_msat),
        };
        Ok(CreatedInvoice {
            r_hash,
            payment_request: bolt11(invoice_hash, msat),
        })
    }

    async fn status(&self) -> Result<NodeStatus, BackendError> {
        if *self.mode.lock().unwrap() == Mode::Down {
            return Err(BackendError::Unreachable("connection refused".into()));
        }
        Ok(NodeStatus {
            state: "SERVER_ACTIVE".into(),
        })
    }
}

fn issuer(mode: Mode, per_client_burst: u32) -> Issuer<FakeLnd> {
    let weather = Service {
        name: "weather".into(),
        tier: 0,
        capabilities: vec![],
        price_msat: 10_000,
        requests: None,
        overrides: vec![PriceOverride {
            method: None,
            path_prefix: Some("/premium/".into()),
            price_msat: 100_000,
            capabilities: Some(vec!["premium".into()]),
            requests: None,
        }],
        token_lifetime_seconds: Some(3600),
        memo: "weather".into(),
    };
    let bucket = |burst| BucketConfig {
        burst,
        per_second: 0.001,
    };
    Issuer {
        backend: FakeLnd {
            mode: Mutex::new(mode),
            calls: AtomicUsize::new(0),
            preimages: Mutex::new(Vec::new()),
        },
        catalog: Catalog::new(vec![weather]),
        minting: Minting {
            ring: KeyRing::new([(KeyId(1), vec![1; 32]), (KeyId(7), SECRET.to_vec())]).unwrap(),
            key_id: KeyId(7),
        },
        invoice_expiry_seconds: 600,
        counted_lifetime_seconds: 86_400,
        limiter: RateLimiter::new(
            RateLimits {
                store: crate::ratelimit::BucketStore::Memory,
                per_client: bucket(per_client_burst),
                unknown_client: bucket(per_client_burst),
                global: bucket(100),
                max_tracked_clients: 100,
            },
            Instant::now(),
        ),
        store: None,
        metrics: Arc::new(Metrics::default()),
    }
}

fn request<'a>(service: &'a str, path: &'a str) -> ChallengeRequest<'a> {
    ChallengeRequest {
        service: service.into(),
        method: "GET".into(),
        path: path.into(),
        client_ip: Some("198.51.100.7:5000".into()),
        reason: Some("missing".into()),
        host: None,
        page: false,
    }
}

fn verify(issuer: &Issuer<FakeLnd>, answer: &ChallengeAnswer, capabilities: &[String]) {
    let macaroon =
        Macaroon::decode(&l402_core::encoding::from_base64(answer.macaroon.as_bytes()).unwrap())
            .unwrap()
            .0;
    let preimage = *issuer.backend.preimages.lock().unwrap().last().unwrap();
    let verifier = Verifier::new(
        RootKeySource::Derived(KeyRing::new([(KeyId(7), SECRET.to_vec())]).unwrap()),
        RevocationList::default(),
    );
    let credential = Credential {
        macaroon,
        preimage,
        source: Source::Authorization,
    };
    let req = l402_core::Requirement {
        service: "weather",
        capabilities,
        now: unix_now(),
    };
    verifier.verify(&credential, &req).unwrap();
}

#[tokio::test]
async fn issued_token_verifies_with_the_core_once_paid() {
    let issuer = issuer(Mode::Honest, 10);
    let answer = issuer
        .issue(&request("weather", "/weather/today"))
        .await
        .unwrap();
    assert_eq!(answer.amount_msat, 10_000);
    assert!(
        answer.token_id.starts_with("00000007"),
        "minted under mint_key_id"
    );
    let now = unix_now();
    assert!((answer.expires_at - now - 600).abs() <= 1);
    assert!((answer.valid_until.unwrap() - now - 3600).abs() <= 1);
    verify(&issuer, &answer, &[]);

    let bytes = l402_core::encoding::from_base64(answer.macaroon.as_bytes()).unwrap();
    let (macaroon, _) = Macaroon::decode(&bytes).unwrap();
    let caveats: Vec<_> = macaroon
        .first_party_caveats()
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert_eq!(
        caveats,
        [
            "services=weather:0".to_string(),
            "weather_capabilities=".to_string(),
            format!("weather_valid_until={}", answer.valid_until.unwrap()),
        ]
    );
    let identifier = l402_core::Identifier::decode(&macaroon.identifier).unwrap();
    assert_eq!(hex::encode(identifier.payment_hash), answer.payment_hash);
}

#[tokio::test]
async fn premium_path_sells_the_premium_capability_at_its_price() {
    let issuer = issuer(Mode::Honest, 10);
    let answer = issuer
        .issue(&request("weather", "/premium/x"))
        .await
        .unwrap();
    assert_eq!(answer.amount_msat, 100_000);
    verify(&issuer, &answer, &["premium".into()]);
}

#[tokio::test]
async fn invoices_that_do_not_match_are_never_bound_into_a_token() {
    for mode in [Mode::WrongHash, Mode::WrongAmount] {
        let issuer = issuer(mode, 10);
        let err = issuer
            .issue(&request("weather", "/weather/x"))
            .await
            .unwrap_err();
        assert!(matches!(err, IssueError::InvoiceMismatch(_)), "{err}");
        assert!(!issuer.metrics.render().contains("challenges_issued_total{"));
        assert!(issuer
            .metrics
            .render()
            .contains("l402_lnd_errors_total{kind=\"bad_response\"} 1"));
    }
}

#[tokio::test]
async fn unknown_service_and_rate_limit_never_reach_lnd() {
    let issuer = issuer(Mode::Honest, 1);
    let err = issuer.issue(&request("nope", "/")).await.unwrap_err();
    assert!(matches!(err, IssueError::UnknownService(_)));
    issuer.issue(&request("weather", "/")).await.unwrap();
    let err = issuer.issue(&request("weather", "/")).await.unwrap_err();
    assert!(matches!(err, IssueError::RateLimited(_)));
    assert_eq!(issuer.backend.calls.load(Ordering::SeqCst), 1);
}

async fn call(
    issuer: Issuer<FakeLnd>,
    method: &str,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let app = crate::http::router(crate::http::App::without_store(Arc::new(issuer)), 1024);
    let response = app
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&bytes).into(),
    ));
    (status, retry_after, json)
}

fn body(service: &str) -> Vec<u8> {
    serde_json::json!({"service": service, "method": "GET", "path": "/weather/a", "host": "h",
                       "client_ip": "203.0.113.5:1234", "reason": "missing", "future_field": 1})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn http_answers_the_challenge_with_every_field() {
    let (status, _, json) = call(
        issuer(Mode::Honest, 10),
        "POST",
        "/v1/challenges",
        body("weather"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for key in [
        "macaroon",
        "invoice",
        "payment_hash",
        "amount_msat",
        "expires_at",
        "token_id",
        "valid_until",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert!(json["invoice"].as_str().unwrap().starts_with("lnbcrt"));
}

#[tokio::test]
async fn http_errors_are_json_with_the_right_status() {
    let cases: [(Mode, &str, &str, Vec<u8>, StatusCode); 6] = [
        (
            Mode::Honest,
            "POST",
            "/v1/challenges",
            body("nope"),
            StatusCode::NOT_FOUND,
        ),
        (
            Mode::Honest,
            "POST",
            "/v1/challenges",
            b"not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Mode::Honest,
            "POST",
            "/v1/challenges",
            b"{\"method\":\"GET\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Mode::Honest,
            "POST",
            "/v1/challenges",
            vec![b' '; 4096],
            StatusCode::BAD_REQUEST,
        ),
        (
            Mode::Down,
            "POST",
            "/v1/challenges",
            body("weather"),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            Mode::Honest,
            "GET",
            "/nowhere",
            vec![],
            StatusCode::NOT_FOUND,
        ),
    ];
    for (mode, method, uri, payload, expected) in cases {
        let (status, _, json) = call(issuer(mode, 10), method, uri, payload).await;
        assert_eq!(status, expected, "{json}");
        assert!(json["error"].is_string(), "{json}");
    }
    let (_, _, json) = call(
        issuer(Mode::Down, 10),
        "POST",
        "/v1/challenges",
        body("weather"),
    )
    .await;
    assert_eq!(json["error"], "lnd unreachable: connection refused");
}

#[tokio::test]
async fn http_rate_limit_is_429_with_retry_after() {
    let issuer = Arc::new(issuer(Mode::Honest, 1));
    let app = crate::http::router(crate::http::App::without_store(issuer.clone()), 1024);
    let post = || {
        Request::builder()
            .method("POST")
            .uri("/v1/challenges")
            .body(Body::from(body("weather")))
            .unwrap()
    };
    assert_eq!(
        app.clone().oneshot(post()).await.unwrap().status(),
        StatusCode::OK
    );
    let limited = app.oneshot(post()).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(issuer
        .metrics
        .render()
        .contains("l402_rate_limited_total{scope=\"client\"} 1"));
}

#[tokio::test]
async fn probes_report_the_node() {
    let (status, _, json) = call(issuer(Mode::Honest, 10), "GET", "/readyz", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["lnd_state"], "SERVER_ACTIVE");
    let (status, _, _) = call(issuer(Mode::Down, 10), "GET", "/readyz", vec![]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = call(issuer(Mode::Down, 10), "GET", "/healthz", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, text) = call(issuer(Mode::Honest, 10), "GET", "/metrics", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.as_str().unwrap().contains("# EOF"));
}

#[tokio::test]
async fn a_query_string_never_reaches_pricing() {
    let issuer = issuer(Mode::Honest, 10);
    let mut sneaky = request("weather", "/weather/x?/premium/");
    let answer = issuer.issue(&sneaky).await.unwrap();
    assert_eq!(answer.amount_msat, 10_000);
    sneaky.path = "/premium/x?access_token=s3cret".into();
    assert_eq!(sneaky.path_only(), "/premium/x");
    assert_eq!(issuer.issue(&sneaky).await.unwrap().amount_msat, 100_000);
}

#[tokio::test]
async fn requests_without_a_client_address_have_their_own_counted_bucket() {
    let issuer = issuer(Mode::Honest, 2);
    let mut anonymous = request("weather", "/weather/x");
    anonymous.client_ip = None;
    for _ in 0..2 {
        issuer.issue(&anonymous).await.unwrap();
    }
    let Err(IssueError::RateLimited(limited)) = issuer.issue(&anonymous).await else {
        panic!("the third anonymous challenge is refused")
    };
    assert_eq!(limited.scope(), "unknown_client");
    // A client whose address is known is not held up by them.
    issuer
        .issue(&request("weather", "/weather/x"))
        .await
        .unwrap();
    let text = issuer.metrics.render();
    assert!(
        text.contains("l402_challenges_without_client_address_total 3"),
        "{text}"
    );
    assert!(text.contains("l402_rate_limited_total{scope=\"unknown_client\"} 1"));
}

#[tokio::test]
async fn without_a_store_counted_tokens_and_revocations_answer_what_is_missing() {
    let lease = serde_json::json!({"service": "weather", "token": "AgE:00", "want": 10});
    let (status, _, json) = call(
        issuer(Mode::Honest, 10),
        "POST",
        "/v1/quota/leases",
        lease.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        json["error"].as_str().unwrap().contains("[redis]"),
        "{json}"
    );

    let (status, _, _) = call(
        issuer(Mode::Honest, 10),
        "POST",
        "/v1/quota/leases",
        b"{".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _, _) = call(
        issuer(Mode::Honest, 10),
        "GET",
        "/v1/revocations?after=0",
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = call(
        issuer(Mode::Honest, 10),
        "GET",
        "/v1/revocations?after=x",
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let revoke = serde_json::json!({"token_id": "00".repeat(32)})
        .to_string()
        .into_bytes();
    let (status, _, json) = call(issuer(Mode::Honest, 10), "POST", "/v1/revocations", revoke).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoking is off without [admin]"
    );
    assert!(
        json["error"].as_str().unwrap().contains("[admin]"),
        "{json}"
    );
}

#[tokio::test]
async fn a_counted_token_never_outlives_its_count() {
    let mut issuer = issuer(Mode::Honest, 10);
    let unlimited = |requests| Service {
        name: "bulk".into(),
        tier: 0,
        capabilities: vec![],
        price_msat: 1_000,
        requests,
        overrides: vec![],
        token_lifetime_seconds: None,
        memo: "bulk".into(),
    };
    issuer.catalog = Catalog::new(vec![unlimited(Some(100))]);
    let counted = issuer.issue(&request("bulk", "/bulk")).await.unwrap();
    let now = unix_now();
    let until = counted.valid_until.expect("a counted token expires");
    assert!((until - now - 86_400).abs() <= 1, "{until} - {now}");

    issuer.catalog = Catalog::new(vec![unlimited(None)]);
    let plain = issuer.issue(&request("bulk", "/bulk")).await.unwrap();
    assert_eq!(plain.valid_until, None, "a plain token keeps no lifetime");
}

#[tokio::test]
async fn every_answer_names_the_request_id_it_was_logged_under() {
    let app = crate::http::router(
        crate::http::App::without_store(Arc::new(issuer(Mode::Honest, 10))),
        1024,
    );
    let answered_id = |id: Option<&'static [u8]>| {
        let app = app.clone();
        async move {
            let mut request = Request::builder().method("POST").uri("/v1/challenges");
            if let Some(id) = id {
                request = request.header("x-request-id", id);
            }
            let response = app
                .oneshot(request.body(Body::from(body("weather"))).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let envoys = "5d1e2c3b-9f4a-4e0b-8c7d-6a5b4c3d2e1f";
    assert_eq!(answered_id(Some(envoys.as_bytes())).await, envoys);
    for unusable in [None, Some(&b"two words"[..]), Some(&[b'a'; 129][..])] {
        let made = answered_id(unusable).await;
        assert!(
            made.len() == 32 && made.bytes().all(|b| b.is_ascii_hexdigit()),
            "{made}"
        );
    }
}
