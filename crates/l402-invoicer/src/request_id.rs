//! Every request the service answers runs in a tracing span carrying its request id, so each of
//! its log lines (the challenge issued or refused, lnd's failure, the store's) names it. The id
//! is the filter's (Envoy's `x-request-id`, which Envoy's access log prints too) when it sends a
//! usable one, so one unpaid request can be followed from Envoy to lnd; otherwise one is made
//! here. The answer carries it back under the same header.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use l402_core::contract::{is_request_id, REQUEST_ID_HEADER};
use tracing::Instrument;

/// The axum middleware: `router.layer(axum::middleware::from_fn(in_span))`.
pub async fn in_span(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .map(HeaderValue::as_bytes)
        .filter(|id| is_request_id(id))
        .map_or_else(made_here, |id| String::from_utf8_lossy(id).into_owned());
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// For a caller that sent no usable id: random, or if the system cannot give randomness a
/// number unique to this process (an id to search logs by need not be secret).
fn made_here() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    crate::quota::random_hex()
        .unwrap_or_else(|_| format!("local-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}
