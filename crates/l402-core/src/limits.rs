//! Size caps applied before any parsing, so hostile input costs a length check and nothing more.
//!
//! Real tokens are a few hundred bytes: Aperture's carry an identifier, three or four caveats and a
//! signature. The caps leave room for clients that attenuate tokens with caveats of their own.

/// Largest decoded macaroon accepted, in bytes.
pub const MAX_MACAROON_BYTES: usize = 4096;

/// Largest credential header value accepted, in bytes. Hex doubles the macaroon's size.
pub const MAX_CREDENTIAL_HEADER_BYTES: usize = 2 * MAX_MACAROON_BYTES + 256;

/// Most caveats a macaroon may carry.
pub const MAX_CAVEATS: usize = 64;
