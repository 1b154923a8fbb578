//! The shared Redis connection: configuration, lazy connect, automatic reconnection.
//!
//! Redis is optional. It is configured by `router_settings.redis_url` / `redis_host` +
//! `redis_port` + `redis_password`, or the env vars LiteLLM reads (`REDIS_URL`, `REDIS_HOST`,
//! `REDIS_PORT`, `REDIS_PASSWORD`, `REDIS_USERNAME`). When the server is down at start-up or later,
//! callers get an error quickly (bounded by [`RESPONSE_TIMEOUT`]) and decide how to degrade;
//! a background task keeps reconnecting. No lock is held across an await: the connection
//! manager is cloned out of a std mutex before use.

use crate::config::LoadedConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bound on one Redis round trip; beyond it the caller treats Redis as unavailable.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long to wait for a TCP connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Delay between reconnection attempts while Redis is down.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// Where Redis is, if configured. The URL may carry a password: never log it.
pub fn redis_url(loaded: &LoadedConfig) -> Option<String> {
    let rs = &loaded.config.router_settings;
    if let Some(u) = rs.redis_url.as_ref().map(|s| s.expose().to_string()) {
        return Some(u);
    }
    let host = rs.redis_host.clone().or_else(|| loaded.env("REDIS_HOST"));
    if host.is_none() {
        if let Some(u) = loaded.env("REDIS_URL") {
            return Some(u);
        }
    }
    let host = host?;
    let port = rs
        .redis_port
        .as_ref()
        .map(|p| match p {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .or_else(|| loaded.env("REDIS_PORT"))
        .unwrap_or_else(|| "6379".into());
    let password = rs
        .redis_password
        .as_ref()
        .map(|p| p.expose().to_string())
        .or_else(|| loaded.env("REDIS_PASSWORD"))
        .filter(|p| !p.is_empty());
    let user = loaded.env("REDIS_USERNAME").unwrap_or_default();
    let scheme = if loaded
        .env("REDIS_SSL")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        "rediss"
    } else {
        "redis"
    };
    Some(match password {
        Some(p) => format!("{scheme}://{user}:{p}@{host}:{port}"),
        None => format!("{scheme}://{host}:{port}"),
    })
}

/// A cloneable handle to the shared connection.
#[derive(Clone)]
pub struct RedisHandle {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
}

/// Redis could not answer in time or at all.
#[derive(Debug, thiserror::Error)]
pub enum RedisUnavailable {
    #[error("redis is not connected")]
    NotConnected,
    #[error("redis error: {0}")]
    Command(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

impl RedisHandle {
    /// Creates the handle and starts connecting in the background; never fails on a down
    /// server (only on a malformed URL).
    pub fn connect(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        let h = Self {
            inner: Arc::new(Inner {
                client,
                conn: Mutex::new(None),
            }),
        };
        let bg = h.clone();
        tokio::spawn(async move { bg.keep_connected().await });
        Ok(h)
    }

    /// Connects now (for tests and start-up checks); the background task keeps trying anyway.
    pub async fn connect_now(&self) -> Result<(), RedisUnavailable> {
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let mgr = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            ConnectionManager::new_with_config(self.inner.client.clone(), cfg),
        )
        .await
        .map_err(|_| RedisUnavailable::Timeout(CONNECT_TIMEOUT * 2))??;
        if let Ok(mut slot) = self.inner.conn.lock() {
            *slot = Some(mgr);
        }
        Ok(())
    }

    async fn keep_connected(self) {
        loop {
            let connected = self.inner.conn.lock().map(|c| c.is_some()).unwrap_or(false);
            if !connected {
                match self.connect_now().await {
                    Ok(()) => tracing::info!("connected to Redis"),
                    Err(e) => tracing::debug!("redis connect failed: {e}"),
                }
            }
            tokio::time::sleep(RECONNECT_EVERY).await;
            // Stop when every other handle is gone.
            if Arc::strong_count(&self.inner) == 1 {
                return;
            }
        }
    }

    /// The connection manager, if connected (a cheap clone; it reconnects by itself).
    pub fn conn(&self) -> Result<ConnectionManager, RedisUnavailable> {
        self.inner
            .conn
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or(RedisUnavailable::NotConnected)
    }

    /// Runs one command or script invocation with the response timeout applied.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        let conn = self.conn()?;
        match tokio::time::timeout(RESPONSE_TIMEOUT, f(conn)).await {
            Ok(r) => r.map_err(RedisUnavailable::from),
            Err(_) => Err(RedisUnavailable::Timeout(RESPONSE_TIMEOUT)),
        }
    }
}
