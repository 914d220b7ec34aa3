//! The HTTP surface: challenges, quota leases and revocations for the filter (the paths of
//! `l402_core::contract`), revoking for operators, probes and metrics. Every error is JSON
//! `{"error": …}`; none carries a secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use l402_core::contract::{
    ChallengeRequest, LeaseRequest, LeaseReturn, ManifestRequest, RevokeRequest, CHALLENGE_PATH,
    LEASE_PATH, LEASE_RETURN_PATH, MANIFEST_PATH, REVOCATIONS_PATH,
};
use serde::Deserialize;
use serde_json::json;

use crate::issue::{IssueError, Issuer};
use crate::lnd::InvoiceBackend;
use crate::quota::{Counting, LeaseError};
use crate::revocations::{RevocationError, Revocations};

/// Everything the endpoints use.
pub struct App<B> {
    pub issuer: Arc<Issuer<B>>,
    pub counting: Arc<Counting>,
    pub revocations: Arc<Revocations>,
}

impl<B> Clone for App<B> {
    fn clone(&self) -> Self {
        Self {
            issuer: self.issuer.clone(),
            counting: self.counting.clone(),
            revocations: self.revocations.clone(),
        }
    }
}

impl<B> App<B> {
    /// Challenges only: counted tokens and revocations answer that no store is configured.
    pub fn without_store(issuer: Arc<Issuer<B>>) -> Self {
        let counting = Counting::new(None, issuer.minting.ring.clone(), Default::default());
        Self {
            issuer,
            counting: Arc::new(counting),
            revocations: Arc::new(Revocations {
                store: None,
                admin_token: None,
            }),
        }
    }
}

pub fn router<B: InvoiceBackend>(app: App<B>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(CHALLENGE_PATH, post(challenge::<B>))
        .route(LEASE_PATH, post(lease::<B>))
        .route(LEASE_RETURN_PATH, post(give_back::<B>))
        .route(REVOCATIONS_PATH, get(revocations::<B>).post(revoke::<B>))
        .route(MANIFEST_PATH, post(manifest::<B>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<B>))
        .route("/metrics", get(metrics::<B>))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(crate::request_id::in_span))
        .with_state(app)
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// The JSON body as `T`, or why not (for a 400).
fn parse<'a, T: Deserialize<'a>>(body: &'a Body, what: &str) -> Result<T, String> {
    let body = body
        .as_ref()
        .map_err(|rejection| format!("cannot read the body: {}", rejection.body_text()))?;
    serde_json::from_slice(body).map_err(|e| format!("body is not {what}: {e}"))
}

/// The JSON of `result`, or its error with `status`.
fn answer<T: serde::Serialize, E: std::fmt::Display>(
    result: Result<T, E>,
    status: impl Fn(&E) -> StatusCode,
) -> Response {
    match result {
        Ok(value) => (StatusCode::OK, Json(value)).into_response(),
        Err(e) => {
            let status = status(&e);
            if status.is_server_error() {
                tracing::warn!(error = %e, "request failed");
            }
            error(status, e.to_string())
        }
    }
}

fn lease_status(e: &LeaseError) -> StatusCode {
    match e {
        LeaseError::Token(_) => StatusCode::FORBIDDEN,
        LeaseError::NotCounted(_) | LeaseError::BadReturn => StatusCode::BAD_REQUEST,
        LeaseError::NoStore | LeaseError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        LeaseError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn lease<B: InvoiceBackend>(State(app): State<App<B>>, body: Body) -> Response {
    let request: LeaseRequest = match parse(&body, "a lease request") {
        Ok(request) => request,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let result = app.counting.lease(&request).await;
    let metrics = &app.issuer.metrics;
    match &result {
        Ok(answer) if answer.granted > 0 => metrics.quota_lease("granted", answer.granted),
        Ok(answer) if answer.exhausted() => metrics.quota_lease("exhausted", 0),
        Ok(_) => metrics.quota_lease("held_elsewhere", 0),
        Err(_) => {}
    }
    answer(result, lease_status)
}

async fn give_back<B: InvoiceBackend>(State(app): State<App<B>>, body: Body) -> Response {
    let back: LeaseReturn = match parse(&body, "a lease return") {
        Ok(back) => back,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let result = app.counting.give_back(&back).await;
    if let Ok(returned) = &result {
        app.issuer.metrics.quota_units_returned(returned.credited);
    }
    answer(result, lease_status)
}

async fn manifest<B: InvoiceBackend>(State(app): State<App<B>>, body: Body) -> Response {
    match parse::<ManifestRequest>(&body, "a manifest request") {
        Ok(request) => {
            Json(crate::manifest::manifest(&app.issuer.catalog, &request)).into_response()
        }
        Err(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

fn revocation_status(e: &RevocationError) -> StatusCode {
    match e {
        RevocationError::Unauthorized | RevocationError::NoAdmin => StatusCode::UNAUTHORIZED,
        RevocationError::BadTokenId => StatusCode::BAD_REQUEST,
        RevocationError::NoStore | RevocationError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        RevocationError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(Deserialize)]
struct After {
    #[serde(default)]
    after: u64,
}

async fn revocations<B: InvoiceBackend>(
    State(app): State<App<B>>,
    after: Result<Query<After>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match after {
        Ok(Query(After { after })) => answer(app.revocations.page(after).await, revocation_status),
        Err(e) => error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}

async fn revoke<B: InvoiceBackend>(
    State(app): State<App<B>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if let Err(e) = app.revocations.authorize(authorization) {
        return error(revocation_status(&e), e.to_string());
    }
    let request: RevokeRequest = match parse(&body, "a revocation") {
        Ok(request) => request,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let result = app.revocations.revoke(&request).await;
    if let Ok(number) = &result {
        app.issuer.metrics.revocation_recorded();
        tracing::info!(token_id = %request.token_id, number, "token revoked");
    }
    answer(
        result.map(|number| json!({ "revoked": request.token_id, "number": number })),
        revocation_status,
    )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn challenge<B: InvoiceBackend>(State(app): State<App<B>>, body: Body) -> Response {
    let issuer = &app.issuer;
    let response = match parse::<ChallengeRequest>(&body, "a challenge request") {
        Err(why) => error(StatusCode::BAD_REQUEST, why),
        Ok(request) => issue(issuer, &request).await,
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
                IssueError::Backend(_) | IssueError::InvoiceMismatch(_) | IssueError::Store(_) => {
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

/// Ready when challenges can be issued. The store is needed for that only when the rate
/// limits live in it; otherwise a store that is down is reported but keeps the replica in
/// rotation: every replica shares it, so taking them all out would turn the counted tokens'
/// 503s into 503s for every unpaid request as well.
async fn readyz<B: InvoiceBackend>(State(app): State<App<B>>) -> Response {
    let redis = match &app.counting.store {
        None => None,
        Some(store) => Some(match store.ping().await {
            Ok(()) => "up".to_string(),
            Err(e) if app.issuer.limits_store().is_some() => {
                return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            }
            Err(e) => format!("down: {e}"),
        }),
    };
    let status = app.issuer.backend.status().await;
    match status {
        Ok(node) if node.is_ready() => {
            let mut body = json!({ "status": "ready", "lnd_state": node.state });
            if let Some(redis) = redis {
                body["redis"] = redis.into();
            }
            Json(body).into_response()
        }
        Ok(node) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("lnd is not ready: state {}", node.state),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn metrics<B: InvoiceBackend>(State(app): State<App<B>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.issuer.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}
