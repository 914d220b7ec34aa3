//! The HMAC-SHA256 signature chain shared by libmacaroons and go-macaroon.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// go-macaroon and libmacaroons never sign with the root key itself: they first derive
/// `HMAC(key = "macaroons-key-generator", msg = root_key)`. Skipping this step produces tokens no
/// other implementation accepts.
const KEY_GENERATOR: &[u8] = b"macaroons-key-generator";

/// An HMAC-SHA256 keyed with `key`, ready to absorb a message.
pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed first): this never falls back.
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()))
}

pub(crate) fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The signature of a macaroon with `identifier` and the given first-party caveat ids.
pub(crate) fn signature<'a>(
    root_key: &[u8],
    identifier: &[u8],
    caveats: impl IntoIterator<Item = &'a [u8]>,
) -> [u8; 32] {
    let key = hmac(KEY_GENERATOR, root_key);
    let mut sig = hmac(&key, identifier);
    for caveat in caveats {
        sig = hmac(&sig, caveat);
    }
    sig
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Constant-time equality, so a forger learns nothing from how long a comparison took.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public test vector from libmacaroons' documentation, also in go-macaroon's tests.
    #[test]
    fn libmacaroons_reference_chain() {
        let root = b"this is our super secret key; only we should know it";
        let id = b"we used our secret key";
        let caveats: [&[u8]; 3] = [
            b"account = 3735928559",
            b"time < 2020-01-01T00:00",
            b"email = alice@example.org",
        ];
        let expected = [
            "e3d9e02908526c4c0039ae15114115d97fdd68bf2ba379b342aaf0f617d0552f",
            "1efe4763f290dbce0c1d08477367e11f4eee456a64933cf662d79772dbb82128",
            "b5f06c8c8ef92f6c82c6ff282cd1f8bd1849301d09a2db634ba182536a611c49",
            "ddf553e46083e55b8d71ab822be3d8fcf21d6bf19c40d617bb9fb438934474b6",
        ];
        for n in 0..=caveats.len() {
            let sig = signature(root, id, caveats[..n].iter().copied());
            assert_eq!(hex::encode(sig), expected[n], "after {n} caveats");
        }
    }

    #[test]
    fn ct_eq_distinguishes_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
