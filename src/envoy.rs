//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out. No decisions are made here.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

use crate::callout::MAX_RESPONSE_BYTES;
use crate::config::{FilterConfig, InvoiceService};
use crate::host::{DispatchError, Headers, Host, Level};
use crate::metrics;
use crate::request::{RequestFilter, Verdict};
use crate::response::LocalResponse;

#[derive(Default)]
pub struct PluginRoot {
    config: Option<Rc<FilterConfig>>,
    metrics: Rc<HashMap<String, u32>>,
}

impl Context for PluginRoot {}

impl RootContext for PluginRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let json = hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        )
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
        let mut ids = HashMap::new();
        for name in metrics::all() {
            if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &name) {
                ids.insert(name, id);
            }
        }
        self.metrics = Rc::new(ids);
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
        let headers =
            hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default();
        let body = (body_size > 0 && body_size <= MAX_RESPONSE_BYTES)
            .then(|| {
                hostcalls::get_buffer(
                    proxy_wasm::types::BufferType::HttpCallResponseBody,
                    0,
                    body_size,
                )
            })
            .and_then(|r| r.ok().flatten());
        self.filter
            .on_callout_response(&mut self.host, token, &headers, body.as_deref());
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

fn log(level: Level, message: &str) {
    let level = match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    let _ = hostcalls::log(level, message);
}

struct EnvoyHost {
    metrics: Rc<HashMap<String, u32>>,
}

impl Host for EnvoyHost {
    fn request_headers(&self) -> Headers {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, value);
    }

    fn add_request_header(&mut self, name: &str, value: &[u8]) {
        let _ = hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value);
    }

    fn now_unix(&self) -> i64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn client_ip(&self) -> Option<String> {
        let address = hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()?;
        let address = String::from_utf8(address).ok()?;
        // `1.2.3.4:5678` or `[::1]:5678`: keep the address, drop the port.
        let ip = match address.rsplit_once(':') {
            Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) => ip,
            _ => address.as_str(),
        };
        Some(ip.trim_start_matches('[').trim_end_matches(']').to_string())
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
        let _ = hostcalls::send_http_response(response.status, headers, body);
    }

    fn resume(&mut self) {
        let _ = hostcalls::resume_http_request();
    }

    fn count(&mut self, metric: &str) {
        if let Some(id) = self.metrics.get(metric) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    fn log(&self, level: Level, message: &str) {
        log(level, message);
    }
}
