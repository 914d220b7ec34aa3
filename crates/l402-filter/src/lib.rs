//! The L402 filter, independent of its host: the plugin configuration, reading the request line
//! canonically, routes, the per-request state machine, reading the invoice service's answers,
//! the local responses, counters, and what a worker shares between requests (blocks of counted
//! tokens, revocations read from the shared store).
//!
//! Everything the filter asks of Envoy goes through the [`host::Host`] port, so the same code runs
//! as the proxy-wasm module (the root crate, `envoy-l402`) and natively in the tests, with no
//! proxy-wasm types in here. Tokens are verified inline with no I/O; a request without a valid one
//! is paused while the invoice service is asked for a challenge, then answered with 402.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accept;
pub mod callout;
pub mod canonical;
pub mod config;
pub mod credential_cache;
pub mod host;
mod labels;
pub mod leases;
pub mod metrics;
pub mod request;
pub mod response;
pub mod revoked;
pub mod root;
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
