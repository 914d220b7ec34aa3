//! The host-independent filter driven with arbitrary request headers and an arbitrary answer
//! from the invoice service (status, headers and body): whatever arrives, no panic (natively a
//! panic would be caught and turned into a 503; here it is a finding), and every request ends
//! in exactly one outcome.
#![no_main]

use std::sync::Arc;

use l402_filter::config::{FilterConfig, InvoiceService};
use l402_filter::host::{Call, DispatchError, Headers, Host, Level};
use l402_filter::metrics::Counter;
use l402_filter::request::{RequestFilter, Verdict};
use l402_filter::response::LocalResponse;
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"{
  "invoice_service": {"cluster": "l402_invoicer"},
  "routes": [
    {"match": {"exact": "/free"}, "free": true},
    {"match": {"prefix": "/api/"}, "service": "weather", "capabilities": ["read"]},
    {"match": {"regex": "^/v[0-9]+/items/[a-z]+$"}, "service": "items", "methods": ["GET"]},
    {"match": {"prefix": "/counted/"}, "service": "counted"}
  ],
  "keys": [{"id": 1, "env": "KEY_1"}],
  "quota": {"lease_size": 5, "remaining_header": true}
}"#;

#[derive(Default)]
struct FuzzHost {
    headers: Headers,
    dispatched: bool,
    sent: usize,
    resumed: bool,
}

impl Host for FuzzHost {
    fn request_headers(&self, names: &[&str]) -> Headers {
        l402_filter::host::only(self.headers.clone(), names)
    }
    fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        self.headers.retain(|(n, _)| n != name);
        if let Some(v) = value {
            self.headers.push((name.into(), v.to_vec()));
        }
    }
    fn add_request_header(&mut self, name: &str, value: &[u8]) {
        self.headers.push((name.into(), value.to_vec()));
    }
    fn now_unix(&self) -> i64 {
        1_700_000_000
    }
    fn now_millis(&self) -> u64 {
        1_700_000_000_000
    }
    fn client_ip(&self) -> Option<String> {
        Some("203.0.113.9".into())
    }
    fn dispatch(&mut self, _: &InvoiceService, _: Call<'_>) -> Result<u32, DispatchError> {
        self.dispatched = true;
        Ok(1)
    }
    fn send_response(&mut self, _: LocalResponse) {
        self.sent += 1;
    }
    fn resume(&mut self) {
        self.resumed = true;
    }
    fn count_by(&mut self, _: Counter, _: u64) {}
    fn log(&self, _: Level, _: &str) {}
}

/// `name \0 value \0 name \0 value …`; lower-cased names, as Envoy hands them over.
fn lines(data: &[u8]) -> Headers {
    let mut parts = data.split(|&b| b == 0);
    let mut headers = Vec::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        headers.push((String::from_utf8_lossy(name).to_ascii_lowercase(), value.to_vec()));
    }
    headers
}

fuzz_target!(|data: &[u8]| {
    let env = |name: &str| (name == "KEY_1").then(|| hex::encode([0x11u8; 32]));
    let Ok(config) = FilterConfig::compile(CONFIG.as_bytes(), &env) else {
        return;
    };
    // The request's headers, then (after 0xff) the answer's, then (after 0xfe) its body.
    let (request, rest) = split_at(data, 0xff);
    let (answer, body) = split_at(rest, 0xfe);
    let mut host = FuzzHost {
        headers: lines(request),
        ..FuzzHost::default()
    };
    let mut filter = RequestFilter::new(Arc::clone(&config), Arc::default());
    let verdict = filter.on_request_headers(&mut host);
    if verdict == Verdict::Continue {
        assert!(host.sent == 0, "let through and answered");
        return;
    }
    // A used-up counted token asks for a lease, then for a challenge: the same answer twice.
    for _ in 0..2 {
        if host.sent > 0 || host.resumed || !std::mem::take(&mut host.dispatched) {
            break;
        }
        filter.on_callout_response(&mut host, 1, &lines(answer), body.len(), Some(body));
    }
    assert!(host.sent <= 1, "at most one local response");
    assert!(!(host.sent == 1 && host.resumed), "answered and let through");
});

fn split_at(data: &[u8], separator: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == separator) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}
