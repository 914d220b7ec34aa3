#![no_main]

use l402_core::caveat::{self, Requirement};
use l402_core::{credentials, Challenge};
use libfuzzer_sys::fuzz_target;

// The first byte picks the header a value goes in; the rest is the value.
fuzz_target!(|data: &[u8]| {
    let Some((&pick, value)) = data.split_first() else { return };
    let name: &[u8] = match pick % 3 {
        0 => b"authorization",
        1 => b"macaroon",
        _ => b"grpc-metadata-macaroon",
    };
    if let Ok(credential) = credentials::from_headers([(name, value)]) {
        let req = Requirement { service: "svc", capabilities: &[], now: 0 };
        let _ = caveat::check(credential.macaroon.first_party_caveats(), &req);
    }
    if let Ok(text) = std::str::from_utf8(value) {
        let _ = Challenge::parse_header(text);
    }
});
