//! The server's connection bounds over real TCP: slow and idle clients are closed within the
//! header-read timeout, oversized heads get 431, and at the connection limit an idle
//! connection makes room for a new one instead of the new one waiting.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use l402_invoicer::connections::{serve, ConnectionLimits};
use l402_invoicer::metrics::Metrics;

const TIMEOUT: Duration = Duration::from_millis(400);

struct Server {
    address: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start(max_connections: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let app = Router::new().route("/", get(|| async { "ok" }));
        let limits = ConnectionLimits {
            max_connections,
            header_read_timeout: TIMEOUT,
            max_header_bytes: 8192,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        runtime.spawn(serve(
            listener,
            app,
            limits,
            metrics.clone(),
            shutdown,
            Duration::from_secs(1),
        ));
        Self {
            address,
            metrics,
            stop: Some(stop),
            runtime,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }

    /// A complete request on a new connection; the status line's code.
    fn get(&self) -> u16 {
        let mut stream = self.connect();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        status(&mut stream)
    }

    /// Waits (up to a second) for a gauge to settle: the server releases a closed connection's
    /// slot just after the client has read the end of its response.
    fn settle(&self, name: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.metric(name) != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(self.metric(name), want, "{name}");
    }

    fn metric(&self, name: &str) -> f64 {
        let text = self.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in\n{text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        std::thread::sleep(Duration::from_millis(50));
        let _ = &self.runtime;
    }
}

fn status(stream: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Reads until the peer closes the connection; how long that took.
fn closed_after(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
    started.elapsed()
}

#[test]
fn idle_connection_is_closed_within_the_header_timeout() {
    let server = Server::start(16);
    let mut idle = server.connect();
    let took = closed_after(&mut idle);
    assert!(
        took >= TIMEOUT - Duration::from_millis(50) && took < TIMEOUT * 4,
        "{took:?}"
    );
    assert_eq!(server.metric("l402_connection_header_timeouts_total"), 1.0);
}

#[test]
fn a_client_dripping_its_headers_is_closed_on_time() {
    let server = Server::start(16);
    let mut slow = server.connect();
    slow.set_nonblocking(false).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut closed = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        if slow.write_all(b"x-drip: 1\r\n").is_err() {
            closed = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(
        closed || closed_after(&mut slow) < TIMEOUT,
        "still open after {took:?}"
    );
    assert!(took < TIMEOUT * 4, "{took:?}");
}

#[test]
fn an_oversized_head_is_431() {
    let server = Server::start(16);
    let mut stream = server.connect();
    let big = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let _ = stream.write_all(big.as_bytes());
    assert_eq!(status(&mut stream), 431);
}

#[test]
fn at_the_limit_an_idle_connection_makes_room() {
    let server = Server::start(4);
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        idle.push(server.connect());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.metric("l402_connections_open"), 4.0);
    for _ in 0..3 {
        assert_eq!(server.get(), 200, "a new client is served at once");
        // One idle connection gave way to the first; each finished get frees its own slot.
        server.settle("l402_connections_open", 3.0);
    }
    // The first get took the oldest idle connection's place; the others found a free one.
    assert_eq!(server.metric("l402_connections_evicted_total"), 1.0);
    assert!(
        closed_after(&mut idle[0]) < TIMEOUT / 2,
        "the oldest idle one was closed"
    );
}

#[test]
fn a_connection_in_use_is_never_evicted() {
    let server = Server::start(2);
    // Keep-alive connection that has served a request: evicted only after never-used ones.
    let mut pooled = server.connect();
    pooled
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let n = pooled.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let _idle = server.connect();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.get(), 200);
    pooled
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let n = pooled.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "the pooled connection still works"
    );
}
