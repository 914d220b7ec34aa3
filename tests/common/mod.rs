//! Support code shared by the Rust tests (see `shipped.rs`).

pub mod shipped;
