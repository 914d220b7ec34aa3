//! Natively a panic that crossed into Envoy would take the whole process down, not one wasm VM:
//! every entry point runs its work through [`guarded`], which catches it, logs it, and returns the
//! entry point's fail-closed answer.

use std::panic::{catch_unwind, AssertUnwindSafe};

use l402_filter::host::Level;

use crate::envoy::log;

/// Runs `work`; if it panics, logs `what` with the panic's message and returns `fallback()`.
pub fn guarded<T>(what: &str, work: impl FnOnce() -> T, fallback: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(value) => value,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            log(
                Level::Error,
                &format!("l402: panic in {what}, failing closed: {message}"),
            );
            fallback()
        }
    }
}

// The module catches panics only if they unwind; a build with `panic = "abort"` would turn any
// of them into an Envoy crash. Build it with `--profile native` (see the workspace Cargo.toml).
#[cfg(panic = "abort")]
compile_error!(
    "l402-dynamic-module must be built with panic = \"unwind\" (cargo build --profile native)"
);
