//! Accepting connections within bounds, so that idle or slow sockets cannot starve the filter's
//! callouts.
//!
//! - Every connection must deliver a complete request head within `header_read_timeout`, counted
//!   from when the connection opens or the previous response was sent: a client that drips
//!   headers or sits idle is closed then (the same timer closes idle keep-alive connections, so
//!   Envoy's pool idle timeout should be shorter, as in the shipped envoy.yaml).
//! - A request head may use at most `max_header_bytes` of buffer (hyper answers 431 beyond).
//! - At most `max_connections` are open (and fewer if the file-descriptor limit is lower). At the
//!   limit a new connection does not wait: the connection that has done the least for the
//!   longest is closed to make room (first those that never sent a request, oldest first; then
//!   the longest idle). Connections with a request in flight are never evicted, so Envoy's pooled
//!   connections keep working through a flood.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
}

/// Descriptors kept free for everything but client connections (lnd, logs, the listener).
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft descriptor limit to the hard one and returns how many connections it allows.
pub fn fit_to_descriptor_limit(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let allowed =
        usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS).max(1)).unwrap_or(wanted);
    if allowed < wanted {
        tracing::warn!(
            max_connections = wanted,
            descriptor_limit = limit,
            using = allowed,
            "server.max_connections is above what the file-descriptor limit allows; raise the \
             limit (ulimit -n, LimitNOFILE=) or lower max_connections"
        );
    }
    wanted.min(allowed)
}

/// One open connection, as the eviction policy sees it.
struct Slot {
    opened_ms: u64,
    /// Milliseconds since the registry's epoch when the last request arrived; 0 for none yet.
    last_request_ms: AtomicU64,
    in_flight: AtomicUsize,
    evicting: AtomicBool,
    evict: Notify,
}

struct Registry {
    epoch: Instant,
    next_id: u64,
    slots: HashMap<u64, Arc<Slot>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn live(&self) -> usize {
        self.slots
            .values()
            .filter(|s| !s.evicting.load(Ordering::Relaxed))
            .count()
    }

    /// The idle connection that has done the least for the longest, if any.
    fn victim(&self) -> Option<Arc<Slot>> {
        self.slots
            .values()
            .filter(|s| {
                !s.evicting.load(Ordering::Relaxed) && s.in_flight.load(Ordering::Relaxed) == 0
            })
            .min_by_key(|s| match s.last_request_ms.load(Ordering::Relaxed) {
                0 => (0, s.opened_ms),
                last => (1, last),
            })
            .cloned()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish
/// for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    let registry = Arc::new(Mutex::new(Registry {
        epoch: Instant::now(),
        next_id: 0,
        slots: HashMap::new(),
    }));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait, retry.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some((id, slot)) = admit(&registry, limits.max_connections, &metrics) else {
            metrics.connection_refused();
            drop(stream);
            continue;
        };
        metrics.connection_opened();
        let task = Connection {
            epoch: lock(&registry).epoch,
            app: app.clone(),
            limits,
            slot,
            metrics: metrics.clone(),
            stopped: stopped.clone(),
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            task.run(stream).await;
            lock(&registry).slots.remove(&id);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let deadline = Instant::now() + grace;
    while !lock(&registry).slots.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // An error means the server is gone: stop as well.
    let _ = stopped.wait_for(|stop| *stop).await;
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

/// A slot for a new connection, evicting one at the limit; `None` when every connection is busy.
fn admit(registry: &Mutex<Registry>, max: usize, metrics: &Metrics) -> Option<(u64, Arc<Slot>)> {
    let mut registry = lock(registry);
    if registry.live() >= max {
        let victim = registry.victim()?;
        victim.evicting.store(true, Ordering::Relaxed);
        victim.evict.notify_one();
        metrics.connection_evicted();
    }
    let id = registry.next_id;
    registry.next_id += 1;
    let slot = Arc::new(Slot {
        opened_ms: registry.now_ms(),
        last_request_ms: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        evicting: AtomicBool::new(false),
        evict: Notify::new(),
    });
    registry.slots.insert(id, slot.clone());
    Some((id, slot))
}

struct Connection {
    /// The registry's epoch, for `Slot::last_request_ms`.
    epoch: Instant,
    app: Router,
    limits: ConnectionLimits,
    slot: Arc<Slot>,
    metrics: Arc<Metrics>,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let (epoch, app, slot) = (self.epoch, self.app.clone(), self.slot.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let slot = slot.clone();
            let app = app.clone();
            slot.in_flight.fetch_add(1, Ordering::Relaxed);
            let now_ms = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            slot.last_request_ms.store(now_ms.max(1), Ordering::Relaxed);
            async move {
                let response = app.oneshot(request.map(Body::new)).await;
                slot.in_flight.fetch_sub(1, Ordering::Relaxed);
                response
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(self.limits.max_header_bytes)
            .max_headers(64)
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = self.slot.evict.notified() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
            () = stop_requested(&mut self.stopped) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            if e.is_timeout() {
                self.metrics.connection_header_timeout();
            }
            tracing::debug!(error = %e, "connection closed");
        }
        self.metrics.connection_closed();
    }
}
