use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Decoded {
    pub format: u8,
    pub location: String,
    pub identifier_hex: String,
    pub l402: Option<L402Identifier>,
    pub caveats: Vec<String>,
    pub third_party_caveats: usize,
    pub signature: String,
}

#[derive(Debug, Serialize)]
pub struct L402Identifier {
    pub version: u16,
    pub payment_hash: String,
    pub token_id: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Verdict {
    Valid {
        valid: bool,
        token_id: String,
        payment_hash: String,
        caveats: Vec<String>,
    },
    Invalid {
        valid: bool,
        reason: String,
    },
}
