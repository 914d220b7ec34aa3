//! Checks on the BOLT 11 invoice lnd returned, before it is bound into a token.
//!
//! The macaroon commits to `r_hash`, the client pays the invoice: if they disagreed, a client
//! would pay and still never hold a valid token. So the invoice is decoded (its signature
//! included) and must carry the same payment hash and the amount asked for.

use std::str::FromStr;

use lightning_invoice::Bolt11Invoice;

/// How lnd's invoice disagrees with what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("payment_request is not a valid BOLT 11 invoice: {0}")]
    NotBolt11(String),
    #[error("payment hash in payment_request differs from r_hash")]
    PaymentHash,
    #[error("payment_request is for {got} msat, {asked} msat were asked")]
    Amount { got: u64, asked: u64 },
    #[error("payment_request has no amount")]
    NoAmount,
}

pub fn check_invoice(
    payment_request: &str,
    r_hash: &[u8; 32],
    value_msat: u64,
) -> Result<(), Mismatch> {
    let invoice =
        Bolt11Invoice::from_str(payment_request).map_err(|e| Mismatch::NotBolt11(e.to_string()))?;
    if invoice.payment_hash().as_ref() as &[u8] != r_hash.as_slice() {
        return Err(Mismatch::PaymentHash);
    }
    match invoice.amount_milli_satoshis() {
        Some(amount) if amount == value_msat => Ok(()),
        Some(got) => Err(Mismatch::Amount {
            got,
            asked: value_msat,
        }),
        None => Err(Mismatch::NoAmount),
    }
}
