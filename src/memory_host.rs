//! The host, in memory, for the native tests of the request state machine.

use crate::config::InvoiceService;
use crate::host::{DispatchError, Headers, Host, Level};
use crate::metrics::Counter;
use crate::response::LocalResponse;

/// The clock every test request sees.
pub const NOW: i64 = 1_700_000_000;

/// The host, in memory: records what the filter did to it.
#[derive(Default)]
pub struct MemoryHost {
    pub headers: Headers,
    pub dispatched: Vec<(String, serde_json::Value)>,
    pub refuse_dispatch: bool,
    pub sent: Option<LocalResponse>,
    pub resumed: bool,
    pub counters: Vec<String>,
    /// Every message logged, at any level.
    pub logs: std::cell::RefCell<Vec<String>>,
    /// Header changes made (sets, removals, additions).
    pub header_writes: usize,
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

    pub fn counted(&self, name: &str) -> bool {
        self.counters.iter().any(|c| c == name)
    }
}

impl Host for MemoryHost {
    fn request_headers(&self) -> Headers {
        self.headers.clone()
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
        NOW
    }
    fn client_ip(&self) -> Option<String> {
        Some("203.0.113.9".into())
    }
    fn dispatch(&mut self, service: &InvoiceService, body: Vec<u8>) -> Result<u32, DispatchError> {
        if self.refuse_dispatch {
            return Err(DispatchError::Refused("BadArgument".into()));
        }
        self.dispatched.push((
            service.cluster.clone(),
            serde_json::from_slice(&body).unwrap(),
        ));
        Ok(7)
    }
    fn send_response(&mut self, response: LocalResponse) {
        assert!(self.sent.is_none(), "two local responses");
        self.sent = Some(response);
    }
    fn resume(&mut self) {
        self.resumed = true;
    }
    fn count(&mut self, counter: Counter) {
        self.counters.push(counter.name());
    }
    fn log(&self, _level: Level, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }
}
