//! The Lightning node behind the service. [`InvoiceBackend`] is what the service needs from one;
//! [`rest::LndRest`] is lnd over REST. CLN or LNbits would be further implementations.

pub mod config;
pub mod metered;
pub mod rest;
pub mod tls;

pub use config::Lnd;
pub use metered::Metered;

use std::future::Future;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRequest {
    pub value_msat: u64,
    pub memo: String,
    pub expiry_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedInvoice {
    /// The payment hash lnd says the invoice has; checked against the BOLT 11 before use.
    pub r_hash: [u8; 32],
    pub payment_request: String,
}

/// What `/readyz` reports about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub state: String,
}

impl NodeStatus {
    /// lnd's RPC server is up and its wallet unlocked: invoices can be created. Chain sync is
    /// deliberately not part of it: invoices do not need the chain, and lnd's node-info call
    /// hangs when the chain backend is gone, which would pull every replica out of service
    /// while challenges can still be issued.
    pub fn is_ready(&self) -> bool {
        self.state == "SERVER_ACTIVE"
    }
}

/// Why the node did not give us what we asked. Messages name the cause, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackendError {
    #[error("lnd unreachable: {0}")]
    Unreachable(String),
    #[error("lnd did not answer within {0} ms")]
    Timeout(u128),
    #[error("lnd TLS failed: {0}")]
    Tls(String),
    #[error("lnd refused the macaroon: {0}")]
    Auth(String),
    #[error("lnd error (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("lnd answered something unusable: {0}")]
    BadResponse(String),
}

impl BackendError {
    /// Metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Tls(_) => "tls",
            Self::Auth(_) => "auth",
            Self::Rejected { .. } => "rejected",
            Self::BadResponse(_) => "bad_response",
        }
    }
}

pub trait InvoiceBackend: Send + Sync + 'static {
    fn create_invoice(
        &self,
        request: &InvoiceRequest,
    ) -> impl Future<Output = Result<CreatedInvoice, BackendError>> + Send;

    /// Whether an invoice could be created now, checked without creating one; bounded by the
    /// backend's request timeout.
    fn status(&self) -> impl Future<Output = Result<NodeStatus, BackendError>> + Send;
}
