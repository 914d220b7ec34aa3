//! The V2 binary format (libmacaroons `MACAROON_V2`, go-macaroon `V2`):
//!
//! ```text
//! macaroon = 0x02 header *caveat EOS packet(SIGNATURE)
//! header   = [packet(LOCATION)] packet(IDENTIFIER) EOS
//! caveat   = [packet(LOCATION)] packet(IDENTIFIER) [packet(VID)] EOS
//! packet   = uvarint(type) uvarint(len) bytes
//! ```

use super::{DecodeError, Macaroon, RawCaveat};

const VERSION: u8 = 2;
const EOS: u64 = 0;
const LOCATION: u64 = 1;
const IDENTIFIER: u64 = 2;
const VERIFICATION_ID: u64 = 4;
const SIGNATURE: u64 = 6;

/// go-macaroon refuses any varint above this; so do we, so that both agree on every input.
const MAX_VARINT: u64 = 0x7fff_ffff;

pub fn encode(m: &Macaroon) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + m.identifier.len() + m.caveats.iter().map(|c| c.id.len() + 8).sum::<usize>(),
    );
    out.push(VERSION);
    if !m.location.is_empty() {
        put_packet(&mut out, LOCATION, &m.location);
    }
    put_packet(&mut out, IDENTIFIER, &m.identifier);
    out.push(0);
    for caveat in &m.caveats {
        if !caveat.location.is_empty() {
            put_packet(&mut out, LOCATION, &caveat.location);
        }
        put_packet(&mut out, IDENTIFIER, &caveat.id);
        if let Some(vid) = &caveat.verification_id {
            put_packet(&mut out, VERIFICATION_ID, vid);
        }
        out.push(0);
    }
    out.push(0);
    put_packet(&mut out, SIGNATURE, &m.signature);
    out
}

pub fn decode(data: &[u8]) -> Result<Macaroon, DecodeError> {
    let mut reader = Reader { data };
    if reader.byte() != Some(VERSION) {
        return Err(DecodeError::UnknownFormat);
    }

    let header = reader.section()?;
    let (location, header) = split_location(header);
    let identifier = match header.as_slice() {
        [(IDENTIFIER, id)] => id.to_vec(),
        _ => return Err(DecodeError::InvalidHeader),
    };

    let mut caveats = Vec::new();
    loop {
        let section = reader.section()?;
        if section.is_empty() {
            break;
        }
        caveats.push(caveat(section)?);
    }

    let (kind, signature) = reader.packet()?;
    if kind != SIGNATURE {
        return Err(DecodeError::ExpectedSignature);
    }
    let signature = <[u8; 32]>::try_from(signature)
        .map_err(|_| DecodeError::SignatureLength(signature.len()))?;
    // Anything after the signature is ignored, as go-macaroon does.
    Ok(Macaroon {
        location,
        identifier,
        caveats,
        signature,
    })
}

type Packet<'a> = (u64, &'a [u8]);

fn split_location(section: Vec<Packet<'_>>) -> (Vec<u8>, Vec<Packet<'_>>) {
    match section.split_first() {
        Some(((LOCATION, location), rest)) => (location.to_vec(), rest.to_vec()),
        _ => (Vec::new(), section),
    }
}

fn caveat(section: Vec<Packet<'_>>) -> Result<RawCaveat, DecodeError> {
    let (location, section) = split_location(section);
    match section.as_slice() {
        [(IDENTIFIER, id)] if location.is_empty() => Ok(RawCaveat::first_party(*id)),
        [(IDENTIFIER, _)] => Err(DecodeError::LocationOnFirstPartyCaveat),
        [(IDENTIFIER, id), (VERIFICATION_ID, vid)] => Ok(RawCaveat {
            location,
            id: id.to_vec(),
            verification_id: Some(vid.to_vec()),
        }),
        [(IDENTIFIER, _), ..] => Err(DecodeError::UnexpectedCaveatField),
        _ => Err(DecodeError::CaveatWithoutIdentifier),
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    /// An unsigned LEB128 varint. Non-minimal encodings are accepted, as Go's `binary.Uvarint` does.
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte().ok_or(DecodeError::Truncated("varint"))?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                if value > MAX_VARINT {
                    return Err(DecodeError::LengthOutOfRange);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    fn packet(&mut self) -> Result<Packet<'a>, DecodeError> {
        let kind = self.varint()?;
        if kind == EOS {
            return Ok((EOS, &[]));
        }
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::LengthOutOfRange)?;
        if len > self.data.len() {
            return Err(DecodeError::Truncated("field data"));
        }
        let (body, rest) = self.data.split_at(len);
        self.data = rest;
        Ok((kind, body))
    }

    /// Packets up to the next EOS, with field types strictly increasing.
    fn section(&mut self) -> Result<Vec<Packet<'a>>, DecodeError> {
        let mut packets: Vec<Packet<'a>> = Vec::with_capacity(2);
        loop {
            if self.data.is_empty() {
                return Err(DecodeError::Truncated("section"));
            }
            let (kind, body) = self.packet()?;
            if kind == EOS {
                return Ok(packets);
            }
            if packets.last().is_some_and(|&(prev, _)| kind <= prev) {
                return Err(DecodeError::FieldsOutOfOrder);
            }
            packets.push((kind, body));
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_packet(out: &mut Vec<u8>, kind: u64, body: &[u8]) {
    put_varint(out, kind);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Macaroon {
        let mut m = Macaroon::new(b"root", b"id".to_vec(), b"lsat".to_vec());
        m.add_first_party_caveat(b"services=svc:0".to_vec());
        m
    }

    #[test]
    fn encodes_the_byte_layout_aperture_emits() {
        let bytes = encode(&sample());
        let mut expected = vec![2, 1, 4];
        expected.extend_from_slice(b"lsat");
        expected.extend_from_slice(&[2, 2]);
        expected.extend_from_slice(b"id");
        expected.extend_from_slice(&[0, 2, 14]);
        expected.extend_from_slice(b"services=svc:0");
        expected.extend_from_slice(&[0, 0, 6, 32]);
        expected.extend_from_slice(&sample().signature);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn roundtrips_and_ignores_trailing_bytes() {
        let mut bytes = encode(&sample());
        bytes.extend_from_slice(b"trailing garbage");
        assert_eq!(decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn location_is_optional() {
        let m = Macaroon::new(b"k", b"id".to_vec(), Vec::new());
        let bytes = encode(&m);
        assert_eq!(&bytes[..3], &[2, 2, 2]);
        assert_eq!(decode(&bytes).unwrap(), m);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn accepts_non_minimal_varints() {
        // Identifier type written as 0x82 0x00 instead of 0x02, as Go's Uvarint allows.
        let bytes = encode(&sample());
        let mut padded = bytes[..7].to_vec();
        padded.extend_from_slice(&[0x82, 0x00]);
        padded.extend_from_slice(&bytes[8..]);
        assert_eq!(decode(&padded).unwrap(), sample());
    }

    #[test]
    fn rejects_lengths_over_0x7fffffff() {
        let bytes = [2, 2, 0x80, 0x80, 0x80, 0x80, 0x08];
        assert_eq!(decode(&bytes), Err(DecodeError::LengthOutOfRange));
    }

    #[test]
    fn rejects_unterminated_and_overlong_varints() {
        assert_eq!(decode(&[2, 2, 0x80]), Err(DecodeError::Truncated("varint")));
        let mut overlong = vec![2, 2];
        overlong.extend_from_slice(&[0xff; 11]);
        assert_eq!(decode(&overlong), Err(DecodeError::BadVarint));
    }

    #[test]
    fn rejects_fields_out_of_order() {
        // Identifier before location.
        let mut bytes = vec![2, 2, 2, b'i', b'd', 1, 1, b'x', 0];
        bytes.extend_from_slice(&[0, 6, 32]);
        bytes.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&bytes), Err(DecodeError::FieldsOutOfOrder));
        // Repeated identifier.
        let bytes = [2, 2, 1, b'a', 2, 1, b'b', 0];
        assert_eq!(decode(&bytes), Err(DecodeError::FieldsOutOfOrder));
    }

    #[test]
    fn rejects_a_header_without_identifier() {
        let mut bytes = vec![2, 1, 1, b'x', 0, 0, 6, 32];
        bytes.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&bytes), Err(DecodeError::InvalidHeader));
    }

    #[test]
    fn signature_must_be_exactly_32_bytes() {
        for len in [31usize, 33] {
            let mut bytes = vec![2, 2, 2, b'i', b'd', 0, 0, 6, len as u8];
            bytes.extend(std::iter::repeat(7).take(len));
            assert_eq!(decode(&bytes), Err(DecodeError::SignatureLength(len)));
        }
    }

    #[test]
    fn rejects_a_missing_signature() {
        let mut bytes = vec![2, 2, 2, b'i', b'd', 0, 0, 4, 32];
        bytes.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&bytes), Err(DecodeError::ExpectedSignature));
    }

    #[test]
    fn detects_third_party_caveats() {
        let mut m = sample();
        m.caveats.push(RawCaveat {
            location: b"https://auth.example".to_vec(),
            id: b"third".to_vec(),
            verification_id: Some(vec![9; 48]),
        });
        let decoded = decode(&encode(&m)).unwrap();
        assert_eq!(decoded.third_party_caveat_count(), 1);
        assert_eq!(decoded, m);
    }

    #[test]
    fn first_party_caveat_with_location_is_rejected() {
        let mut bytes = vec![2, 2, 2, b'i', b'd', 0, 1, 1, b'l', 2, 1, b'c', 0, 0, 6, 32];
        bytes.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&bytes), Err(DecodeError::LocationOnFirstPartyCaveat));
    }

    #[test]
    fn caveat_fields_other_than_vid_are_rejected() {
        let mut bytes = vec![2, 2, 2, b'i', b'd', 0, 2, 1, b'c', 6, 1, b'x', 0, 0, 6, 32];
        bytes.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&bytes), Err(DecodeError::UnexpectedCaveatField));
        let mut bytes = vec![2, 2, 2, b'i', b'd', 0, 4, 1, b'v', 0, 0, 6, 32];
        bytes.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&bytes), Err(DecodeError::CaveatWithoutIdentifier));
    }
}
