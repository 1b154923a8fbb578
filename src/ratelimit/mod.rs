//! Request, token and concurrency limits, exact across replicas.
//!
//! A request is checked against a list of [`Descriptor`]s (its key, user, team, end user, tags,
//! model-per-key, the proxy as a whole), all at once: either every counter is taken or none is.
//! Semantics follow LiteLLM: RPM and TPM count in a fixed window of
//! `LITELLM_RATE_LIMIT_WINDOW_SIZE` seconds (default 60) that starts with the first request seen
//! for that descriptor; a request is refused when its RPM count would exceed the limit, or when
//! the window's token count already reached the TPM limit; concurrency is +1 on start and −1 when
//! the response (or stream) ends. Tokens are reserved up front (prompt estimate + `max_tokens`)
//! and reconciled with the real usage afterwards ([`Permit::settle`]).
//!
//! Counters live in memory, or in Redis when it is configured (one Lua script call per check,
//! never read-then-write). When Redis is unreachable the configured [`FailMode`] decides.

mod memory;
mod redis_backend;

use crate::error::{ApiError, ErrorClass};
use crate::redis::RedisHandle;
use axum::http::{HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// LiteLLM's default window (seconds), overridable by `LITELLM_RATE_LIMIT_WINDOW_SIZE`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// What a limit applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// LiteLLM's scope name: `api_key`, `user`, `team`, `end_user`, `tag`, `model_per_key`,
    /// `global`.
    pub scope: &'static str,
    /// The scope's identity (key hash, user id, ...).
    pub id: String,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_parallel: Option<u64>,
}

impl Descriptor {
    pub fn is_limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.max_parallel.is_some()
    }
}

/// Which limit refused the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
    Parallel,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Parallel => "max_parallel_requests",
        }
    }
}

/// A refusal.
#[derive(Debug, Clone)]
pub struct Exceeded {
    pub descriptor: Descriptor,
    pub kind: LimitKind,
    /// Time until the window resets (zero for concurrency limits).
    pub resets_in: Duration,
}

impl Exceeded {
    /// LiteLLM's 429 for this refusal, with `retry-after`.
    pub fn to_error(&self, window: Duration) -> ApiError {
        let limit = match self.kind {
            LimitKind::Requests => self.descriptor.rpm,
            LimitKind::Tokens => self.descriptor.tpm,
            LimitKind::Parallel => self.descriptor.max_parallel,
        }
        .unwrap_or(0);
        let wait = if self.resets_in.is_zero() {
            window.min(Duration::from_secs(1))
        } else {
            self.resets_in
        };
        let reset_at = chrono::Utc::now() + chrono::Duration::milliseconds(wait.as_millis() as i64);
        ApiError::new(
            ErrorClass::RateLimit,
            format!(
                "Rate limit exceeded for {}: {}. Limit type: {}. Current limit: {limit}, Remaining: 0. Limit resets at: {} UTC",
                self.descriptor.scope,
                self.descriptor.id,
                self.kind.as_str(),
                reset_at.format("%Y-%m-%d %H:%M:%S")
            ),
        )
        .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)
        .with_header("rate_limit_type", self.kind.as_str())
        .with_header("reset_at", reset_at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    }
}

/// Counter values after a successful check, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Per descriptor (same order): requests and tokens counted in the current window.
    pub counts: Vec<(u64, i64)>,
}

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Allow the request, log a warning, count it in [`Limiter::fail_open_total`].
    #[default]
    Open,
    /// Refuse with a 503 until Redis is back.
    Closed,
}

impl FailMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" | "fail_open" | "fail-open" => Some(Self::Open),
            "closed" | "fail_closed" | "fail-closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

enum Backend {
    Memory(memory::MemoryCounters),
    Redis(RedisHandle),
}

/// The limiter shared by every request.
pub struct Limiter {
    backend: Backend,
    window: Duration,
    fail_mode: FailMode,
    fail_open_total: AtomicU64,
}

/// Outcome of [`Limiter::acquire`].
pub enum Acquired {
    Ok(Permit, Usage),
    Refused(Exceeded),
}

impl Limiter {
    pub fn in_memory(window: Duration) -> Arc<Self> {
        Arc::new(Self {
            backend: Backend::Memory(memory::MemoryCounters::default()),
            window,
            fail_mode: FailMode::Open,
            fail_open_total: AtomicU64::new(0),
        })
    }

    pub fn with_redis(redis: RedisHandle, window: Duration, fail_mode: FailMode) -> Arc<Self> {
        Arc::new(Self {
            backend: Backend::Redis(redis),
            window,
            fail_mode,
            fail_open_total: AtomicU64::new(0),
        })
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Requests let through because Redis was unreachable (fail-open).
    pub fn fail_open_total(&self) -> u64 {
        self.fail_open_total.load(Ordering::Relaxed)
    }

    /// Checks and takes every counter of `descs` at once, reserving `reserve_tokens` against
    /// each TPM limit. Descriptors without any limit are skipped.
    pub async fn acquire(
        self: &Arc<Self>,
        descs: Vec<Descriptor>,
        reserve_tokens: u64,
    ) -> Result<Acquired, ApiError> {
        let descs: Vec<Descriptor> = descs.into_iter().filter(Descriptor::is_limited).collect();
        if descs.is_empty() {
            return Ok(Acquired::Ok(Permit::empty(), Usage::default()));
        }
        let reserve_tokens = reserve_tokens.min(MAX_COUNTED_TOKENS);
        let result = match &self.backend {
            Backend::Memory(m) => Ok(m.acquire(&descs, reserve_tokens, self.window)),
            Backend::Redis(r) => {
                redis_backend::acquire(r, &descs, reserve_tokens, self.window).await
            }
        };
        match result {
            Ok(Ok(usage)) => Ok(Acquired::Ok(
                Permit {
                    limiter: Some(self.clone()),
                    descs,
                    reserved: reserve_tokens,
                    settled: false,
                },
                usage,
            )),
            Ok(Err(exceeded)) => Ok(Acquired::Refused(exceeded)),
            Err(e) => match self.fail_mode {
                FailMode::Open => {
                    self.fail_open_total.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "rate limiter: Redis unavailable, failing open");
                    Ok(Acquired::Ok(Permit::empty(), Usage::default()))
                }
                FailMode::Closed => Err(ApiError::new(
                    ErrorClass::ServiceUnavailable,
                    format!("Rate limiter unavailable (Redis: {e}); refusing requests (rate_limit_fail_mode: closed)"),
                )),
            },
        }
    }

    fn release(self: &Arc<Self>, descs: Vec<Descriptor>, token_delta: i64) {
        match &self.backend {
            Backend::Memory(m) => m.release(&descs, token_delta),
            Backend::Redis(r) => {
                let r = r.clone();
                let window = self.window;
                tokio::spawn(async move {
                    if let Err(e) = redis_backend::release(&r, &descs, token_delta, window).await {
                        tracing::warn!(error = %e, "rate limiter: could not release counters in Redis");
                    }
                });
            }
        }
    }
}

/// Held for the life of a request; releases its concurrency slot and reconciles reserved
/// tokens when settled or dropped (a dropped permit returns the whole reservation).
pub struct Permit {
    limiter: Option<Arc<Limiter>>,
    descs: Vec<Descriptor>,
    reserved: u64,
    settled: bool,
}

impl Permit {
    pub fn empty() -> Self {
        Self {
            limiter: None,
            descs: Vec::new(),
            reserved: 0,
            settled: false,
        }
    }

    /// Reconciles with the tokens actually used and frees the concurrency slot.
    pub fn settle(mut self, actual_tokens: u64) {
        self.finish(counted(actual_tokens) - counted(self.reserved));
    }

    fn finish(&mut self, token_delta: i64) {
        if self.settled {
            return;
        }
        self.settled = true;
        if let Some(l) = self.limiter.take() {
            l.release(std::mem::take(&mut self.descs), token_delta);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Not settled: the request failed or was cancelled before usage was known; give the
        // reservation back.
        let delta = -counted(self.reserved);
        self.finish(delta);
    }
}

/// The most tokens one call reserves or settles: a client's `max_tokens` or an upstream's usage
/// can be any u64, and counters are signed 64-bit (in memory and in Redis, whose scripts see
/// numbers as doubles, exact up to 2^53). Any single call this large fills a TPM window anyway.
const MAX_COUNTED_TOKENS: u64 = (1 << 53) - 1;

/// `tokens` as a counter step, capped at [`MAX_COUNTED_TOKENS`].
fn counted(tokens: u64) -> i64 {
    tokens.min(MAX_COUNTED_TOKENS) as i64
}

/// The four `x-ratelimit-<scope>-...` header names of a scope: limit and remaining requests,
/// limit and remaining tokens.
type ScopeHeaders = [HeaderName; 4];

macro_rules! scope_headers {
    ($($scope:literal => $name:ident),* $(,)?) => {
        $(static $name: ScopeHeaders = [
            HeaderName::from_static(concat!("x-ratelimit-", $scope, "-limit-requests")),
            HeaderName::from_static(concat!("x-ratelimit-", $scope, "-remaining-requests")),
            HeaderName::from_static(concat!("x-ratelimit-", $scope, "-limit-tokens")),
            HeaderName::from_static(concat!("x-ratelimit-", $scope, "-remaining-tokens")),
        ];)*
        /// The names for a scope, built once (a scope outside the list is formatted).
        fn scope_headers(scope: &str) -> std::borrow::Cow<'static, ScopeHeaders> {
            match scope {
                $($scope => std::borrow::Cow::Borrowed(&$name),)*
                other => std::borrow::Cow::Owned(
                    ["limit-requests", "remaining-requests", "limit-tokens", "remaining-tokens"].map(
                        |kind| {
                            HeaderName::try_from(format!("x-ratelimit-{other}-{kind}"))
                                .unwrap_or_else(|_| HeaderName::from_static("x-ratelimit-other"))
                        },
                    ),
                ),
            }
        }
    };
}

scope_headers! {
    "api_key" => API_KEY_HEADERS,
    "user" => USER_HEADERS,
    "team" => TEAM_HEADERS,
    "end_user" => END_USER_HEADERS,
    "tag" => TAG_HEADERS,
    "model_per_key" => MODEL_PER_KEY_HEADERS,
    "global" => GLOBAL_HEADERS,
}

/// `x-ratelimit-<scope>-...` headers for a successful check.
pub fn headers(descs: &[Descriptor], usage: &Usage) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (d, (req, tok)) in descs.iter().filter(|d| d.is_limited()).zip(&usage.counts) {
        if d.rpm.is_none() && d.tpm.is_none() {
            continue;
        }
        let [limit_req, left_req, limit_tok, left_tok] = scope_headers(d.scope).into_owned();
        if let Some(rpm) = d.rpm {
            out.push((limit_req, HeaderValue::from(rpm)));
            out.push((left_req, HeaderValue::from(rpm.saturating_sub(*req))));
        }
        if let Some(tpm) = d.tpm {
            out.push((limit_tok, HeaderValue::from(tpm)));
            out.push((left_tok, HeaderValue::from((tpm as i64 - *tok).max(0))));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rpm: Option<u64>, tpm: Option<u64>, par: Option<u64>) -> Descriptor {
        Descriptor {
            scope: "api_key",
            id: "hash1".into(),
            rpm,
            tpm,
            max_parallel: par,
        }
    }

    async fn ok(l: &Arc<Limiter>, d: Descriptor, reserve: u64) -> Option<Permit> {
        match l.acquire(vec![d], reserve).await.unwrap() {
            Acquired::Ok(p, _) => Some(p),
            Acquired::Refused(_) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_window_starts_at_first_request_and_resets() {
        let l = Limiter::in_memory(DEFAULT_WINDOW);
        for _ in 0..3 {
            assert!(ok(&l, key(Some(3), None, None), 0).await.is_some());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        match l.acquire(vec![key(Some(3), None, None)], 0).await.unwrap() {
            Acquired::Refused(e) => {
                assert_eq!(e.kind, LimitKind::Requests);
                assert_eq!(e.resets_in, Duration::from_secs(30));
                let err = e.to_error(DEFAULT_WINDOW);
                assert_eq!(err.status(), 429);
                assert_eq!(err.retry_after, Some(30));
                assert!(err.message.starts_with("Rate limit exceeded for api_key: hash1. Limit type: requests. Current limit: 3, Remaining: 0."));
            }
            Acquired::Ok(..) => panic!("4th request in the window must be refused"),
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            ok(&l, key(Some(3), None, None), 0).await.is_some(),
            "window reset after 60 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_reserves_then_reconciles() {
        let l = Limiter::in_memory(DEFAULT_WINDOW);
        let d = key(None, Some(100), None);
        let p = ok(&l, d.clone(), 90).await.unwrap();
        // 90 reserved < 100: one more request may start.
        let p2 = ok(&l, d.clone(), 50).await.unwrap();
        // 140 >= 100: refused.
        assert!(ok(&l, d.clone(), 1).await.is_none());
        p.settle(10); // used 10 of 90 reserved -> 60
        p2.settle(20); // used 20 of 50 -> 30
        assert!(
            ok(&l, d.clone(), 0).await.is_some(),
            "after reconciling, 30 < 100"
        );
    }

    #[tokio::test]
    async fn parallel_slots_are_released_on_drop() {
        let l = Limiter::in_memory(DEFAULT_WINDOW);
        let d = key(None, None, Some(2));
        let a = ok(&l, d.clone(), 0).await.unwrap();
        let _b = ok(&l, d.clone(), 0).await.unwrap();
        assert!(ok(&l, d.clone(), 0).await.is_none());
        drop(a);
        assert!(ok(&l, d.clone(), 0).await.is_some());
    }

    #[tokio::test]
    async fn all_or_nothing_across_descriptors() {
        let l = Limiter::in_memory(DEFAULT_WINDOW);
        let k = key(Some(10), None, None);
        let team = Descriptor {
            scope: "team",
            id: "t".into(),
            rpm: Some(1),
            tpm: None,
            max_parallel: None,
        };
        assert!(matches!(
            l.acquire(vec![k.clone(), team.clone()], 0).await.unwrap(),
            Acquired::Ok(..)
        ));
        match l.acquire(vec![k.clone(), team.clone()], 0).await.unwrap() {
            Acquired::Refused(e) => assert_eq!(e.descriptor.scope, "team"),
            Acquired::Ok(..) => panic!("team limit must refuse"),
        }
        // The refused request took nothing from the key's counter: 9 more fit.
        let mut n = 0;
        while ok(&l, k.clone(), 0).await.is_some() {
            n += 1;
        }
        assert_eq!(n, 9);
    }

    #[test]
    fn headers_show_remaining() {
        let d = vec![key(Some(10), Some(1000), None)];
        let h = headers(
            &d,
            &Usage {
                counts: vec![(3, 250)],
            },
        );
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            get("x-ratelimit-api_key-limit-requests").as_deref(),
            Some("10")
        );
        assert_eq!(
            get("x-ratelimit-api_key-remaining-requests").as_deref(),
            Some("7")
        );
        assert_eq!(
            get("x-ratelimit-api_key-remaining-tokens").as_deref(),
            Some("750")
        );
        // Every scope's names, and one outside the list.
        for scope in [
            "user",
            "team",
            "end_user",
            "tag",
            "model_per_key",
            "global",
            "custom",
        ] {
            let mut d = key(Some(5), None, None);
            d.scope = scope;
            let h = headers(
                &[d],
                &Usage {
                    counts: vec![(1, 0)],
                },
            );
            assert_eq!(
                h[1].0.as_str(),
                format!("x-ratelimit-{scope}-remaining-requests")
            );
            assert_eq!(h[1].1, "4");
        }
    }
}
