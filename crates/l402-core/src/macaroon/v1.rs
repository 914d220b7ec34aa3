//! The V1 binary format: text packets `<4 lowercase hex digits: packet length><field> <data>\n`,
//! in the order location, identifier, then per caveat `cid` [`vid` `cl`], then signature.
//! Aperture accepts it through go-macaroon, so we read it too; we never emit it on the wire.

use super::{DecodeError, Macaroon, RawCaveat};

const HEADER_LEN: usize = 4;
/// The shortest packet: length, a one-byte field name, the space and the newline.
const MIN_PACKET_LEN: usize = HEADER_LEN + 3;

pub fn decode(mut data: &[u8]) -> Result<Macaroon, DecodeError> {
    let location = expect(&mut data, b"location")?;
    let identifier = expect(&mut data, b"identifier")?;
    let mut caveats: Vec<RawCaveat> = Vec::new();
    let mut current: Option<RawCaveat> = None;
    loop {
        let (field, body) = packet(&mut data)?;
        match field {
            b"signature" => {
                caveats.extend(current);
                let signature = <[u8; 32]>::try_from(body)
                    .map_err(|_| DecodeError::SignatureLength(body.len()))?;
                return Ok(Macaroon {
                    location: location.to_vec(),
                    identifier: identifier.to_vec(),
                    caveats,
                    signature,
                });
            }
            b"cid" => {
                caveats.extend(current.take());
                current = Some(RawCaveat::first_party(body));
            }
            b"vid" => {
                let caveat = current.as_mut().ok_or(DecodeError::V1UnexpectedField)?;
                if caveat.verification_id.is_some() {
                    return Err(DecodeError::V1RepeatedField);
                }
                caveat.verification_id = Some(body.to_vec());
            }
            b"cl" => {
                let caveat = current.as_mut().ok_or(DecodeError::V1UnexpectedField)?;
                if !caveat.location.is_empty() {
                    return Err(DecodeError::V1RepeatedField);
                }
                caveat.location = body.to_vec();
            }
            _ => return Err(DecodeError::V1UnexpectedField),
        }
    }
}

/// V1 encoding, kept for tests and tools that need to produce the old format.
pub fn encode(m: &Macaroon) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, b"location", &m.location);
    put(&mut out, b"identifier", &m.identifier);
    for caveat in &m.caveats {
        put(&mut out, b"cid", &caveat.id);
        if let Some(vid) = &caveat.verification_id {
            put(&mut out, b"vid", vid);
            put(&mut out, b"cl", &caveat.location);
        }
    }
    put(&mut out, b"signature", &m.signature);
    out
}

fn put(out: &mut Vec<u8>, field: &[u8], body: &[u8]) {
    let len = HEADER_LEN + field.len() + 1 + body.len() + 1;
    out.extend_from_slice(format!("{len:04x}").as_bytes());
    out.extend_from_slice(field);
    out.push(b' ');
    out.extend_from_slice(body);
    out.push(b'\n');
}

fn expect<'a>(data: &mut &'a [u8], want: &[u8]) -> Result<&'a [u8], DecodeError> {
    match packet(data)? {
        (field, body) if field == want => Ok(body),
        _ => Err(DecodeError::V1UnexpectedField),
    }
}

fn packet<'a>(data: &mut &'a [u8]) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    if data.len() < MIN_PACKET_LEN - 1 {
        return Err(DecodeError::Truncated("V1 packet"));
    }
    let mut len = 0usize;
    for &digit in &data[..HEADER_LEN] {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return Err(DecodeError::V1Packet("length is not lowercase hex")),
        };
        len = len * 16 + usize::from(value);
    }
    if len > data.len() {
        return Err(DecodeError::Truncated("V1 packet"));
    }
    if len < MIN_PACKET_LEN {
        return Err(DecodeError::V1Packet("length too small"));
    }
    let (whole, rest) = data.split_at(len);
    let content = &whole[HEADER_LEN..];
    let Some((b'\n', content)) = content.split_last() else {
        return Err(DecodeError::V1Packet("no terminating newline"));
    };
    let space = match content.iter().position(|&b| b == b' ') {
        Some(0) | None => return Err(DecodeError::V1Packet("no field name")),
        Some(i) => i,
    };
    *data = rest;
    Ok((&content[..space], &content[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Macaroon {
        let mut m = Macaroon::new(b"root", b"id".to_vec(), b"lsat".to_vec());
        m.add_first_party_caveat(b"services=svc:0".to_vec());
        m.add_first_party_caveat(b"svc_valid_until=100".to_vec());
        m
    }

    #[test]
    fn roundtrips_and_is_picked_by_first_byte() {
        let bytes = encode(&sample());
        assert_eq!(
            &bytes[..4],
            b"0012",
            "location packet: 4 + 8 + 1 + 4 + 1 = 0x12"
        );
        assert_eq!(&bytes[4..18], b"location lsat\n");
        let (decoded, format) = Macaroon::decode(&bytes).unwrap();
        assert_eq!(format, super::super::Format::V1);
        assert_eq!(decoded, sample());
        assert!(decoded.verify_signature(b"root"));
    }

    #[test]
    fn third_party_caveat_fields() {
        let mut m = sample();
        m.caveats.push(RawCaveat {
            location: b"remote".to_vec(),
            id: b"3p".to_vec(),
            verification_id: Some(vec![1, 2, 3]),
        });
        assert_eq!(decode(&encode(&m)).unwrap(), m);
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
    fn rejects_malformed_packets() {
        assert_eq!(
            decode(b"000Flocation x\n"),
            Err(DecodeError::V1Packet("length is not lowercase hex"))
        );
        assert_eq!(
            decode(b"0004abcdefgh"),
            Err(DecodeError::V1Packet("length too small"))
        );
        assert_eq!(
            decode(b"0008loc x\n"),
            Err(DecodeError::V1Packet("no terminating newline"))
        );
        assert_eq!(
            decode(b"0009 abc\n"),
            Err(DecodeError::V1Packet("no field name"))
        );
        assert_eq!(decode(b"000ax abc\n"), Err(DecodeError::V1UnexpectedField));
    }

    #[test]
    fn rejects_out_of_order_fields_and_vid_without_caveat() {
        let mut bytes = Vec::new();
        put(&mut bytes, b"identifier", b"id");
        put(&mut bytes, b"location", b"x");
        assert_eq!(decode(&bytes), Err(DecodeError::V1UnexpectedField));

        let mut bytes = Vec::new();
        put(&mut bytes, b"location", b"x");
        put(&mut bytes, b"identifier", b"id");
        put(&mut bytes, b"vid", b"v");
        assert_eq!(decode(&bytes), Err(DecodeError::V1UnexpectedField));
    }

    #[test]
    fn signature_must_be_32_bytes() {
        let mut bytes = Vec::new();
        put(&mut bytes, b"location", b"x");
        put(&mut bytes, b"identifier", b"id");
        put(&mut bytes, b"signature", &[0; 31]);
        assert_eq!(decode(&bytes), Err(DecodeError::SignatureLength(31)));
    }
}
