//! envoy-l402: the proxy-wasm filter. Until the filter lands this module only proves that the
//! protocol core links into a wasm32-wasip1 build.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(L402Root) });
}}

struct L402Root;

impl Context for L402Root {}

impl RootContext for L402Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(L402Http))
    }
}

struct L402Http;

impl Context for L402Http {}

impl HttpContext for L402Http {}

/// Re-exported so the filter build links the core and fails if it stops compiling for wasm.
pub use l402_core::Verifier;
