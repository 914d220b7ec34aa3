//! Running the service: wire the parts together, serve, and shut down gracefully.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::connections::{fit_to_descriptor_limit, serve};
use crate::issue::Issuer;
use crate::lnd::rest::LndRest;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

pub fn issuer(config: &Config) -> Result<Issuer<LndRest>, String> {
    Ok(Issuer {
        backend: LndRest::new(&config.lnd)?,
        catalog: config.catalog.clone(),
        minting: config.minting.clone(),
        invoice_expiry_seconds: config.invoice_expiry_seconds,
        limiter: RateLimiter::new(config.rate_limits, Instant::now()),
        metrics: Arc::new(Metrics::default()),
    })
}

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish for up to the
/// configured grace period.
pub async fn run(config: Config) -> Result<(), String> {
    let issuer = Arc::new(issuer(&config)?);
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    tracing::info!(
        %address,
        lnd = %config.lnd.rest_url,
        services = ?config.catalog.names().collect::<Vec<_>>(),
        mint_key_id = %config.minting.key_id,
        "listening"
    );
    let metrics = issuer.metrics.clone();
    let app = crate::http::router(issuer, config.server.max_body_bytes);
    let mut limits = config.server.connections;
    limits.max_connections = fit_to_descriptor_limit(limits.max_connections);
    let grace = config.server.shutdown_grace;
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down; finishing requests in flight"
        );
    };
    serve(listener, app, limits, metrics, shutdown, grace).await;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
