//! The L402 protocol core: everything needed to mint and verify L402 tokens, with no I/O.
//!
//! Both the Envoy filter (compiled to wasm) and the invoice service (native) link this crate, so a
//! token minted by one verifies in the other. Bytes go in, typed results come out; the callers own
//! clocks, randomness and the network.
//!
//! Wire compatibility target: Lightning Labs' Aperture with `gopkg.in/macaroon.v2`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod caveat;
pub mod challenge;
#[cfg(feature = "serde")]
pub mod contract;
pub mod credentials;
mod crypto;
pub mod encoding;
pub mod identifier;
pub mod keys;
pub mod limits;
pub mod macaroon;
pub mod mint;
pub mod names;
pub mod verifier;

pub use caveat::{Caveat, CaveatError, Granted};
pub use challenge::{Challenge, ChallengeError};
pub use credentials::{Credential, CredentialError};
pub use identifier::{Identifier, IdentifierError, TokenId};
pub use keys::{
    EnvKeyError, KeyError, KeyId, KeyRing, KeySpec, RevocationList, RootKey, RootKeySource,
};
pub use macaroon::{DecodeError, Macaroon, RawCaveat};
pub use verifier::{Reason, Rejection, Requirement, Verified, Verifier};
