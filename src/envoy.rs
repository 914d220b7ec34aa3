//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out. No decisions are made here.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use l402_filter::callout;
use l402_filter::config::{FilterConfig, InvoiceService};
use l402_filter::credential_cache::CredentialCache;
use l402_filter::host::{Call, DispatchError, Headers, Host, Level, REQUEST_ID_HEADER};
use l402_filter::metrics::Counter;
use l402_filter::request::{RequestFilter, Verdict};
use l402_filter::response::LocalResponse;
use l402_filter::root::{Root, RootHost, MAX_ANSWER_BYTES};
use l402_filter::source_address;

use crate::local_response;

pub struct PluginRoot {
    root: Root,
    /// This VM's authenticated credentials under the current configuration; a new
    /// configuration starts a new one.
    cache: Arc<CredentialCache>,
    /// Envoy's id of each counter, at [`Counter::index`]; `None` where defining it failed.
    metrics: Arc<Vec<Option<u32>>>,
}

impl Default for PluginRoot {
    fn default() -> Self {
        Self {
            root: Root::default(),
            cache: Arc::new(CredentialCache::new(0)),
            metrics: Arc::default(),
        }
    }
}

impl PluginRoot {
    fn host(&self) -> TimerHost {
        TimerHost {
            metrics: Arc::clone(&self.metrics),
        }
    }
}

impl Context for PluginRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if !self.root.awaits(token) {
            return;
        }
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten();
        let body = (body_size <= MAX_ANSWER_BYTES)
            .then(|| hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size))
            .and_then(|r| r.ok().flatten())
            .unwrap_or_default();
        let mut host = self.host();
        self.root
            .on_answer(&mut host, token, status.as_deref(), &body);
    }
}

impl RootContext for PluginRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let json = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .inspect_err(|e| warn(&format!("cannot read the plugin configuration: {e:?}")))
            .ok()
            .flatten()
            .unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        match FilterConfig::compile(&json, &env) {
            Ok(config) => {
                log(
                    Level::Info,
                    &format!(
                        "l402 filter configured: {} routes",
                        config.routes.routes.len()
                    ),
                );
                for warning in &config.warnings {
                    log(
                        Level::Warn,
                        &format!("l402 filter configuration: {warning}"),
                    );
                }
                self.cache = Arc::new(CredentialCache::new(config.credential_cache_size));
                let mut host = self.host();
                self.root.configure(&mut host, config);
            }
            Err(e) => {
                log(
                    Level::Error,
                    &format!("l402 filter configuration refused: {e}"),
                );
                return false;
            }
        }
        self.metrics = Arc::new(
            Counter::all()
                .map(|counter| {
                    let name = counter.name();
                    hostcalls::define_metric(MetricType::Counter, &name)
                        .inspect_err(|e| warn(&format!("cannot define counter {name}: {e:?}")))
                        .ok()
                })
                .collect(),
        );
        true
    }

    fn on_tick(&mut self) {
        let mut host = self.host();
        self.root.tick(&mut host);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = Arc::clone(self.root.config()?);
        Some(Box::new(PluginHttp {
            filter: RequestFilter::new(config, Arc::clone(self.root.worker()))
                .with_cache(Arc::clone(&self.cache)),
            host: EnvoyHost {
                metrics: Arc::clone(&self.metrics),
            },
        }))
    }
}

struct PluginHttp {
    filter: RequestFilter,
    host: EnvoyHost,
}

impl Context for PluginHttp {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let headers = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
            .inspect_err(|e| warn(&format!("cannot read the callout answer's headers: {e:?}")))
            .unwrap_or_default();
        let body = (body_size > 0 && callout::within_limit(body_size))
            .then(|| {
                hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                    .inspect_err(|e| warn(&format!("cannot read the callout answer: {e:?}")))
                    .ok()
                    .flatten()
            })
            .flatten();
        self.filter.on_callout_response(
            &mut self.host,
            token,
            &headers,
            body_size,
            body.as_deref(),
        );
    }
}

impl HttpContext for PluginHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match self.filter.on_request_headers(&mut self.host) {
            Verdict::Continue => Action::Continue,
            Verdict::Pause => Action::Pause,
        }
    }
}

fn warn(message: &str) {
    log(Level::Warn, message);
}

/// A host call's failure is logged, never fatal: the filter's logic decides what follows.
fn logged<T>(what: &str, result: Result<T, proxy_wasm::types::Status>) {
    if let Err(e) = result {
        warn(&format!("{what} failed: {e:?}"));
    }
}

fn log(level: Level, message: &str) {
    let level = match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    // Logging is the last resort for reporting; if it fails there is nowhere left to say so.
    let _ = hostcalls::log(level, message);
}

fn count(metrics: &[Option<u32>], counter: Counter, n: u64) {
    if n == 0 {
        // Envoy refuses an increment of 0 (BadArgument), and it changes nothing anyway.
        return;
    }
    if let Some(Some(id)) = metrics.get(counter.index()) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        logged("counting", hostcalls::increment_metric(*id, n));
    }
}

fn since_epoch() -> Option<Duration> {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
}

fn millis_now() -> u64 {
    since_epoch().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A callout to the invoice service's cluster, from a request or from the timer.
fn dispatch(service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError> {
    let length = call.body.len().to_string();
    let mut headers = vec![
        (":method", call.method),
        (":path", call.path),
        (":authority", service.authority.as_str()),
    ];
    if !call.body.is_empty() {
        headers.push(("content-type", "application/json"));
        headers.push(("content-length", length.as_str()));
    }
    if let Some(id) = call.request_id {
        headers.push((REQUEST_ID_HEADER, id));
    }
    let body = (!call.body.is_empty()).then_some(call.body.as_slice());
    hostcalls::dispatch_http_call(
        &service.cluster,
        headers,
        body,
        vec![],
        Duration::from_millis(service.timeout_ms),
    )
    .map_err(|status| DispatchError::Refused(format!("{status:?}")))
}

/// The root context's side of the host: the timer's callouts, counters and clock.
struct TimerHost {
    metrics: Arc<Vec<Option<u32>>>,
}

impl RootHost for TimerHost {
    fn dispatch(&mut self, service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError> {
        dispatch(service, call)
    }

    fn count_by(&mut self, counter: Counter, n: u64) {
        count(&self.metrics, counter, n);
    }

    fn log(&self, level: Level, message: &str) {
        log(level, message);
    }

    fn now_millis(&self) -> u64 {
        millis_now()
    }

    fn set_tick(&mut self, ms: u64) {
        logged(
            "setting the timer",
            hostcalls::set_tick_period(Duration::from_millis(ms)),
        );
    }
}

struct EnvoyHost {
    metrics: Arc<Vec<Option<u32>>>,
}

impl Host for EnvoyHost {
    fn request_headers(&self, names: &[&str]) -> Headers {
        // The whole map in one call, not one call per name: proxy-wasm's single-value get hands
        // over only the first line of a header, and a second `Authorization` line must be seen.
        let all = hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .inspect_err(|e| warn(&format!("cannot read the request headers: {e:?}")))
            .unwrap_or_default();
        l402_filter::host::only(all, names)
    }

    fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        logged(
            "setting a request header",
            hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, value),
        );
    }

    fn add_request_header(&mut self, name: &str, value: &[u8]) {
        logged(
            "adding a request header",
            hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value),
        );
    }

    fn now_unix(&self) -> i64 {
        since_epoch().map_or(0, |d| d.as_secs() as i64)
    }

    fn now_millis(&self) -> u64 {
        millis_now()
    }

    fn client_ip(&self) -> Option<String> {
        let address = hostcalls::get_property(vec!["source", "address"])
            .inspect_err(|e| warn(&format!("cannot read source.address: {e:?}")))
            .ok()
            .flatten()?;
        source_address::ip_of(&address)
    }

    fn dispatch(&mut self, service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError> {
        dispatch(service, call)
    }

    fn send_response(&mut self, response: LocalResponse) {
        if let Err(status) = local_response::send(&response) {
            warn(&format!("sending a local response failed: status {status}"));
        }
    }

    fn resume(&mut self) {
        logged("resuming the request", hostcalls::resume_http_request());
    }

    fn count_by(&mut self, counter: Counter, n: u64) {
        count(&self.metrics, counter, n);
    }

    fn log(&self, level: Level, message: &str) {
        log(level, message);
    }
}
