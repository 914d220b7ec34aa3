//! The host, in memory, for the native tests of the request state machine.

use crate::config::InvoiceService;
use crate::host::{Call, DispatchError, Headers, Host, Level};
use crate::metrics::Counter;
use crate::response::LocalResponse;

/// The clock every test request sees.
pub const NOW: i64 = 1_700_000_000;

/// The host, in memory: records what the filter did to it.
#[derive(Default)]
pub struct MemoryHost {
    pub headers: Headers,
    /// Callouts made: cluster, path and JSON body.
    pub dispatched: Vec<(String, serde_json::Value)>,
    pub dispatched_paths: Vec<String>,
    /// The request id each callout carried.
    pub dispatched_ids: Vec<Option<String>>,
    /// The clock in milliseconds (seconds are [`NOW`]).
    pub millis: u64,
    /// Seconds added to [`NOW`].
    pub seconds_later: i64,
    pub refuse_dispatch: bool,
    pub sent: Option<LocalResponse>,
    pub resumed: bool,
    pub counters: Vec<String>,
    /// Every message logged, at any level.
    pub logs: std::cell::RefCell<Vec<String>>,
    /// Header changes made (sets, removals, additions).
    pub header_writes: usize,
    /// The names asked for by each read of the request headers, in order.
    pub headers_asked: std::cell::RefCell<Vec<Vec<String>>>,
}

impl MemoryHost {
    pub fn request(method: &str, path: &str, extra: &[(&str, &[u8])]) -> Self {
        let mut headers: Headers = vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
            (":authority".into(), b"api.example.com".to_vec()),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_vec())));
        Self {
            headers,
            ..Self::default()
        }
    }

    pub fn with_headers(headers: Headers) -> Self {
        Self {
            headers,
            ..Self::default()
        }
    }

    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// The headers as the filter reads them.
    pub fn request_headers_for_test(&self) -> Headers {
        crate::host::only(self.headers.clone(), crate::request::headers_read())
    }

    pub fn counted(&self, name: &str) -> bool {
        self.counters.iter().any(|c| c == name)
    }
}

impl Host for MemoryHost {
    fn request_headers(&self, names: &[&str]) -> Headers {
        let names_asked = names.iter().map(|n| n.to_string()).collect();
        self.headers_asked.borrow_mut().push(names_asked);
        crate::host::only(self.headers.clone(), names)
    }
    fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        self.header_writes += 1;
        self.headers.retain(|(n, _)| n != name);
        if let Some(v) = value {
            self.headers.push((name.to_string(), v.to_vec()));
        }
    }
    fn add_request_header(&mut self, name: &str, value: &[u8]) {
        self.header_writes += 1;
        self.headers.push((name.to_string(), value.to_vec()));
    }
    fn now_unix(&self) -> i64 {
        NOW + self.seconds_later
    }
    fn now_millis(&self) -> u64 {
        self.millis
    }
    fn client_ip(&self) -> Option<String> {
        Some("203.0.113.9".into())
    }
    fn dispatch(&mut self, service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError> {
        if self.refuse_dispatch {
            return Err(DispatchError::Refused("BadArgument".into()));
        }
        self.dispatched.push((
            service.cluster.clone(),
            serde_json::from_slice(&call.body).unwrap(),
        ));
        self.dispatched_paths.push(call.path.to_string());
        self.dispatched_ids
            .push(call.request_id.map(str::to_string));
        Ok(7 + self.dispatched.len() as u32 - 1)
    }
    fn send_response(&mut self, response: LocalResponse) {
        assert!(self.sent.is_none(), "two local responses");
        self.sent = Some(response);
    }
    fn resume(&mut self) {
        self.resumed = true;
    }
    fn count_by(&mut self, counter: Counter, n: u64) {
        for _ in 0..n {
            self.counters.push(counter.name());
        }
    }
    fn log(&self, _level: Level, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }
}
