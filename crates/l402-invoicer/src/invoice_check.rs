//! Checks on the BOLT 11 invoice lnd returned, before it is bound into a token.
//!
//! The macaroon commits to `r_hash`, the client pays the invoice: if they disagreed, a client
//! would pay and still never hold a valid token. So the invoice is decoded (its signature
//! included) and must carry the same payment hash and the amount asked for.

use std::str::FromStr;

use lightning_invoice::Bolt11Invoice;

pub fn check_invoice(
    payment_request: &str,
    r_hash: &[u8; 32],
    value_msat: u64,
) -> Result<(), String> {
    let invoice = Bolt11Invoice::from_str(payment_request)
        .map_err(|e| format!("payment_request is not a valid BOLT 11 invoice: {e}"))?;
    if invoice.payment_hash().as_ref() as &[u8] != r_hash.as_slice() {
        return Err("payment hash in payment_request differs from r_hash".into());
    }
    match invoice.amount_milli_satoshis() {
        Some(amount) if amount == value_msat => Ok(()),
        Some(amount) => Err(format!(
            "payment_request is for {amount} msat, {value_msat} msat were asked"
        )),
        None => Err("payment_request has no amount".into()),
    }
}
