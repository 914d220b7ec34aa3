//! The `l402` command's interface, as other tools and scripts use it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;

const PREIMAGE: &str = "4242424242424242424242424242424242424242424242424242424242424242";
// sha256 of 32 bytes of 0x42.
const PAYMENT_HASH: &str = "425ed4e4a36b30ea21b90e21c712c649e8214c29b7eaf68089d1039c6e55384c";
const TOKEN_ID: &str = "0000000111111111111111111111111111111111111111111111111111111111";
const ROOT_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

fn l402(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn mint(key_args: &[&str], caveats: &[&str]) -> String {
    let mut args = vec!["mint"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&["--payment-hash", PAYMENT_HASH, "--token-id", TOKEN_ID]);
    for c in caveats {
        args.extend_from_slice(&["--caveat", c]);
    }
    let out = l402(&args);
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
}

#[test]
fn mint_then_decode_shows_every_field() {
    let mac = mint(
        &["--root-key", ROOT_KEY],
        &["services=api:0", "api_capabilities="],
    );
    assert!(
        mac.starts_with("AgEEbHNhdA"),
        "V2 with location lsat: {mac}"
    );
    let out = l402(&["decode", &mac]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["format"], 2);
    assert_eq!(v["location"], "lsat");
    assert_eq!(v["identifier_hex"], format!("0000{PAYMENT_HASH}{TOKEN_ID}"));
    assert_eq!(v["l402"]["version"], 0);
    assert_eq!(v["l402"]["payment_hash"], PAYMENT_HASH);
    assert_eq!(v["l402"]["token_id"], TOKEN_ID);
    assert_eq!(
        v["caveats"],
        serde_json::json!(["services=api:0", "api_capabilities="])
    );
    assert_eq!(v["third_party_caveats"], 0);
    assert_eq!(v["signature"].as_str().unwrap().len(), 64);
}

#[test]
fn mint_reproduces_the_libmacaroons_reference_signature() {
    let key = hex::encode("this is our super secret key; only we should know it");
    let id = hex::encode("we used our secret key");
    let out = l402(&[
        "mint",
        "--root-key",
        &key,
        "--identifier",
        &id,
        "--location",
        "http://mybank/",
        "--caveat",
        "account = 3735928559",
        "--caveat",
        "time < 2020-01-01T00:00",
        "--caveat",
        "email = alice@example.org",
    ]);
    let v = json(&l402(&["decode", &stdout(&out)]));
    assert_eq!(
        v["signature"],
        "ddf553e46083e55b8d71ab822be3d8fcf21d6bf19c40d617bb9fb438934474b6"
    );
    assert_eq!(v["l402"], Value::Null, "not an L402 identifier");
}

#[test]
fn decode_takes_hex_and_url_safe_unpadded_base64() {
    let mac = mint(&["--root-key", ROOT_KEY], &["services=api:0"]);
    let bytes = l402_core::encoding::from_base64(mac.as_bytes()).unwrap();
    let url = mac
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string();
    for text in [hex::encode(&bytes), url] {
        let v = json(&l402(&["decode", &text]));
        assert_eq!(v["l402"]["token_id"], TOKEN_ID, "{text}");
    }
}

#[test]
fn decode_bad_input_exits_1_with_one_line() {
    for bad in ["!!!", "AAAA", "Ag"] {
        let out = l402(&["decode", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn verify_valid_token_prints_its_identity() {
    let mac = mint(
        &["--root-key", ROOT_KEY],
        &["services=api:0", "api_valid_until=2000"],
    );
    let out = l402(&[
        "verify",
        "--root-key",
        ROOT_KEY,
        "--service",
        "api",
        "--now",
        "1999",
        "--preimage",
        PREIMAGE,
        &mac,
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["token_id"], TOKEN_ID);
    assert_eq!(v["payment_hash"], PAYMENT_HASH);
    assert_eq!(
        v["caveats"],
        serde_json::json!(["services=api:0", "api_valid_until=2000"])
    );
}

#[test]
fn verify_invalid_token_exits_1_with_a_reason() {
    let mac = mint(
        &["--root-key", ROOT_KEY],
        &["services=api:0", "api_valid_until=2000"],
    );
    let base = ["verify", "--root-key", ROOT_KEY, "--preimage", PREIMAGE];
    for (service, now, reason) in [
        ("api", "2000", "expired"),
        ("other", "1", "not valid for service"),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--service", service, "--now", now, &mac]);
        let out = l402(&args);
        assert_eq!(out.status.code(), Some(1));
        let v = json(&out);
        assert_eq!(v["valid"], false);
        assert!(v["reason"].as_str().unwrap().contains(reason), "{v}");
    }
}

#[test]
fn verify_reads_several_header_lines_of_one_request() {
    let mac = mint(&["--root-key", ROOT_KEY], &["services=api:0"]);
    let out = l402(&[
        "verify",
        "--root-key",
        ROOT_KEY,
        "--service",
        "api",
        "--now",
        "1",
        "--header",
        "Host: example.com",
        "--header",
        &format!("Authorization: LSAT {mac}:{PREIMAGE}"),
        "--header",
        &format!("Authorization: L402 {mac}:{PREIMAGE}"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn verify_with_master_keys_and_revocation() {
    let secret = "ab".repeat(32);
    let master = format!("1:{secret}");
    let mac = mint(&["--master-key", &master], &["services=api:0"]);
    let args = [
        "verify",
        "--master-key",
        &master,
        "--service",
        "api",
        "--now",
        "1",
        "--preimage",
        PREIMAGE,
        &mac,
    ];
    assert_eq!(l402(&args).status.code(), Some(0));

    let mut revoked = args.to_vec();
    revoked.extend_from_slice(&["--revoked", TOKEN_ID]);
    let out = l402(&revoked);
    assert_eq!(out.status.code(), Some(1));
    assert!(json(&out)["reason"].as_str().unwrap().contains("revoked"));

    let other = format!("1:{}", "cd".repeat(32));
    let out = l402(&[
        "verify",
        "--master-key",
        &other,
        "--service",
        "api",
        "--now",
        "1",
        "--preimage",
        PREIMAGE,
        &mac,
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_usage_exits_2_without_echoing_secrets() {
    let cases: [&[&str]; 4] = [
        &["verify", "--service", "api", "--preimage", PREIMAGE, "AAAA"],
        &[
            "verify",
            "--root-key",
            "nothexSECRET",
            "--service",
            "api",
            "--preimage",
            PREIMAGE,
            "AAAA",
        ],
        &[
            "verify",
            "--master-key",
            "1:SECRETSECRET",
            "--service",
            "api",
            "--preimage",
            PREIMAGE,
            "AAAA",
        ],
        &["mint", "--root-key", ROOT_KEY],
    ];
    for args in cases {
        let out = l402(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8(out.stderr).unwrap().contains("SECRET"));
    }
}

#[test]
fn attenuate_narrows_a_token_without_the_key() {
    let mac = mint(&["--root-key", ROOT_KEY], &["services=api:0,other:0"]);
    let out = l402(&["attenuate", &mac, "--caveat", "services=other:0"]);
    let narrowed = stdout(&out);
    let verify = |service: &str| {
        l402(&[
            "verify",
            "--root-key",
            ROOT_KEY,
            "--service",
            service,
            "--now",
            "1",
            "--preimage",
            PREIMAGE,
            &narrowed,
        ])
        .status
        .code()
    };
    assert_eq!(verify("other"), Some(0));
    assert_eq!(verify("api"), Some(1));
}
