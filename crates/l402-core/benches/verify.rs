//! Verifying a typical token (Aperture's four caveats) with a derived root key: the filter's
//! per-request cost. Target: under 5 µs native.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint_derived, Grant};
use l402_core::{
    credentials, KeyId, KeyRing, Requirement, RevocationList, RootKeySource, Verifier,
};
use sha2::{Digest, Sha256};

const NOW: i64 = 1_700_000_000;

fn typical_header(ring: &KeyRing) -> String {
    let preimage = [7u8; 32];
    let payment_hash: [u8; 32] = Sha256::digest(preimage).into();
    let grant = Grant {
        service: "api".into(),
        tier: 0,
        capabilities: vec!["read".into(), "write".into()],
        constraints: vec![("api_rate".into(), "10".into())],
        valid_until: Some(NOW + 3600),
        requests: None,
    };
    let (macaroon, _) = mint_derived(
        ring,
        KeyId(1),
        [9; 28],
        payment_hash,
        &aperture_caveats(&grant),
    )
    .unwrap();
    format!(
        "L402 {}:{}",
        to_base64(&macaroon.encode()),
        hex::encode(preimage)
    )
}

fn bench(c: &mut Criterion) {
    let ring = KeyRing::new([(KeyId(1), vec![1; 32])]).unwrap();
    let header = typical_header(&ring);
    let verifier = Verifier::new(RootKeySource::Derived(ring), RevocationList::default());
    let caps = vec!["read".to_string()];
    let req = Requirement {
        service: "api",
        capabilities: &caps,
        now: NOW,
    };
    let headers = [
        (&b"host"[..], &b"api.example.com"[..]),
        (&b"user-agent"[..], &b"curl/8"[..]),
        (&b"authorization"[..], header.as_bytes()),
    ];
    verifier.verify_headers(headers, &req).unwrap();

    c.bench_function("parse_and_verify_4_caveats", |b| {
        b.iter(|| {
            verifier
                .verify_headers(black_box(headers), black_box(&req))
                .is_ok()
        })
    });
    let credential = credentials::from_headers(headers).unwrap();
    c.bench_function("verify_parsed_4_caveats", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&credential), black_box(&req))
                .is_ok()
        })
    });
    c.bench_function("parse_credential_only", |b| {
        b.iter(|| credentials::from_headers(black_box(headers)).is_ok())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
