//! envoy-l402: an L402 paywall as an Envoy proxy-wasm filter.
//!
//! Tokens are verified inline with no I/O; a request without a valid one is paused while the
//! invoice service is asked for a challenge, then answered with 402. The logic lives in
//! host-independent modules behind the [`host::Host`] port; this file only adapts it to proxy-wasm.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod callout;
pub mod canonical;
pub mod config;
pub mod host;
mod labels;
pub mod leases;
pub mod metrics;
pub mod request;
pub mod response;
pub mod revoked;
pub mod route;
pub mod routing;
pub mod source_address;
pub mod worker;

#[cfg(test)]
mod memory_host;
#[cfg(test)]
mod quota_tests;
#[cfg(test)]
mod spelling_tests;
#[cfg(test)]
mod state_machine_tests;

mod envoy;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(envoy::PluginRoot::default())
    });
}}
