#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The binary refuses a broken configuration before serving: non-zero exit, the field named,
//! no secret printed.

use std::path::Path;
use std::process::Command;

const SECRET: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let macaroon = l402_core::Macaroon::new(&[1; 32], b"id".to_vec(), "lnd").encode();
    std::fs::write(dir.join("m.macaroon"), macaroon).unwrap();
    let text = format!(
        "keys = [{{ id = 1, env = \"TEST_L402_KEY\" }}]\n[lnd]\nrest_url = \"https://127.0.0.1:1\"\n\
         tls_cert_path = \"{}\"\nmacaroon_path = \"m.macaroon\"\n{extra}\n[[services]]\nname = \"a\"\nprice_sat = 1\n",
        fixtures.join("tls.cert").display()
    );
    let path = dir.join("invoicer.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn check(path: &Path, key: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l402-invoicer"));
    cmd.arg("--config")
        .arg(path)
        .arg("--check")
        .env_remove("TEST_L402_KEY");
    if let Some(key) = key {
        cmd.env("TEST_L402_KEY", key);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn valid_configuration_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = check(&config(dir.path(), ""), Some(SECRET));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn a_bad_field_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = check(&config(dir.path(), "connect_timeout_ms = 0"), Some(SECRET));
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        "error: lnd.connect_timeout_ms: must be between 1 and 60000"
    );
}

#[test]
fn a_missing_secret_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = check(&config(dir.path(), ""), None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("keys[0].env: environment variable `TEST_L402_KEY` is not set"),
        "{stderr}"
    );
}

#[test]
fn a_short_secret_is_refused_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = check(&config(dir.path(), ""), Some("5a5a5a5a"));
    assert_eq!(code, 2);
    assert!(stderr.contains("at least 32 are required"), "{stderr}");
    assert!(!stderr.contains("5a5a5a5a"));
}

#[test]
fn a_missing_file_is_named() {
    let (code, _, stderr) = check(Path::new("/nonexistent/invoicer.toml"), Some(SECRET));
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/invoicer.toml"), "{stderr}");
}
