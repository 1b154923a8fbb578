//! The shared Redis connection: configuration, lazy connect, automatic reconnection.
//!
//! Redis is optional. It is configured by `router_settings.redis_url` / `redis_host` +
//! `redis_port` + `redis_password`, or the env vars LiteLLM reads (`REDIS_URL`, `REDIS_HOST`,
//! `REDIS_PORT`, `REDIS_PASSWORD`, `REDIS_USERNAME`). When the server is down at start-up or later,
//! callers get an error quickly (bounded by [`RESPONSE_TIMEOUT`]) and decide how to degrade;
//! a background task keeps reconnecting. A server that stays connected but stops answering
//! would cost every caller the whole timeout: after [`BREAKER_FAILURES`] such failures in a
//! row, calls fail at once for [`BREAKER_OPEN_FOR`] (a circuit breaker), then one failure
//! opens it again and one success closes it. No lock is held across an await: the connection
//! manager is cloned out of a std mutex before use.

use crate::config::LoadedConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bound on one Redis round trip; beyond it the caller treats Redis as unavailable.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long to wait for a TCP connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Delay between reconnection attempts while Redis is down.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);
/// Round trips in a row that timed out or lost their connection before the circuit opens.
const BREAKER_FAILURES: u32 = 3;
/// How long an open circuit fails calls without trying Redis.
const BREAKER_OPEN_FOR: Duration = Duration::from_secs(5);

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
    breaker: Breaker,
}

/// Counts failed round trips; while open, [`RedisHandle::run`] fails without trying.
struct Breaker {
    /// Failures in a row since the last success.
    failures: AtomicU32,
    /// Milliseconds after `born` until which the circuit is open; 0 when it never opened.
    open_until_ms: AtomicU64,
    born: Instant,
    open_for: Duration,
}

impl Breaker {
    fn new(open_for: Duration) -> Self {
        Self {
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            born: Instant::now(),
            open_for,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_open(&self) -> bool {
        // A circuit that never opened costs one load.
        let until = self.open_until_ms.load(Ordering::Relaxed);
        until != 0 && self.now_ms() < until
    }

    fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= BREAKER_FAILURES {
            let open_ms = u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX);
            self.open_until_ms
                .store(self.now_ms().saturating_add(open_ms), Ordering::Relaxed);
            // Once it has been open, the next failure opens it again.
            self.failures.store(BREAKER_FAILURES - 1, Ordering::Relaxed);
            if n == BREAKER_FAILURES {
                tracing::warn!(
                    "Redis failed {n} round trips in a row: calls skip it for {:?}",
                    self.open_for
                );
            }
        }
    }
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
    #[error("redis circuit breaker is open after repeated failures; retrying within {0:?}")]
    CircuitOpen(Duration),
}

impl RedisUnavailable {
    /// A failure that says the server is unreachable or not answering (not a refused command).
    fn is_outage(&self) -> bool {
        match self {
            Self::Timeout(_) => true,
            Self::Command(e) => {
                e.is_timeout()
                    || e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
            }
            Self::NotConnected | Self::CircuitOpen(_) => false,
        }
    }
}

impl RedisHandle {
    /// Creates the handle and starts connecting in the background; never fails on a down
    /// server (only on a malformed URL).
    pub fn connect(url: &str) -> Result<Self, String> {
        Self::connect_with(url, BREAKER_OPEN_FOR)
    }

    fn connect_with(url: &str, open_for: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        let h = Self {
            inner: Arc::new(Inner {
                client,
                conn: Mutex::new(None),
                breaker: Breaker::new(open_for),
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
        let breaker = &self.inner.breaker;
        if breaker.is_open() {
            return Err(RedisUnavailable::CircuitOpen(breaker.open_for));
        }
        let conn = self.conn()?;
        let r = match tokio::time::timeout(RESPONSE_TIMEOUT, f(conn)).await {
            Ok(r) => r.map_err(RedisUnavailable::from),
            Err(_) => Err(RedisUnavailable::Timeout(RESPONSE_TIMEOUT)),
        };
        match &r {
            Ok(_) => breaker.success(),
            Err(e) if e.is_outage() => breaker.failure(),
            Err(_) => {}
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ping(h: &RedisHandle) -> Result<String, RedisUnavailable> {
        h.run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await
    }

    /// A server that keeps its connection but stops answering (stopped with SIGSTOP): three
    /// timeouts open the circuit, calls then fail without trying, and once the server answers
    /// again the first call after the open period closes it.
    #[tokio::test]
    async fn a_silent_server_opens_the_circuit_and_an_answer_closes_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let server = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(mut server) = server else {
            eprintln!("redis-server not installed: skipping (the test command installs it)");
            return;
        };
        let signal = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, &server.id().to_string()])
                .status()
                .unwrap()
        };
        let h = RedisHandle::connect_with(
            &format!("redis://127.0.0.1:{port}"),
            Duration::from_millis(1500),
        )
        .unwrap();
        let mut up = false;
        for _ in 0..100 {
            if h.connect_now().await.is_ok() && ping(&h).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "redis-server did not start");

        assert!(signal("-STOP").success());
        for i in 0..BREAKER_FAILURES {
            let e = ping(&h).await.unwrap_err();
            assert!(e.is_outage(), "call {i}: {e}");
        }
        assert!(matches!(
            ping(&h).await,
            Err(RedisUnavailable::CircuitOpen(_))
        ));

        assert!(signal("-CONT").success());
        assert!(matches!(
            ping(&h).await,
            Err(RedisUnavailable::CircuitOpen(_))
        ));
        tokio::time::sleep(Duration::from_millis(1600)).await;
        // The server may first answer the commands that waited while it was stopped.
        let mut answered = false;
        for _ in 0..20 {
            if ping(&h).await.is_ok() {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answered, "no answer after the server resumed");
        assert!(!h.inner.breaker.is_open());
        assert_eq!(ping(&h).await.unwrap(), "PONG");
        let _ = server.kill();
        let _ = server.wait();
    }
}
