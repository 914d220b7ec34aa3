use thiserror::Error;

/// Why bytes are not a macaroon. Messages describe the structure only: they never quote the
/// input, which is attacker-controlled and may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("macaroon is empty")]
    Empty,
    #[error("macaroon is {len} bytes, more than the {max} accepted")]
    TooLarge { len: usize, max: usize },
    #[error("macaroon has more than {max} caveats")]
    TooManyCaveats { max: usize },
    #[error(
        "unknown macaroon format: first byte is neither 0x02 (V2) nor a lowercase hex digit (V1)"
    )]
    UnknownFormat,
    #[error("macaroon is truncated: {0}")]
    Truncated(&'static str),
    #[error("macaroon has a malformed varint")]
    BadVarint,
    #[error("macaroon has a length over 0x7fffffff")]
    LengthOutOfRange,
    #[error("macaroon fields are out of order")]
    FieldsOutOfOrder,
    #[error("macaroon header must be an optional location then an identifier")]
    InvalidHeader,
    #[error("macaroon caveat has no identifier")]
    CaveatWithoutIdentifier,
    #[error("macaroon first-party caveat carries a location")]
    LocationOnFirstPartyCaveat,
    #[error("macaroon caveat has an unexpected field")]
    UnexpectedCaveatField,
    #[error("macaroon has no signature where one was expected")]
    ExpectedSignature,
    #[error("macaroon signature is {0} bytes, expected 32")]
    SignatureLength(usize),
    #[error("macaroon V1 packet is malformed: {0}")]
    V1Packet(&'static str),
    #[error("macaroon V1 has an unexpected field")]
    V1UnexpectedField,
    #[error("macaroon V1 caveat repeats a field")]
    V1RepeatedField,
}
