//! lnd's REST gateway: `POST /v1/invoices`, `GET /v1/state`, `GET /v1/invoices`.
//!
//! 64-bit integers travel as JSON strings (grpc-gateway), bytes as standard base64, and errors
//! as a non-2xx status with `{"code": <grpc code>, "message": …}`.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{BackendError, CreatedInvoice, InvoiceBackend, InvoiceRequest, NodeStatus};
use crate::config::Lnd;

/// lnd error messages are short; anything longer is not worth echoing into a 503.
const MAX_ERROR_MESSAGE: usize = 200;

/// gRPC codes lnd uses for macaroon problems (Unauthenticated, PermissionDenied), and the
/// Unknown code it returns for most macaroon verification failures.
const GRPC_PERMISSION_DENIED: i64 = 7;
const GRPC_UNAUTHENTICATED: i64 = 16;

/// Why the lnd client could not be set up (at start-up, before any request).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] super::tls::TlsSetupError),
    #[error("cannot build the lnd HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

pub struct LndRest {
    client: reqwest::Client,
    base_url: String,
    macaroon_hex: String,
    request_timeout: Duration,
    max_retries: u32,
}

#[derive(Deserialize)]
struct AddInvoiceResponse {
    r_hash: String,
    payment_request: String,
}

#[derive(Debug, Deserialize)]
struct StateResponse {
    state: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

impl LndRest {
    pub fn new(config: &Lnd) -> Result<Self, ClientError> {
        let tls = super::tls::client_config(&config.tls_cert_pem)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            base_url: config.rest_url.clone(),
            macaroon_hex: config.macaroon_hex.clone(),
            request_timeout: config.request_timeout,
            max_retries: config.max_retries,
        })
    }

    /// Sends the request built by `build`, retrying only what cannot have had an effect or
    /// says to come back: connection refused, and 503 (lnd still starting).
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), BackendError> {
        let mut attempt = 0;
        loop {
            let result = match build().send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(body) => Ok((status, body.to_vec())),
                        Err(e) => Err(self.transport_error(&e)),
                    }
                }
                Err(e) => Err(self.transport_error(&e)),
            };
            let transient = match &result {
                Ok((status, _)) => *status == 503,
                Err(BackendError::Unreachable(_)) => true,
                Err(_) => false,
            };
            if !transient || attempt >= self.max_retries {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> BackendError {
        if error.is_timeout() {
            return BackendError::Timeout(self.request_timeout.as_millis());
        }
        match find_tls_error(error) {
            Some(tls) => BackendError::Tls(tls),
            None => BackendError::Unreachable(error_chain(error)),
        }
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder.header("Grpc-Metadata-macaroon", &self.macaroon_hex)
    }
}

impl InvoiceBackend for LndRest {
    async fn create_invoice(
        &self,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        let url = format!("{}/v1/invoices", self.base_url);
        let body = json!({
            "value_msat": request.value_msat.to_string(),
            "memo": request.memo,
            "expiry": request.expiry_seconds.to_string(),
        });
        let (status, bytes) = self
            .send(|| self.authorized(self.client.post(&url)).json(&body))
            .await?;
        let answer: AddInvoiceResponse = parse_success(status, &bytes)?;
        let r_hash = base64::engine::general_purpose::STANDARD
            .decode(answer.r_hash.as_bytes())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| BackendError::BadResponse("r_hash is not 32 bytes of base64".into()))?;
        Ok(CreatedInvoice {
            r_hash,
            payment_request: answer.payment_request,
        })
    }

    async fn status(&self) -> Result<NodeStatus, BackendError> {
        let state_url = format!("{}/v1/state", self.base_url);
        let (status, bytes) = self.send(|| self.client.get(&state_url)).await?;
        let state: StateResponse = parse_success(status, &bytes)?;
        if state.state == "SERVER_ACTIVE" {
            // The newest invoice, read with our macaroon: proves the macaroon and the invoice
            // database answer, at the cost of one row.
            let list_url = format!(
                "{}/v1/invoices?num_max_invoices=1&reversed=true",
                self.base_url
            );
            let (status, bytes) = self
                .send(|| self.authorized(self.client.get(&list_url)))
                .await?;
            parse_success::<serde_json::Value>(status, &bytes)?;
        }
        Ok(NodeStatus { state: state.state })
    }
}

fn parse_success<T: serde::de::DeserializeOwned>(
    status: u16,
    body: &[u8],
) -> Result<T, BackendError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| {
            BackendError::BadResponse(format!("HTTP {status} body is not the expected JSON: {e}"))
        });
    }
    let (code, message) = match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => (e.code, e.message),
        Err(_) => (0, String::from_utf8_lossy(body).into_owned()),
    };
    let message = truncate(message.trim());
    if is_auth_failure(status, code, &message) {
        Err(BackendError::Auth(message))
    } else {
        Err(BackendError::Rejected { status, message })
    }
}

fn is_auth_failure(status: u16, code: i64, message: &str) -> bool {
    matches!(status, 401 | 403)
        || matches!(code, GRPC_PERMISSION_DENIED | GRPC_UNAUTHENTICATED)
        || message.contains("macaroon")
        || message.contains("permission denied")
        || message.contains("verification failed")
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_ERROR_MESSAGE {
        return message.to_string();
    }
    let mut end = MAX_ERROR_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// reqwest's own message is "error sending request"; the cause is further down the chain.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.dedup();
    truncate(&parts.join(": "))
}

fn find_tls_error(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    // rustls' error reaches us wrapped in io::Errors, whose source() skips what they wrap, so
    // both source() and io::Error::get_ref() are followed.
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![error];
    while let Some(e) = pending.pop() {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidCertificate(_) => {
                    "the certificate lnd presented is not the pinned tls.cert".into()
                }
                other => other.to_string(),
            });
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            pending.push(inner);
        }
        pending.extend(e.source());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lnd_errors_are_classified() {
        let denied = br#"{"code":2,"message":"verification failed: signature mismatch after caveat verification"}"#;
        assert!(matches!(
            parse_success::<StateResponse>(500, denied),
            Err(BackendError::Auth(_))
        ));
        let perm = br#"{"code":7,"message":"nope"}"#;
        assert!(matches!(
            parse_success::<StateResponse>(403, perm),
            Err(BackendError::Auth(_))
        ));
        let other = br#"{"code":2,"message":"invoice expiry too large"}"#;
        assert_eq!(
            parse_success::<StateResponse>(500, other).unwrap_err(),
            BackendError::Rejected {
                status: 500,
                message: "invoice expiry too large".into()
            }
        );
    }

    #[test]
    fn garbage_bodies_are_bad_responses_or_truncated_errors() {
        assert!(matches!(
            parse_success::<StateResponse>(200, b"<html>"),
            Err(BackendError::BadResponse(_))
        ));
        let long = "x".repeat(5000);
        let Err(BackendError::Rejected { message, .. }) =
            parse_success::<StateResponse>(502, long.as_bytes())
        else {
            panic!("expected a rejection")
        };
        assert!(message.len() < 300);
    }
}
