//! The filter's per-request work natively, with the shipped envoy.yaml routes: reading the
//! request line (canonical path, host, method) and deciding the route, for an ordinary path and
//! for a disputed spelling; and a whole paid request with a valid token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint_derived, Grant};
use l402_core::{KeyId, KeyRing};
use l402_filter::canonical::RequestLine;
use l402_filter::config::{FilterConfig, InvoiceService};
use l402_filter::host::{Call, DispatchError, Headers, Host, Level};
use l402_filter::metrics::Counter;
use l402_filter::request::RequestFilter;
use l402_filter::response::LocalResponse;
use sha2::{Digest, Sha256};

#[path = "../../../tests/common/shipped.rs"]
mod shipped;

const NOW: i64 = 1_700_000_000;
const SECRET: [u8; 32] = [0x5e; 32];

fn config() -> Arc<FilterConfig> {
    let env = |_: &str| Some(hex::encode(SECRET));
    FilterConfig::compile(shipped::envoy_plugin_json().as_bytes(), &env).unwrap()
}

fn line(method: &str, path: &str) -> Headers {
    vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"api.example.com".to_vec()),
        ("user-agent".into(), b"bench".to_vec()),
        ("accept".into(), b"*/*".to_vec()),
    ]
}

/// The least a host can do: hand over the headers, count nothing.
struct BenchHost(Headers);

impl Host for BenchHost {
    fn request_headers(&self, names: &[&str]) -> Headers {
        l402_filter::host::only(self.0.clone(), names)
    }
    fn set_request_header(&mut self, _: &str, _: Option<&[u8]>) {}
    fn add_request_header(&mut self, _: &str, _: &[u8]) {}
    fn now_unix(&self) -> i64 {
        NOW
    }
    fn now_millis(&self) -> u64 {
        NOW as u64 * 1000
    }
    fn client_ip(&self) -> Option<String> {
        None
    }
    fn dispatch(&mut self, _: &InvoiceService, _: Call<'_>) -> Result<u32, DispatchError> {
        Ok(1)
    }
    fn send_response(&mut self, _: LocalResponse) {}
    fn resume(&mut self) {}
    fn count_by(&mut self, _: Counter, _: u64) {}
    fn log(&self, _: Level, _: &str) {}
}

fn bench(c: &mut Criterion) {
    let config = config();
    for (name, path) in [
        ("request line: ordinary path", "/weather/today?units=metric"),
        (
            "request line: disputed spelling",
            "//Weather/./x;a=1/../today",
        ),
    ] {
        let headers = line("GET", path);
        c.bench_function(name, |b| {
            b.iter(|| {
                let line = RequestLine::read(black_box(&headers), &config.path_rules).unwrap();
                black_box(config.routes.decide(&line));
            })
        });
    }

    let ring = KeyRing::new([(KeyId(1), SECRET.to_vec())]).unwrap();
    let preimage = [7u8; 32];
    let grant = Grant {
        service: "weather".into(),
        valid_until: Some(NOW + 3600),
        requests: None,
        ..Grant::default()
    };
    let hash: [u8; 32] = Sha256::digest(preimage).into();
    let (macaroon, _) =
        mint_derived(&ring, KeyId(1), [9; 28], hash, &aperture_caveats(&grant)).unwrap();
    let mut headers = line("GET", "/weather/today");
    let credential = format!(
        "L402 {}:{}",
        to_base64(&macaroon.encode()),
        hex::encode(preimage)
    );
    headers.push(("authorization".into(), credential.into_bytes()));
    let mut host = BenchHost(headers);
    c.bench_function("paid request, valid token (whole filter)", |b| {
        b.iter(|| {
            let mut filter = RequestFilter::new(config.clone(), Default::default());
            black_box(filter.on_request_headers(&mut host));
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
