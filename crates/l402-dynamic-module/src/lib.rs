//! The L402 filter as an Envoy dynamic module: a shared library that Envoy's
//! `envoy.filters.http.dynamic_modules` filter loads into the process, running the same
//! host-independent filter (`l402-filter`) as the proxy-wasm module, with the same plugin JSON,
//! counters and fail-closed rules, at native speed.
//!
//! - [`abi`]: the C ABI of Envoy 1.40, as far as it is used; [`envoy`]: safe calls over it.
//! - [`hooks`]: the entry points Envoy calls, each guarded against panics ([`guard`]).
//! - [`state`]: one filter configuration, shared by Envoy's threads; [`host`]: the filter's
//!   ports over Envoy's callbacks; [`timer`]: the thread that wakes the configuration's timer.
//!
//! Unlike a wasm VM per worker, one configuration's blocks of counted tokens and revocations are
//! shared by every thread of the process: fewer leases, and one copy of the revocation list.

pub mod abi;
pub mod envoy;
pub mod guard;
pub mod hooks;
pub mod host;
pub mod state;
pub mod timer;
