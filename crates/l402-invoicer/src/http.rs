//! The HTTP surface: `POST /v1/challenges` for the filter, probes and metrics for operators.
//! Every error is JSON `{"error": …}`; none carries a secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use l402_core::contract::{ChallengeRequest, CHALLENGE_PATH};
use serde_json::json;

use crate::issue::{IssueError, Issuer};
use crate::lnd::InvoiceBackend;

pub fn router<B: InvoiceBackend>(issuer: Arc<Issuer<B>>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(CHALLENGE_PATH, post(challenge::<B>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<B>))
        .route("/metrics", get(metrics::<B>))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(issuer)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn challenge<B: InvoiceBackend>(
    State(issuer): State<Arc<Issuer<B>>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let response = match body {
        Err(rejection) => error(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {}", rejection.body_text()),
        ),
        Ok(body) => match serde_json::from_slice::<ChallengeRequest>(&body) {
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                format!("body is not a challenge request: {e}"),
            ),
            Ok(request) => issue(&issuer, &request).await,
        },
    };
    issuer
        .metrics
        .challenge_response(response.status().as_u16());
    response
}

async fn issue<B: InvoiceBackend>(issuer: &Issuer<B>, request: &ChallengeRequest<'_>) -> Response {
    match issuer.issue(request).await {
        Ok(answer) => {
            tracing::info!(
                service = %request.service,
                method = %request.method,
                path = %request.path_only(),
                reason = request.reason.as_deref().unwrap_or(""),
                amount_msat = answer.amount_msat,
                payment_hash = %answer.payment_hash,
                token_id = %answer.token_id,
                "challenge issued"
            );
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(e) => {
            let (status, retry_after) = match &e {
                IssueError::UnknownService(_) => (StatusCode::NOT_FOUND, None),
                IssueError::RateLimited(limited) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    // Whole seconds, rounded up: Retry-After has no fractions.
                    Some(limited.retry_after().as_secs_f64().ceil().max(1.0) as u64),
                ),
                IssueError::Backend(_) | IssueError::InvoiceMismatch(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, None)
                }
                IssueError::Mint(_) | IssueError::Random(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, None)
                }
            };
            if status.is_server_error() {
                tracing::warn!(service = %request.service, error = %e, "challenge failed");
            } else {
                tracing::info!(service = %request.service, error = %e, "challenge refused");
            }
            let mut response = error(status, e.to_string());
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    }
}

async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn readyz<B: InvoiceBackend>(State(issuer): State<Arc<Issuer<B>>>) -> Response {
    let status = issuer.backend.status().await;
    match status {
        Ok(node) if node.is_ready() => {
            Json(json!({ "status": "ready", "lnd_state": node.state })).into_response()
        }
        Ok(node) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("lnd is not ready: state {}", node.state),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn metrics<B: InvoiceBackend>(State(issuer): State<Arc<Issuer<B>>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        issuer.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}
