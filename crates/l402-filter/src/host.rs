//! The port between the filter's logic and its host. The proxy-wasm adapter implements it for
//! Envoy; tests implement it in memory, so every branch runs natively.

/// The hosts send a callout's request id under this name.
pub use l402_core::contract::REQUEST_ID_HEADER;

use crate::config::InvoiceService;
use crate::metrics::Counter;
use crate::response::LocalResponse;

/// Headers as the host hands them over: names lower-case, values raw bytes (an untrusted value
/// need not be UTF-8). Pseudo-headers (`:path`, `:method`, `:authority`) are included.
pub type Headers = Vec<(String, Vec<u8>)>;

/// The lines of `all` whose names are in `names`: what a host that can only copy the whole map
/// hands over.
pub fn only(all: Headers, names: &[&str]) -> Headers {
    let mut all = all;
    all.retain(|(n, _)| names.iter().any(|w| n.eq_ignore_ascii_case(w)));
    all
}

/// The first value of header `name` (any case).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchError {
    /// Envoy refused the call: almost always a cluster missing from the bootstrap.
    Refused(String),
}

/// A callout to the invoice service: which conversation of `l402_core::contract` it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    pub method: &'static str,
    pub path: &'a str,
    pub body: Vec<u8>,
    /// The client request's id, sent as `contract::REQUEST_ID_HEADER`; `None` for the timer's
    /// calls, which serve no one request.
    pub request_id: Option<&'a str>,
}

pub trait Host {
    /// Every line of each request header named in `names` (lower-case), a name's lines in the
    /// request's order. Only these: copying the whole map is most of a host's cost per request.
    fn request_headers(&self, names: &[&str]) -> Headers;
    /// Replaces (or with `None` removes) every line of a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&[u8]>);
    fn add_request_header(&mut self, name: &str, value: &[u8]);
    /// Whole seconds since the Unix epoch.
    fn now_unix(&self) -> i64;
    /// Milliseconds since the Unix epoch: the clock of lease hold and idle times.
    fn now_millis(&self) -> u64;
    fn client_ip(&self) -> Option<String>;
    /// Starts the callout; the answer comes back through `on_callout_response` with the token.
    fn dispatch(&mut self, service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError>;
    fn send_response(&mut self, response: LocalResponse);
    fn resume(&mut self);
    fn count(&mut self, counter: Counter) {
        self.count_by(counter, 1);
    }
    fn count_by(&mut self, counter: Counter, n: u64);
    fn log(&self, level: Level, message: &str);
}
