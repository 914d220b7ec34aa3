//! Every callback the module imports from Envoy is bound when Envoy loads it (`-z now`), not on
//! first use: an Envoy that lacks one refuses the module at load time, naming the symbol, instead
//! of crashing on the first request that needs it (Envoy itself opens modules lazily).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,now");
    }
}
