//! The shipped configurations as the Rust tests and benchmarks read them: included with
//! `#[path]` by the spelling table (crates/l402-filter/src/spelling_tests.rs), the drift test
//! (tests/shipped_configs.rs) and the benchmark (crates/l402-filter/benches/request.rs), so that
//! the plugin JSON is found one way, by parsing the YAML.
// Each includer uses part of it.
#![allow(dead_code)]

use std::path::Path;

/// The repository root, whichever crate includes this file.
pub fn root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("envoy/envoy.yaml").is_file())
        .unwrap_or(manifest)
}

/// The plugin JSON of an Envoy bootstrap (the wasm filter's configuration, or the dynamic
/// module's), of an Istio `WasmPlugin` (`spec.pluginConfig`) or of an Envoy Gateway
/// `EnvoyExtensionPolicy` (`spec.dynamicModule[0].config`).
pub fn plugin_json(yaml: &str) -> String {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    if let Some(plugin) = doc.get("spec").and_then(|s| s.get("pluginConfig")) {
        return serde_json::to_string(plugin).unwrap();
    }
    if let Some(module) = doc.get("spec").and_then(|s| s.get("dynamicModule")) {
        return serde_json::to_string(&module[0]["config"]).unwrap();
    }
    let listeners = doc["static_resources"]["listeners"].as_sequence().unwrap();
    listeners
        .iter()
        .flat_map(|l| l["filter_chains"].as_sequence().unwrap())
        .flat_map(|c| c["filters"].as_sequence().unwrap())
        .flat_map(|f| f["typed_config"]["http_filters"].as_sequence().unwrap())
        .find_map(|f| match f["name"].as_str() {
            Some("envoy.filters.http.wasm") => {
                f["typed_config"]["config"]["configuration"]["value"].as_str()
            }
            Some("envoy.filters.http.dynamic_modules") => {
                f["typed_config"]["filter_config"]["value"].as_str()
            }
            _ => None,
        })
        .unwrap()
        .to_string()
}

/// The plugin JSON of envoy/envoy.yaml.
pub fn envoy_plugin_json() -> String {
    plugin_json(&std::fs::read_to_string(root().join("envoy/envoy.yaml")).unwrap())
}
