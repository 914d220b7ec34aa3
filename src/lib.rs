//! envoy-l402: an L402 paywall as an Envoy proxy-wasm filter.
//!
//! The filter itself is host-independent (`l402-filter`, behind its `Host` port); this crate only
//! adapts it to proxy-wasm: Envoy's callbacks in, host calls out.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod envoy;
mod local_response;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(envoy::PluginRoot::default())
    });
}}
