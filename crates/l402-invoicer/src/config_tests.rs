use std::path::Path;
use std::time::Duration;

use l402_core::{KeyId, Macaroon};

use super::*;

const SECRET: &str = "4242424242424242424242424242424242424242424242424242424242424242";

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// A directory with lnd's two files: the fixture certificate and a macaroon.
fn lnd_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("tls.cert"), dir.path().join("tls.cert")).unwrap();
    let macaroon = Macaroon::new(&[7; 32], b"lnd-id".to_vec(), "lnd").encode();
    std::fs::write(dir.path().join("invoice.macaroon"), macaroon).unwrap();
    dir
}

fn env(name: &str) -> Option<String> {
    (name == "L402_MASTER_KEY_1").then(|| SECRET.to_string())
}

const MINIMAL: &str = r#"
keys = [{ id = 1, env = "L402_MASTER_KEY_1" }]
[lnd]
rest_url = "https://127.0.0.1:8080"
tls_cert_path = "tls.cert"
macaroon_path = "invoice.macaroon"
[[services]]
name = "weather"
price_sat = 10
"#;

fn parse_with(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let dir = lnd_dir();
    Config::parse(text, dir.path(), env)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_with(text, &env)
}

fn field_of(text: &str) -> String {
    match parse(text) {
        Err(ConfigError::Field { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn minimal_config_gets_safe_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8402");
    assert_eq!(c.lnd.rest_url, "https://127.0.0.1:8080");
    assert_eq!(c.minting.key_id, KeyId(1));
    assert_eq!(c.invoice_expiry_seconds, 3600);
    assert_eq!(c.rate_limits.per_client.burst, 20);
    assert_eq!(c.rate_limits.unknown_client.burst, 20);
    assert_eq!(
        c.server.connections,
        crate::connections::ConnectionLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
        }
    );
    let weather = c.catalog.get("weather").unwrap();
    assert_eq!(weather.price_msat, 10_000);
    assert_eq!(weather.memo, "L402 access to weather");
    assert_eq!(weather.token_lifetime_seconds, None);
}

#[test]
fn the_shipped_example_is_valid() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/invoicer.toml")).unwrap();
    let dir = lnd_dir();
    let text = text
        .replace("/var/lib/lnd/tls.cert", "tls.cert")
        .replace("/var/lib/lnd/invoice.macaroon", "invoice.macaroon");
    let c = Config::parse(&text, dir.path(), &env).unwrap();
    assert_eq!(c.catalog.names().collect::<Vec<_>>(), ["weather", "news"]);
    let premium = c.catalog.get("weather").unwrap().offer("GET", "/premium/x");
    assert_eq!(premium.capabilities, ["premium"]);
    assert_eq!(premium.price_msat, 100_000);
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    let text = MINIMAL.replace("price_sat = 10", "price_sat = 10\nprce = 3");
    assert_eq!(field_of(&text), "services[0].prce");
    let text = MINIMAL.replace("[lnd]", "[lnd]\nmacaroon_hex = \"00\"");
    assert_eq!(field_of(&text), "lnd.macaroon_hex");
}

#[test]
fn wrong_types_and_missing_sections_are_named() {
    assert_eq!(
        field_of(&MINIMAL.replace("price_sat = 10", "price_sat = \"ten\"")),
        "services[0].price_sat"
    );
    let no_lnd = MINIMAL.split("[lnd]").next().unwrap().to_string()
        + "[[services]]\nname = \"a\"\nprice_sat = 1\n";
    let err = parse(&no_lnd).unwrap_err().to_string();
    assert!(err.contains("lnd"), "{err}");
}

#[test]
fn invalid_values_name_their_field() {
    let cases = [
        (
            "rest_url = \"https://127.0.0.1:8080\"",
            "rest_url = \"http://127.0.0.1:8080\"",
            "lnd.rest_url",
        ),
        (
            "tls_cert_path = \"tls.cert\"",
            "tls_cert_path = \"missing.cert\"",
            "lnd.tls_cert_path",
        ),
        (
            "tls_cert_path = \"tls.cert\"",
            "tls_cert_path = \"invoice.macaroon\"",
            "lnd.tls_cert_path",
        ),
        (
            "macaroon_path = \"invoice.macaroon\"",
            "macaroon_path = \"tls.cert\"",
            "lnd.macaroon_path",
        ),
        (
            "macaroon_path = \"invoice.macaroon\"",
            "",
            "lnd.macaroon_path",
        ),
        (
            "name = \"weather\"",
            "name = \"wea,ther\"",
            "services[0].name",
        ),
        ("price_sat = 10", "price_sat = 0", "services[0].price_sat"),
        (
            "price_sat = 10",
            "price_sat = 10\nprice_msat = 5",
            "services[0].price_sat",
        ),
        ("price_sat = 10", "", "services[0].price_sat"),
        (
            "price_sat = 10",
            "price_sat = 10\ncapabilities = [\"ok\", \"no pe\"]",
            "services[0].capabilities[1]",
        ),
        (
            "price_sat = 10",
            "price_sat = 10\ntimeout_seconds = 0",
            "services[0].timeout_seconds",
        ),
        (
            "price_sat = 10",
            "price_sat = 10\n[[services.prices]]\nprice_sat = 5",
            "services[0].prices[0].method",
        ),
        (
            "price_sat = 10",
            "price_sat = 10\n[[services.prices]]\npath_prefix = \"x\"\nprice_sat = 5",
            "services[0].prices[0].path_prefix",
        ),
        (
            "price_sat = 10",
            "price_sat = 10\n[[services.prices]]\nmethod = \"POST\"",
            "services[0].prices[0].price_sat",
        ),
        (
            "keys = [{ id = 1, env = \"L402_MASTER_KEY_1\" }]",
            "keys = []",
            "keys",
        ),
        (
            "keys = [{ id = 1, env = \"L402_MASTER_KEY_1\" }]",
            "keys = [{ id = 1, env = \"L402_MASTER_KEY_1\" }]\nmint_key_id = 2",
            "mint_key_id",
        ),
        (
            "[lnd]",
            "[invoice]\nexpiry_seconds = 5\n[lnd]",
            "invoice.expiry_seconds",
        ),
        (
            "[lnd]",
            "[server]\nlisten = \"localhost\"\n[lnd]",
            "server.listen",
        ),
        (
            "[lnd]",
            "[rate_limit]\nper_client = { burst = 0, per_second = 1.0 }\n[lnd]",
            "rate_limit.per_client.burst",
        ),
        (
            "[lnd]",
            "[rate_limit]\nglobal = { burst = 5, per_second = -1.0 }\n[lnd]",
            "rate_limit.global.per_second",
        ),
        (
            "[lnd]",
            "[rate_limit]\nunknown_client = { burst = 0, per_second = 1.0 }\n[lnd]",
            "rate_limit.unknown_client.burst",
        ),
        (
            "[lnd]",
            "[server]\nmax_connections = 0\n[lnd]",
            "server.max_connections",
        ),
        (
            "[lnd]",
            "[server]\nheader_read_timeout_ms = 0\n[lnd]",
            "server.header_read_timeout_ms",
        ),
        (
            "[lnd]",
            "[server]\nmax_header_bytes = 1024\n[lnd]",
            "server.max_header_bytes",
        ),
    ];
    for (from, to, expected) in cases {
        let text = MINIMAL.replacen(from, to, 1);
        assert_ne!(text, MINIMAL, "case {expected} did not change the config");
        assert_eq!(field_of(&text), expected, "case {to:?}");
    }
}

#[test]
fn duplicate_services_are_refused() {
    let text = format!("{MINIMAL}\n[[services]]\nname = \"weather\"\nprice_sat = 1\n");
    assert_eq!(field_of(&text), "services[1].name");
}

#[test]
fn missing_or_bad_master_secret_names_the_variable_never_the_value() {
    let none = |_: &str| None;
    let err = parse_with(MINIMAL, &none).unwrap_err().to_string();
    assert_eq!(
        err,
        "keys[0].env: environment variable `L402_MASTER_KEY_1` is not set"
    );
    let short = |name: &str| (name == "L402_MASTER_KEY_1").then(|| "abcd".to_string());
    let err = parse_with(MINIMAL, &short).unwrap_err().to_string();
    assert!(err.starts_with("keys: master secret 1 is 2 bytes"), "{err}");
    assert!(!err.contains("abcd"));
}

#[test]
fn macaroon_from_the_environment_overrides_the_file() {
    let macaroon = Macaroon::new(&[9; 32], b"other".to_vec(), "lnd").encode();
    let hex_macaroon = hex::encode(&macaroon);
    let with_env = |name: &str| match name {
        LND_MACAROON_ENV => Some(hex_macaroon.clone()),
        other => env(other),
    };
    let text = MINIMAL.replace("macaroon_path = \"invoice.macaroon\"", "");
    let c = parse_with(&text, &with_env).unwrap();
    assert_eq!(c.lnd.macaroon_hex, hex_macaroon);
    let garbage = |name: &str| match name {
        LND_MACAROON_ENV => Some("zz".to_string()),
        other => env(other),
    };
    let err = parse_with(&text, &garbage).unwrap_err().to_string();
    assert!(err.starts_with("L402_LND_MACAROON: "), "{err}");
}

#[test]
fn debug_output_carries_no_secret() {
    let c = parse(MINIMAL).unwrap();
    let printed = format!("{c:?}");
    assert!(!printed.contains(&c.lnd.macaroon_hex));
    assert!(!printed.contains(SECRET));
}

#[test]
fn invalid_toml_is_reported_as_such() {
    assert!(matches!(parse("keys = ["), Err(ConfigError::Toml(_))));
}

#[test]
fn counted_tokens_and_shared_limits_need_the_store() {
    let counted = MINIMAL.replace("price_sat = 10", "price_sat = 10\nrequests = 5");
    assert_eq!(field_of(&counted), "services[0].requests");
    let shared = format!("{MINIMAL}\n[rate_limit]\nstore = \"redis\"\n");
    assert_eq!(field_of(&shared), "rate_limit.store");
    let zero = MINIMAL.replace("price_sat = 10", "price_sat = 10\nrequests = 0");
    assert_eq!(field_of(&zero), "services[0].requests");
    let in_override =
        format!("{MINIMAL}[[services.prices]]\nmethod = \"POST\"\nprice_sat = 5\nrequests = 3\n");
    assert_eq!(field_of(&in_override), "services[0].prices[0].requests");

    let with_store = |text: &str| {
        let env = |name: &str| match name {
            "L402_REDIS_URL" => Some("redis://:pw@127.0.0.1:6379/0".to_string()),
            "L402_ADMIN_TOKEN" => Some("t".repeat(32)),
            other => env(other),
        };
        let store =
            "[redis]\nurl_env = \"L402_REDIS_URL\"\n[admin]\ntoken_env = \"L402_ADMIN_TOKEN\"\n";
        parse_with(&format!("{text}\n{store}"), &env)
    };
    let config = with_store(&counted).unwrap();
    let service = config.catalog.get("weather").unwrap();
    assert_eq!(service.offer("GET", "/").requests, Some(5));
    assert_eq!(config.admin_token.as_deref().map(str::len), Some(32));
    assert!(with_store(&shared).is_ok());
}

#[test]
fn a_short_admin_token_is_refused_without_showing_it() {
    let env = |name: &str| match name {
        "L402_ADMIN_TOKEN" => Some("short-secret".to_string()),
        other => env(other),
    };
    let text = format!("{MINIMAL}\n[admin]\ntoken_env = \"L402_ADMIN_TOKEN\"\n");
    let e = parse_with(&text, &env).unwrap_err().to_string();
    assert!(e.starts_with("admin.token_env:"), "{e}");
    assert!(!e.contains("short-secret"), "{e}");
}
