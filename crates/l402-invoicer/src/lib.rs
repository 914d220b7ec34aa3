//! The L402 invoice service: the filter's callout target. It prices a request, creates the
//! invoice on lnd, mints the macaroon bound to that invoice's payment hash, and answers with
//! both. It never verifies tokens: that is the filter's job, done without calling anyone.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
pub mod config_error;
pub mod connections;
pub mod http;
pub mod invoice_check;
pub mod issue;
pub mod lnd;
pub mod manifest;
pub mod metrics;
pub mod page;
pub mod pricing;
pub mod quota;
pub mod ratelimit;
pub mod request_id;
pub mod revocations;
pub mod serve;
pub mod store;
