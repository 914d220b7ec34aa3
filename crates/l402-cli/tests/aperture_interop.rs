//! Tokens cross between envoy-l402 and Aperture's own Go packages (`aperture/mint`, `aperture/l402`,
//! `gopkg.in/macaroon.v2`) and both sides agree on every accept/reject case.
//!
//! The Go peer in tests/interop/aperture-peer is built from the Go module proxy on first use; `go`
//! must be installed (scripts/setup.sh checks for it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const ROOT_KEY: &str = "5f0ecb5bd8a4b5c1fd0c4c2b4b1d6fd0a83d9bd3a3c0ad5b7e0a4d8a0c1f2e3d";
const PREIMAGE: &str = "4242424242424242424242424242424242424242424242424242424242424242";
const PAYMENT_HASH: &str = "425ed4e4a36b30ea21b90e21c712c649e8214c29b7eaf68089d1039c6e55384c";
const WRONG_PREIMAGE: &str = "4343434343434343434343434343434343434343434343434343434343434343";
const NOW: i64 = 1_700_000_000;
const TIMEOUT: i64 = 100;

fn peer() -> &'static PathBuf {
    static PEER: OnceLock<PathBuf> = OnceLock::new();
    PEER.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/aperture-peer");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aperture-peer");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&source)
            .status()
            .unwrap_or_else(|e| panic!("cannot run `go` ({e}): install Go (scripts/setup.sh) to build the Aperture peer"));
        assert!(status.success(), "building the Aperture peer failed");
        out
    })
}

fn run(program: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(program).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.code().unwrap_or(-1), text)
}

fn ours(args: &[&str]) -> (i32, String) {
    run(std::path::Path::new(env!("CARGO_BIN_EXE_l402")), args)
}

fn theirs(args: &[&str]) -> (i32, String) {
    run(peer(), args)
}

fn go_mint(service: &str, capabilities: &str) -> String {
    let now = NOW.to_string();
    let timeout = TIMEOUT.to_string();
    let (code, mac) = theirs(&[
        "mint",
        "-root-key",
        ROOT_KEY,
        "-payment-hash",
        PAYMENT_HASH,
        "-service",
        service,
        "-capabilities",
        capabilities,
        "-timeout",
        &timeout,
        "-now",
        &now,
    ]);
    assert_eq!(code, 0, "aperture mint failed: {mac}");
    mac
}

fn our_mint(service: &str, capabilities: &str) -> String {
    let token_id = "ab".repeat(32);
    let services = format!("services={service}:0");
    let caps = format!("{service}_capabilities={capabilities}");
    let until = format!("{service}_valid_until={}", NOW + TIMEOUT);
    let (code, mac) = ours(&[
        "mint",
        "--root-key",
        ROOT_KEY,
        "--payment-hash",
        PAYMENT_HASH,
        "--token-id",
        &token_id,
        "--caveat",
        &services,
        "--caveat",
        &caps,
        "--caveat",
        &until,
    ]);
    assert_eq!(code, 0, "l402 mint failed: {mac}");
    mac
}

/// Verifies `mac` on both sides; asserts they agree and returns the shared verdict.
fn verdict(mac: &str, service: &str, now: i64, preimage: &str) -> bool {
    let now = now.to_string();
    let (our_code, our_out) = ours(&[
        "verify",
        "--root-key",
        ROOT_KEY,
        "--service",
        service,
        "--now",
        &now,
        "--preimage",
        preimage,
        mac,
    ]);
    let (their_code, their_out) = theirs(&[
        "verify",
        "-root-key",
        ROOT_KEY,
        "-service",
        service,
        "-now",
        &now,
        "-preimage",
        preimage,
        mac,
    ]);
    assert_eq!(
        our_code == 0,
        their_code == 0,
        "disagreement on service={service} now={now}: ours {our_out}, aperture {their_out}"
    );
    our_code == 0
}

fn attenuate_with_aperture(mac: &str, caveat: &str) -> String {
    let (code, out) = theirs(&["attenuate", "-caveat", caveat, mac]);
    assert_eq!(code, 0, "{out}");
    out
}

fn tamper(mac: &str) -> String {
    let mut bytes = l402_core::encoding::from_base64(mac.as_bytes()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    l402_core::encoding::to_base64(&bytes)
}

/// The accept/reject table both implementations must agree on.
fn check_cases(mac: &str) {
    assert!(verdict(mac, "svc", NOW, PREIMAGE), "fresh token");
    assert!(
        verdict(mac, "svc", NOW + TIMEOUT - 1, PREIMAGE),
        "one second before expiry"
    );
    assert!(
        !verdict(mac, "svc", NOW + TIMEOUT, PREIMAGE),
        "at expiry (equal is expired)"
    );
    assert!(!verdict(mac, "other", NOW, PREIMAGE), "wrong service");
    assert!(!verdict(mac, "svc", NOW, WRONG_PREIMAGE), "wrong preimage");
    assert!(
        !verdict(&tamper(mac), "svc", NOW, PREIMAGE),
        "tampered signature"
    );
}

#[test]
fn aperture_minted_tokens_verify_with_ours() {
    let mac = go_mint("svc", "read,write");
    let (code, decoded) = ours(&["decode", &mac]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(v["location"], "lsat");
    assert_eq!(v["l402"]["payment_hash"], PAYMENT_HASH);
    assert_eq!(
        v["caveats"],
        serde_json::json!([
            "services=svc:0",
            "svc_capabilities=read,write",
            format!("svc_valid_until={}", NOW + TIMEOUT)
        ])
    );
    check_cases(&mac);
}

#[test]
fn our_tokens_verify_with_aperture() {
    check_cases(&our_mint("svc", "read"));
}

#[test]
fn our_tokens_are_byte_identical_in_layout_to_apertures() {
    // Same key, same identifier, same caveats: the encodings must match exactly.
    let go = go_mint("svc", "");
    let (_, decoded) = ours(&["decode", &go]);
    let v: serde_json::Value = serde_json::from_str(&decoded).unwrap();
    let identifier = v["identifier_hex"].as_str().unwrap();
    let mut args = vec!["mint", "--root-key", ROOT_KEY, "--identifier", identifier];
    let caveats: Vec<String> = v["caveats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    for c in &caveats {
        args.extend_from_slice(&["--caveat", c]);
    }
    let (code, mine) = ours(&args);
    assert_eq!(code, 0);
    assert_eq!(mine, go);
}

#[test]
fn narrowing_is_judged_alike() {
    let both = our_mint("svc", "");
    let narrowed = attenuate_with_aperture(&both, "services=svc:0");
    assert!(verdict(&narrowed, "svc", NOW, PREIMAGE));
    let widened = attenuate_with_aperture(&both, "services=svc:0,other:0");
    assert!(
        !verdict(&widened, "svc", NOW, PREIMAGE),
        "widening a services caveat"
    );
    assert!(!verdict(&widened, "other", NOW, PREIMAGE));
    let sooner = attenuate_with_aperture(&both, &format!("svc_valid_until={}", NOW + 10));
    assert!(verdict(&sooner, "svc", NOW + 9, PREIMAGE));
    assert!(!verdict(&sooner, "svc", NOW + 10, PREIMAGE));
    let later = attenuate_with_aperture(&both, &format!("svc_valid_until={}", NOW + 1000));
    assert!(
        !verdict(&later, "svc", NOW, PREIMAGE),
        "extending the expiry"
    );
    let unknown = attenuate_with_aperture(&both, "svc_note=anything");
    assert!(
        verdict(&unknown, "svc", NOW, PREIMAGE),
        "unknown caveats are skipped"
    );
}

#[test]
fn apertures_header_parser_reads_our_credential_format() {
    let mac = our_mint("svc", "");
    let header = format!("Authorization: L402 {mac}:{PREIMAGE}");
    let (code, out) = theirs(&["header", &header]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, format!("{mac} {PREIMAGE}"));
}
