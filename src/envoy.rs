//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out. No decisions are made here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use l402_filter::callout;
use l402_filter::config::{FilterConfig, InvoiceService};
use l402_filter::credential_cache::CredentialCache;
use l402_filter::host::{Call, DispatchError, Headers, Host, Level};
use l402_filter::metrics::{Counter, Quota, Revocations};
use l402_filter::request::{RequestFilter, Verdict};
use l402_filter::response::LocalResponse;
use l402_filter::source_address;
use l402_filter::worker::{RootCallKind, Worker};

pub struct PluginRoot {
    config: Option<Arc<FilterConfig>>,
    /// This VM's authenticated credentials under `config`; a new configuration starts a new one.
    cache: Arc<CredentialCache>,
    /// Envoy's id of each counter, at [`Counter::index`]; `None` where defining it failed.
    metrics: Arc<Vec<Option<u32>>>,
    /// Shared with every request of this worker; kept across reconfigurations, so neither a
    /// held block nor a revocation is forgotten.
    worker: Arc<Worker>,
    /// The root context's callouts in flight.
    calls: HashMap<u32, RootCallKind>,
    /// Revocation reads are failing: logged once when they start to, and when they recover, not
    /// on every tick of an outage.
    reads_failing: bool,
}

impl Default for PluginRoot {
    fn default() -> Self {
        Self {
            config: None,
            cache: Arc::new(CredentialCache::new(0)),
            metrics: Arc::default(),
            worker: Arc::default(),
            calls: HashMap::new(),
            reads_failing: false,
        }
    }
}

impl PluginRoot {
    fn count(&self, counter: Counter, n: u64) {
        count(&self.metrics, counter, n);
    }

    /// Gives back idle blocks and reads revocations when due.
    fn run_timer(&mut self) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let served = self.worker.take_served_from_blocks();
        self.count(Counter::Quota(Quota::ServedFromBlock), served);
        for call in self.worker.tick(millis_now(), &config.counting) {
            let kind = call.kind;
            let dispatched = dispatch(
                &config.invoice_service,
                Call {
                    method: call.method,
                    path: &call.path,
                    body: call.body,
                },
            );
            match dispatched {
                Ok(token) => {
                    self.calls.insert(token, kind);
                }
                Err(e) => {
                    let why = format!("cannot call the invoice service from the timer: {e:?}");
                    self.root_call_failed(kind, &why);
                }
            }
        }
    }

    /// Until the first revocation read succeeds paid requests get 503, so the timer runs fast
    /// until then.
    fn set_timer(&self) {
        let Some(config) = &self.config else {
            return;
        };
        let mut tick = config.counting.tick_ms();
        if config.counting.revocation_sync_ms.is_some() && !self.worker.revocations_synced() {
            tick = tick.min(FIRST_READ_TICK_MS);
        }
        logged(
            "setting the timer",
            hostcalls::set_tick_period(Duration::from_millis(tick)),
        );
    }

    fn root_call_failed(&mut self, kind: RootCallKind, why: &str) {
        match kind {
            RootCallKind::GiveBack { unused } => {
                self.count(Counter::Quota(Quota::ReturnErrors), 1);
                warn(&format!("{unused} unused requests stay counted: {why}"));
            }
            RootCallKind::Sync => {
                self.worker.sync_failed();
                self.count(Counter::Revocations(Revocations::SyncErrors), 1);
                if !std::mem::replace(&mut self.reads_failing, true) {
                    warn(&format!(
                        "revocations cannot be read (what is known stays revoked): {why}"
                    ));
                }
            }
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
        let Some(kind) = self.calls.remove(&token) else {
            return;
        };
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .unwrap_or_default();
        if status != "200" {
            let why = format!("the invoice service answered `{status}`");
            self.root_call_failed(kind, &why);
            return;
        }
        match kind {
            RootCallKind::GiveBack { unused } => {
                self.count(Counter::Quota(Quota::Returns), 1);
                self.count(Counter::Quota(Quota::ReturnedUnits), u64::from(unused));
            }
            RootCallKind::Sync => {
                let body = (body_size <= MAX_REVOCATION_PAGE_BYTES)
                    .then(|| hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size))
                    .and_then(|r| r.ok().flatten())
                    .unwrap_or_default();
                let was_synced = self.worker.revocations_synced();
                let counting = self.config.as_ref().map(|c| c.counting);
                let answered = counting
                    .ok_or_else(|| "not configured".to_string())
                    .and_then(|c| self.worker.sync_answered(&body, millis_now(), &c));
                match answered {
                    Ok(applied) => {
                        self.count(Counter::Revocations(Revocations::Reads), 1);
                        if std::mem::replace(&mut self.reads_failing, false) {
                            log(Level::Info, "revocations are read again");
                        }
                        if !was_synced && self.worker.revocations_synced() {
                            self.set_timer();
                        }
                        self.count(
                            Counter::Revocations(Revocations::Applied),
                            applied.added as u64,
                        );
                        if applied.more {
                            self.run_timer();
                        }
                    }
                    Err(why) => self.root_call_failed(kind, &why),
                }
            }
        }
    }
}

/// The timer's period until the first revocation read has succeeded.
const FIRST_READ_TICK_MS: u64 = 50;

/// A page of 1,000 ids is about 70 KiB.
const MAX_REVOCATION_PAGE_BYTES: usize = 1024 * 1024;

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
                self.config = Some(config);
                self.set_timer();
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
        self.run_timer();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(PluginHttp {
            filter: RequestFilter::new(config, Arc::clone(&self.worker))
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
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (!response.body.is_empty()).then_some(response.body.as_slice());
        logged(
            "sending a local response",
            hostcalls::send_http_response(response.status, headers, body),
        );
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
