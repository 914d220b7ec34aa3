//! The shared store: Redis (or Valkey), owned by the service. It holds what every replica of the
//! service and every proxy must agree on: how many of a counted token's requests are gone, the
//! revoked token ids, and (optionally) the challenge rate limits. Each change is one Lua script,
//! so it is atomic however many replicas call at once.
//!
//! One multiplexed connection per replica (commands are pipelined on it, so it needs no pool),
//! reconnecting on its own: a store that comes back is used again without a restart. Every
//! command has a deadline; past it the caller gets [`StoreError`] and answers 503.

mod config;
pub mod keys;
pub mod limits;
pub mod quota;
pub mod revocations;

use std::sync::Arc;
use std::time::Instant;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, Script};

pub use config::{Redis, RedisSection};

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Never the URL: it may carry a password.
    #[error("the shared store ({where_}) cannot be used: {problem}")]
    Unusable { where_: String, problem: String },
    #[error("the shared store ({where_}) failed: {kind}")]
    Command { where_: String, kind: &'static str },
}

pub struct Store {
    connection: ConnectionManager,
    where_: String,
    metrics: Arc<Metrics>,
}

impl Store {
    /// Opens the store lazily: the service starts (and answers 503 for what needs the store)
    /// while Redis is still down.
    pub fn open(redis: &Redis, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let where_ = redis.where_();
        let unusable = |e: redis::RedisError| StoreError::Unusable {
            where_: where_.clone(),
            problem: describe(&e),
        };
        let mut info = redis
            .url
            .as_str()
            .into_connection_info()
            .map_err(unusable)?;
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &redis.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &redis.password {
            settings = settings.set_password(password);
        }
        info = info.set_redis_settings(settings);
        let client = match &redis.ca_pem {
            None => Client::open(info),
            Some(pem) => Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(unusable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(redis.connect_timeout))
            .set_response_timeout(Some(redis.command_timeout))
            // Reconnect attempts are quick and few; the next command tries again anyway.
            .set_number_of_retries(1)
            .set_max_delay(std::time::Duration::from_millis(500));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unusable)?;
        Ok(Self {
            connection,
            where_,
            metrics,
        })
    }

    /// Runs `script` with `keys` and `args`, timed and counted under `operation`.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut connection = self.connection.clone();
        let started = Instant::now();
        let result = invocation.invoke_async(&mut connection).await;
        self.metrics.redis_call(operation, started.elapsed());
        result.map_err(|e| {
            let kind = kind(&e);
            self.metrics.redis_error(operation, kind);
            tracing::warn!(store = %self.where_, operation, error = %describe(&e), "shared store failed");
            StoreError::Command {
                where_: self.where_.clone(),
                kind,
            }
        })
    }

    /// One `PING`: whether the store answers now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Command {
                where_: self.where_.clone(),
                kind: kind(&e),
            })
    }
}

/// A metric label for a failure.
fn kind(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        "unreachable"
    } else if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed) {
        "auth"
    } else {
        "error"
    }
}

/// The error without anything that could be a secret: redis-rs errors name the failure, not
/// the URL, but a server's error text is cut short all the same.
fn describe(e: &redis::RedisError) -> String {
    let text = e.to_string();
    text.chars().take(200).collect()
}
