//! Running the service: wire the parts together, serve, and shut down gracefully.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::issue::Issuer;
use crate::lnd::rest::LndRest;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

pub fn issuer(config: &Config) -> Result<Issuer<LndRest>, String> {
    let limits = &config.rate_limits;
    Ok(Issuer {
        backend: LndRest::new(&config.lnd)?,
        catalog: config.catalog.clone(),
        minting: config.minting.clone(),
        invoice_expiry_seconds: config.invoice_expiry_seconds,
        limiter: RateLimiter::new(
            limits.per_client,
            limits.global,
            limits.max_tracked_clients,
            Instant::now(),
        ),
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
    let app = crate::http::router(issuer, config.server.max_body_bytes);
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down; finishing requests in flight");
        stopped.notify_one();
    });
    let grace = config.server.shutdown_grace;
    tokio::select! {
        served = server => served.map_err(|e| format!("server failed: {e}")),
        () = async { stop.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_seconds = grace.as_secs(), "grace period over; exiting with requests in flight");
            Ok(())
        }
    }
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
