//! Running the service: wire the parts together, serve, and shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::config_error::{field, ConfigError};
use crate::connections::{fit_to_descriptor_limit, serve, ConnectionLimits};
use crate::http::App;
use crate::issue::Issuer;
use crate::lnd::rest::{ClientError, LndRest};
use crate::lnd::Metered;
use crate::metrics::Metrics;
use crate::quota::Counting;
use crate::ratelimit::RateLimiter;
use crate::revocations::Revocations;
use crate::store::{Store, StoreError};

/// Why the service could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Lnd(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
}

pub fn app(config: &Config) -> Result<App<Metered<LndRest>>, ServeError> {
    let metrics = Arc::new(Metrics::default());
    let store = match &config.redis {
        None => None,
        Some(redis) => Some(Arc::new(Store::open(redis, metrics.clone())?)),
    };
    let issuer = Arc::new(issuer(config, store.clone(), metrics)?);
    Ok(App {
        counting: Arc::new(Counting::new(
            store.clone(),
            config.minting.ring.clone(),
            config.quota,
        )),
        revocations: Arc::new(Revocations {
            store,
            admin_token: config.admin_token.clone(),
        }),
        issuer,
    })
}

fn issuer(
    config: &Config,
    store: Option<Arc<Store>>,
    metrics: Arc<Metrics>,
) -> Result<Issuer<Metered<LndRest>>, ClientError> {
    Ok(Issuer {
        backend: Metered::new(LndRest::new(&config.lnd)?, metrics.clone()),
        catalog: config.catalog.clone(),
        minting: config.minting.clone(),
        invoice_expiry_seconds: config.invoice_expiry_seconds,
        counted_lifetime_seconds: config.quota.idle_lifetime_seconds,
        limiter: RateLimiter::new(config.rate_limits, Instant::now()),
        store,
        metrics,
    })
}

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish for up to the
/// configured grace period.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let app = app(&config)?;
    let address = config.server.listen;
    let listen_error = |source| ServeError::Listen { address, source };
    let listener = TcpListener::bind(address).await.map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    tracing::info!(
        %address,
        lnd = %config.lnd.rest_url,
        services = ?config.catalog.names().collect::<Vec<_>>(),
        mint_key_id = %config.minting.key_id,
        store = config.redis.as_ref().map(|r| r.where_()).unwrap_or_default(),
        "listening"
    );
    let metrics = app.issuer.metrics.clone();
    let app = crate::http::router(app, config.server.max_body_bytes);
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

// The `[server]` section.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    listen: String,
    max_body_bytes: usize,
    shutdown_grace_seconds: u64,
    max_connections: usize,
    header_read_timeout_ms: u64,
    max_header_bytes: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8402".into(),
            max_body_bytes: 8 * 1024,
            shutdown_grace_seconds: 10,
            max_connections: 1024,
            header_read_timeout_ms: 30_000,
            max_header_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub connections: ConnectionLimits,
}

impl ServerSection {
    pub fn compile(self) -> Result<Server, ConfigError> {
        let raw = self;
        let listen = raw
            .listen
            .parse()
            .map_err(|_| field("server.listen", "must be IP:PORT, such as 127.0.0.1:8402"))?;
        if !(256..=1024 * 1024).contains(&raw.max_body_bytes) {
            return Err(field(
                "server.max_body_bytes",
                "must be between 256 and 1048576",
            ));
        }
        if !(1..=1_000_000).contains(&raw.max_connections) {
            return Err(field(
                "server.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        if !(100..=300_000).contains(&raw.header_read_timeout_ms) {
            return Err(field(
                "server.header_read_timeout_ms",
                "must be between 100 and 300000",
            ));
        }
        // hyper's read buffer cannot be smaller than 8 KiB.
        if !(8192..=1024 * 1024).contains(&raw.max_header_bytes) {
            return Err(field(
                "server.max_header_bytes",
                "must be between 8192 and 1048576",
            ));
        }
        Ok(Server {
            listen,
            max_body_bytes: raw.max_body_bytes,
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_seconds),
            connections: ConnectionLimits {
                max_connections: raw.max_connections,
                header_read_timeout: Duration::from_millis(raw.header_read_timeout_ms),
                max_header_bytes: raw.max_header_bytes,
            },
        })
    }
}
