//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out. No decisions are made here.

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use crate::callout;
use crate::config::{FilterConfig, InvoiceService};
use crate::host::{DispatchError, Headers, Host, Level};
use crate::metrics::Counter;
use crate::request::{RequestFilter, Verdict};
use crate::response::LocalResponse;
use crate::source_address;

#[derive(Default)]
pub struct PluginRoot {
    config: Option<Rc<FilterConfig>>,
    /// Envoy's id of each counter, at [`Counter::index`]; `None` where defining it failed.
    metrics: Rc<Vec<Option<u32>>>,
}

impl Context for PluginRoot {}

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
                self.config = Some(config);
            }
            Err(e) => {
                log(
                    Level::Error,
                    &format!("l402 filter configuration refused: {e}"),
                );
                return false;
            }
        }
        self.metrics = Rc::new(
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

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(PluginHttp {
            filter: RequestFilter::new(config),
            host: EnvoyHost {
                metrics: Rc::clone(&self.metrics),
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

struct EnvoyHost {
    metrics: Rc<Vec<Option<u32>>>,
}

impl Host for EnvoyHost {
    fn request_headers(&self) -> Headers {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .inspect_err(|e| warn(&format!("cannot read the request headers: {e:?}")))
            .unwrap_or_default()
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
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn client_ip(&self) -> Option<String> {
        let address = hostcalls::get_property(vec!["source", "address"])
            .inspect_err(|e| warn(&format!("cannot read source.address: {e:?}")))
            .ok()
            .flatten()?;
        source_address::ip_of(&address)
    }

    fn dispatch(&mut self, service: &InvoiceService, body: Vec<u8>) -> Result<u32, DispatchError> {
        let length = body.len().to_string();
        let headers = vec![
            (":method", "POST"),
            (":path", service.path.as_str()),
            (":authority", service.authority.as_str()),
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ];
        hostcalls::dispatch_http_call(
            &service.cluster,
            headers,
            Some(&body),
            vec![],
            Duration::from_millis(service.timeout_ms),
        )
        .map_err(|status| DispatchError::Refused(format!("{status:?}")))
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

    fn count(&mut self, counter: Counter) {
        if let Some(Some(id)) = self.metrics.get(counter.index()) {
            logged("counting", hostcalls::increment_metric(*id, 1));
        }
    }

    fn log(&self, level: Level, message: &str) {
        log(level, message);
    }
}
