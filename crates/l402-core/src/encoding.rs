//! Text encodings of tokens: what we emit is strict, what we read is lenient.
//!
//! Aperture emits standard padded base64; clients in the wild send url-safe or unpadded variants,
//! so reading accepts any mix of both alphabets, with or without padding.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard alphabet with padding: the form in challenges and Aperture's own headers.
pub fn to_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard or url-safe alphabet, padded or not. `None` for anything else.
pub fn from_base64(text: &[u8]) -> Option<Vec<u8>> {
    let normalized: Vec<u8> = text
        .iter()
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    LENIENT.decode(normalized).ok()
}

/// Hex in either case. `None` for odd length or a non-hex character.
pub fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// Exactly 32 bytes of hex, as a preimage or a hash is written.
pub fn hex32(text: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_base64_variant() {
        let bytes = [0xfbu8, 0xff, 0x01, 0x02];
        for text in ["+/8BAg==", "+/8BAg", "-_8BAg==", "-_8BAg"] {
            assert_eq!(
                from_base64(text.as_bytes()).as_deref(),
                Some(&bytes[..]),
                "{text}"
            );
        }
        assert_eq!(to_base64(&bytes), "+/8BAg==");
    }

    #[test]
    fn rejects_garbage_base64() {
        for text in ["a", "@@@@", "ab cd", "AgE=A"] {
            assert_eq!(from_base64(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn hex32_takes_either_case_and_only_32_bytes() {
        let lower = "ab".repeat(32);
        assert_eq!(hex32(lower.as_bytes()), Some([0xab; 32]));
        assert_eq!(hex32(lower.to_uppercase().as_bytes()), Some([0xab; 32]));
        assert_eq!(hex32(&lower.as_bytes()[..62]), None);
        assert_eq!(hex32(format!("{lower}00").as_bytes()), None);
        assert_eq!(hex32("zz".repeat(32).as_bytes()), None);
    }
}
