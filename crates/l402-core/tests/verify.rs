//! The whole verification pipeline, one test per way a token can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l402_core::encoding::to_base64;
use l402_core::mint::{aperture_caveats, mint, mint_derived, Grant};
use l402_core::{
    Identifier, KeyId, KeyRing, Macaroon, RawCaveat, Rejection, Requirement, RevocationList,
    RootKey, RootKeySource, TokenId, Verifier,
};
use sha2::{Digest, Sha256};

const NOW: i64 = 1_700_000_000;
const PREIMAGE: [u8; 32] = [0x42; 32];

fn payment_hash() -> [u8; 32] {
    Sha256::digest(PREIMAGE).into()
}

fn ring() -> KeyRing {
    KeyRing::new([(KeyId(1), vec![1; 32]), (KeyId(2), vec![2; 32])]).unwrap()
}

fn grant(valid_until: Option<i64>) -> Grant {
    Grant {
        service: "weather".into(),
        capabilities: vec!["read".into()],
        valid_until,
        ..Grant::default()
    }
}

fn token(key: KeyId, caveats: &[String]) -> Macaroon {
    mint_derived(&ring(), key, [7; 28], payment_hash(), caveats)
        .unwrap()
        .0
}

fn header(m: &Macaroon, preimage: [u8; 32]) -> String {
    format!("L402 {}:{}", to_base64(&m.encode()), hex::encode(preimage))
}

fn verify_with(
    verifier: &Verifier,
    value: &str,
    service: &str,
    caps: &[&str],
) -> Result<(), Rejection> {
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    let req = Requirement {
        service,
        capabilities: &caps,
        now: NOW,
    };
    verifier
        .verify_headers([(&b"authorization"[..], value.as_bytes())], &req)
        .map(|_| ())
}

fn verify(value: &str, service: &str) -> Result<(), Rejection> {
    let verifier = Verifier::new(RootKeySource::Derived(ring()), RevocationList::default());
    verify_with(&verifier, value, service, &[])
}

fn reason(result: Result<(), Rejection>) -> &'static str {
    result.unwrap_err().reason()
}

#[test]
fn paid_token_for_the_service_is_valid() {
    let m = token(KeyId(1), &aperture_caveats(&grant(Some(NOW + 60))));
    assert_eq!(verify(&header(&m, PREIMAGE), "weather"), Ok(()));
}

#[test]
fn tokens_from_every_live_master_secret_are_valid() {
    let m = token(KeyId(2), &aperture_caveats(&grant(None)));
    assert_eq!(verify(&header(&m, PREIMAGE), "weather"), Ok(()));
}

#[test]
fn missing_credential() {
    let verifier = Verifier::new(RootKeySource::Derived(ring()), RevocationList::default());
    let req = Requirement {
        service: "weather",
        capabilities: &[],
        now: NOW,
    };
    let err = verifier
        .verify_headers(std::iter::empty(), &req)
        .unwrap_err();
    assert_eq!(err.reason(), "missing");
}

#[test]
fn wrong_preimage_is_rejected_before_any_key_work() {
    let m = token(KeyId(1), &[]);
    assert_eq!(
        verify(&header(&m, [0x43; 32]), "weather"),
        Err(Rejection::PreimageMismatch)
    );
}

#[test]
fn expired_token() {
    let m = token(KeyId(1), &aperture_caveats(&grant(Some(NOW))));
    assert_eq!(reason(verify(&header(&m, PREIMAGE), "weather")), "expired");
}

#[test]
fn token_for_another_service() {
    let m = token(KeyId(1), &aperture_caveats(&grant(None)));
    assert_eq!(
        reason(verify(&header(&m, PREIMAGE), "news")),
        "wrong_service"
    );
}

#[test]
fn tampered_caveat_breaks_the_signature() {
    let mut m = token(KeyId(1), &["services=weather:0".into()]);
    m.caveats[0].id = b"services=weather:0,news:0".to_vec();
    assert_eq!(
        verify(&header(&m, PREIMAGE), "news"),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn removing_a_caveat_breaks_the_signature() {
    let mut m = token(KeyId(1), &aperture_caveats(&grant(Some(NOW - 5))));
    m.caveats.pop();
    assert_eq!(
        verify(&header(&m, PREIMAGE), "weather"),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn client_attenuation_keeps_the_token_valid_but_narrower() {
    let mut m = token(KeyId(1), &aperture_caveats(&grant(Some(NOW + 60))));
    m.add_first_party_caveat(b"weather_valid_until=1700000030".to_vec());
    assert_eq!(verify(&header(&m, PREIMAGE), "weather"), Ok(()));
    m.add_first_party_caveat(b"weather_valid_until=1700000090".to_vec());
    assert_eq!(
        reason(verify(&header(&m, PREIMAGE), "weather")),
        "invalid_caveat"
    );
}

#[test]
fn token_from_an_unknown_master_secret() {
    let other = KeyRing::new([(KeyId(9), vec![9; 32])]).unwrap();
    let (m, _) = mint_derived(&other, KeyId(9), [0; 28], payment_hash(), &[]).unwrap();
    assert_eq!(
        reason(verify(&header(&m, PREIMAGE), "weather")),
        "unknown_key"
    );
}

#[test]
fn token_signed_by_a_different_master_secret_with_a_known_key_id() {
    let impostor = KeyRing::new([(KeyId(1), vec![0xee; 32])]).unwrap();
    let (m, _) = mint_derived(&impostor, KeyId(1), [0; 28], payment_hash(), &[]).unwrap();
    assert_eq!(
        verify(&header(&m, PREIMAGE), "weather"),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn revoked_token() {
    let m = token(KeyId(1), &[]);
    let id = Identifier::decode(&m.identifier).unwrap().token_id;
    let verifier = Verifier::new(RootKeySource::Derived(ring()), RevocationList::new([id]));
    assert_eq!(
        verify_with(&verifier, &header(&m, PREIMAGE), "weather", &[]),
        Err(Rejection::Revoked)
    );
}

#[test]
fn identifier_version_other_than_zero() {
    let mut m = token(KeyId(1), &[]);
    m.identifier[1] = 1;
    assert_eq!(
        reason(verify(&header(&m, PREIMAGE), "weather")),
        "unsupported_version"
    );
}

#[test]
fn third_party_caveat_is_rejected() {
    let mut m = token(KeyId(1), &[]);
    m.caveats.push(RawCaveat {
        location: b"https://discharger".to_vec(),
        id: b"tp".to_vec(),
        verification_id: Some(vec![1; 48]),
    });
    assert_eq!(
        verify(&header(&m, PREIMAGE), "weather"),
        Err(Rejection::ThirdPartyCaveat)
    );
}

#[test]
fn missing_capability_when_the_route_requires_one() {
    let m = token(KeyId(1), &aperture_caveats(&grant(None)));
    let verifier = Verifier::new(RootKeySource::Derived(ring()), RevocationList::default());
    let value = header(&m, PREIMAGE);
    assert_eq!(verify_with(&verifier, &value, "weather", &["read"]), Ok(()));
    assert_eq!(
        reason(verify_with(&verifier, &value, "weather", &["write"])),
        "missing_capability"
    );
}

#[test]
fn static_root_key_tokens_verify_like_apertures() {
    let key = RootKey::new(vec![5; 32]).unwrap();
    let id = Identifier {
        payment_hash: payment_hash(),
        token_id: TokenId([1; 32]),
    };
    let m = mint(&key, &id, &aperture_caveats(&grant(None)));
    let verifier = Verifier::new(RootKeySource::Static(key), RevocationList::default());
    assert_eq!(
        verify_with(&verifier, &header(&m, PREIMAGE), "weather", &[]),
        Ok(())
    );
}

#[test]
fn rejection_messages_never_contain_key_material() {
    let m = token(KeyId(1), &[]);
    let err = verify(&header(&m, [0x43; 32]), "weather")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("0101") && !err.contains("4343"), "{err}");
}
