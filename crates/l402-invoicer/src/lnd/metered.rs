//! Every call to the invoice backend timed and its failures counted, in one place: the issuing
//! steps and the probes call the backend without knowing about metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::{BackendError, CreatedInvoice, InvoiceBackend, InvoiceRequest, NodeStatus};
use crate::metrics::Metrics;

pub struct Metered<B> {
    inner: B,
    metrics: Arc<Metrics>,
}

impl<B> Metered<B> {
    pub fn new(inner: B, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// `call`'s duration under `operation`, and its failure by kind.
    async fn measured<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let started = Instant::now();
        let result = call.await;
        let elapsed = started.elapsed();
        self.metrics.lnd_call(operation, elapsed);
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        match &result {
            // In the request's span: the challenge's own lnd call, timed, in its log.
            Ok(_) => tracing::debug!(operation, elapsed_ms, "lnd answered"),
            Err(e) => {
                self.metrics.lnd_error(e.kind());
                tracing::debug!(operation, elapsed_ms, error = %e, "lnd failed");
            }
        }
        result
    }
}

impl<B: InvoiceBackend> InvoiceBackend for Metered<B> {
    async fn create_invoice(
        &self,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        self.measured("add_invoice", self.inner.create_invoice(request))
            .await
    }

    async fn status(&self) -> Result<NodeStatus, BackendError> {
        self.measured("status", self.inner.status()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Down;

    impl InvoiceBackend for Down {
        async fn create_invoice(&self, _: &InvoiceRequest) -> Result<CreatedInvoice, BackendError> {
            Err(BackendError::Timeout(800))
        }

        async fn status(&self) -> Result<NodeStatus, BackendError> {
            Ok(NodeStatus {
                state: "SERVER_ACTIVE".into(),
            })
        }
    }

    #[tokio::test]
    async fn calls_are_timed_and_failures_counted_by_kind() {
        let metrics = Arc::new(Metrics::default());
        let backend = Metered::new(Down, metrics.clone());
        let request = InvoiceRequest {
            value_msat: 1000,
            memo: "m".into(),
            expiry_seconds: 60,
        };
        assert!(backend.create_invoice(&request).await.is_err());
        assert!(backend.status().await.is_ok());
        let text = metrics.render();
        for line in [
            "l402_lnd_request_duration_seconds_count{operation=\"add_invoice\"} 1",
            "l402_lnd_request_duration_seconds_count{operation=\"status\"} 1",
            "l402_lnd_errors_total{kind=\"timeout\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
