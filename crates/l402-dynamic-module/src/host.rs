//! The filter's ports, implemented with Envoy's callbacks: [`StreamHost`] for a request's hooks,
//! [`RootSide`] for the timer on the main thread.

use std::ffi::c_void;
use std::time::{SystemTime, UNIX_EPOCH};

use l402_filter::config::InvoiceService;
use l402_filter::host::{Call, DispatchError, Headers, Host, Level};
use l402_filter::metrics::Counter;
use l402_filter::response::LocalResponse;
use l402_filter::root::RootHost;
use l402_filter::source_address;

use crate::abi;
use crate::envoy::{self, Caller};
use crate::hooks::Stream;
use crate::state::ModuleConfig;

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn millis_now() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// A request's host, valid inside one of its hooks.
pub struct StreamHost<'a> {
    pub filter: *mut c_void,
    pub config: &'a ModuleConfig,
    pub stream: &'a Stream,
    /// Inside the request-headers hook, where going on is that hook's answer, not a resume.
    pub in_request_headers: bool,
}

impl Host for StreamHost<'_> {
    fn request_headers(&self, names: &[&str]) -> Headers {
        // SAFETY: `filter` is live inside the hook this host was made for.
        unsafe { envoy::request_headers(self.filter, names) }
    }

    fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        // SAFETY: as above.
        if !unsafe { envoy::set_request_header(self.filter, name, value) } {
            self.log(
                Level::Warn,
                &format!("setting request header {name} failed"),
            );
        }
    }

    fn add_request_header(&mut self, name: &str, value: &[u8]) {
        // SAFETY: as above.
        if !unsafe { envoy::add_request_header(self.filter, name, value) } {
            self.log(Level::Warn, &format!("adding request header {name} failed"));
        }
    }

    fn now_unix(&self) -> i64 {
        i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
    }

    fn now_millis(&self) -> u64 {
        millis_now()
    }

    fn client_ip(&self) -> Option<String> {
        // SAFETY: as above.
        let address = unsafe { envoy::client_address(self.filter) }?;
        source_address::ip_of(address.as_bytes())
    }

    fn dispatch(&mut self, service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError> {
        // SAFETY: as above.
        unsafe { envoy::dispatch(Caller::Stream(self.filter), service, call) }
    }

    fn send_response(&mut self, response: LocalResponse) {
        // SAFETY: as above.
        unsafe { envoy::send_response(self.filter, &response) }
    }

    fn resume(&mut self) {
        self.stream.paused.set(false);
        if self.in_request_headers {
            self.stream.resume_in_hook.set(true);
            return;
        }
        // SAFETY: as above.
        unsafe { envoy::continue_decoding(self.filter) }
    }

    fn count_by(&mut self, counter: Counter, n: u64) {
        let Some(Some(id)) = self.config.counters.get(counter.index()) else {
            return;
        };
        if n > 0 {
            // SAFETY: as above; the counter was defined on this stream's configuration.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                    self.filter,
                    *id,
                    std::ptr::null_mut(),
                    0,
                    n,
                );
            }
        }
    }

    fn log(&self, level: Level, message: &str) {
        envoy::log(level, message);
    }
}

/// The timer's host, on the main thread.
pub struct RootSide<'a> {
    config: &'a ModuleConfig,
}

impl<'a> RootSide<'a> {
    pub fn new(config: &'a ModuleConfig) -> Self {
        Self { config }
    }
}

impl RootHost for RootSide<'_> {
    fn dispatch(&mut self, service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError> {
        // SAFETY: the configuration is live, and this runs on the main thread.
        unsafe { envoy::dispatch(Caller::Config(self.config.envoy()), service, call) }
    }

    fn count_by(&mut self, counter: Counter, n: u64) {
        let Some(Some(id)) = self.config.counters.get(counter.index()) else {
            return;
        };
        if n > 0 {
            // SAFETY: as above.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                    self.config.envoy(),
                    *id,
                    std::ptr::null_mut(),
                    0,
                    n,
                );
            }
        }
    }

    fn log(&self, level: Level, message: &str) {
        envoy::log(level, message);
    }

    fn now_millis(&self) -> u64 {
        millis_now()
    }

    fn set_tick(&mut self, ms: u64) {
        self.config.period().set(ms);
    }
}
