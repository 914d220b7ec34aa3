//! The `[redis]` section: where the shared store is and how to reach it. The URL may carry
//! credentials, so it comes from an environment variable (a Kubernetes Secret) and is never
//! logged whole; a user name and password may also come from variables of their own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config_error::{field, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// A URL without secrets may sit in the file…
    url: Option<String>,
    /// …or the whole URL in an environment variable.
    url_env: Option<String>,
    username_env: Option<String>,
    password_env: Option<String>,
    /// PEM CA bundle for `rediss://` with a private CA (relative to the config file).
    ca_file: Option<PathBuf>,
    #[serde(default = "default_connect_timeout_ms")]
    connect_timeout_ms: u64,
    #[serde(default = "default_command_timeout_ms")]
    command_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    1000
}

fn default_command_timeout_ms() -> u64 {
    500
}

/// Everything needed to open the store; [`Redis::where_`] is the only part fit for logs.
#[derive(Clone)]
pub struct Redis {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("where", &self.where_())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Scheme, host and port: the URL without user, password, path or query.
    pub fn where_(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("?", &self.url));
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        format!("{scheme}://{host}")
    }
}

impl RedisSection {
    pub fn compile(
        self,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Redis, ConfigError> {
        let from_env = |key: &str, var: &str| {
            env(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| field(format!("redis.{key}"), format!("variable {var} is not set")))
        };
        let url = match (self.url, &self.url_env) {
            (Some(url), None) => url,
            (None, Some(var)) => from_env("url_env", var)?,
            _ => return Err(field("redis.url", "give `url` or `url_env`, exactly one")),
        };
        let scheme = url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("redis" | "rediss")) {
            // Not the URL itself: it may hold a password.
            return Err(field(
                "redis.url",
                "must start with redis:// or rediss:// (TLS)",
            ));
        }
        let username = self
            .username_env
            .as_deref()
            .map(|var| from_env("username_env", var))
            .transpose()?;
        let password = self
            .password_env
            .as_deref()
            .map(|var| from_env("password_env", var))
            .transpose()?;
        let ca_pem = match self.ca_file {
            None => None,
            Some(path) => {
                let path = base.join(path);
                Some(std::fs::read(&path).map_err(|e| {
                    field(
                        "redis.ca_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?)
            }
        };
        if ca_pem.is_some() && scheme != Some("rediss") {
            return Err(field("redis.ca_file", "only applies to rediss:// URLs"));
        }
        let millis = |key: &str, ms: u64| {
            if (10..=60_000).contains(&ms) {
                Ok(Duration::from_millis(ms))
            } else {
                Err(field(
                    format!("redis.{key}"),
                    "must be between 10 and 60000",
                ))
            }
        };
        Ok(Redis {
            url,
            username,
            password,
            ca_pem,
            connect_timeout: millis("connect_timeout_ms", self.connect_timeout_ms)?,
            command_timeout: millis("command_timeout_ms", self.command_timeout_ms)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(
        toml_text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Redis, ConfigError> {
        let section: RedisSection = toml::from_str(toml_text).unwrap();
        section.compile(Path::new("."), env)
    }

    #[test]
    fn the_url_comes_from_the_file_or_a_variable_and_only_its_host_is_shown() {
        let env = |name: &str| {
            (name == "URL").then(|| "rediss://app:s3cret@cache.internal:6380/2".into())
        };
        let redis = compile(r#"url_env = "URL""#, &env).unwrap();
        assert_eq!(redis.where_(), "rediss://cache.internal:6380");
        assert!(!format!("{redis:?}").contains("s3cret"));
        let plain = compile(r#"url = "redis://127.0.0.1:6379""#, &|_| None).unwrap();
        assert_eq!(plain.where_(), "redis://127.0.0.1:6379");
    }

    #[test]
    fn a_bad_section_names_the_field_and_never_the_secret() {
        let env = |name: &str| (name == "URL").then(|| "http://u:s3cret@x".into());
        let e = compile(r#"url_env = "URL""#, &env).unwrap_err();
        assert!(e.to_string().starts_with("redis.url:"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
        let e = compile(r#"url_env = "NOPE""#, &|_| None).unwrap_err();
        assert_eq!(e.to_string(), "redis.url_env: variable NOPE is not set");
        let e = compile("", &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("redis.url:"), "{e}");
        let e = compile("url = \"redis://h\"\ncommand_timeout_ms = 0", &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("redis.command_timeout_ms"), "{e}");
        let e = compile("url = \"redis://h\"\nca_file = \"x.pem\"", &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("redis.ca_file"), "{e}");
    }
}
