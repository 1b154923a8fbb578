//! Response caching (`litellm_settings.cache: true` with `cache_params`): where answers are
//! kept, which requests may use them, and the per-request controls.
//!
//! Two kinds, as in LiteLLM: `local` keeps answers in this process; `redis` keeps them in Redis
//! (shared by every replica, 60 s unless a TTL is set) behind the same in-process tier, which
//! also carries on alone while Redis is down. Entries are stored in LiteLLM's layout
//! (`{"timestamp": <unix seconds>, "response": "<the answer as JSON text>"}`) under LiteLLM's
//! key (see [`key`]), so a LiteLLM proxy on the same Redis shares them.
//!
//! A request takes part unless it opts out: `cache: {"no-cache": true}` skips the lookup,
//! `"no-store"` the write, `"ttl"` sets the entry's lifetime, `"s-maxage"` the oldest entry it
//! accepts, `"namespace"` (or `metadata.redis_namespace`, or `cache_params.namespace`) prefixes
//! the key; with `mode: default_off` only `cache: {"use-cache": true}` takes part. Requests of
//! more than four messages are not cached (LiteLLM's `max_messages`).

pub mod embed;
pub mod key;
pub mod redis_info;
pub mod replay;

use crate::api::LitellmExtras;
use crate::config::LoadedConfig;
use crate::error::{ApiError, ErrorClass};
use crate::redis::RedisHandle;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries the in-process tier holds (LiteLLM's `max_size_in_memory`).
const LOCAL_MAX_ITEMS: usize = 200;
/// Lifetime of an in-process entry when neither the request nor the config sets one.
const LOCAL_DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Lifetime of a Redis entry when neither the request nor the config sets one.
const REDIS_DEFAULT_TTL: Duration = Duration::from_secs(60);
/// The longest entry lifetime taken from a config or a request (ten years); longer ones are
/// refused in the config and ignored in a request.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Requests with more messages than this are neither looked up nor stored.
const DEFAULT_MAX_MESSAGES: usize = 4;
/// Call types cached when `supported_call_types` is not set.
const DEFAULT_CALL_TYPES: &[&str] = &[
    "completion",
    "acompletion",
    "embedding",
    "aembedding",
    "atranscription",
    "transcription",
    "atext_completion",
    "text_completion",
    "arerank",
    "rerank",
    "responses",
    "aresponses",
    "anthropic_messages",
    "aanthropic_messages",
];

/// The configured response cache.
pub struct ResponseCache {
    local: LocalTier,
    redis: Option<RedisHandle>,
    ttl: Option<Duration>,
    namespace: Option<String>,
    default_off: bool,
    max_messages: usize,
    call_types: Vec<String>,
    /// `router_settings.caching_groups`: model groups that share entries.
    caching_groups: Vec<Vec<String>>,
}

/// What one request does with the cache.
#[derive(Debug, Clone)]
pub struct CachePlan {
    /// The entry's key, namespace included (as `x-litellm-cache-key` shows it).
    pub key: String,
    /// The namespace the keys of this request take.
    pub namespace: Option<String>,
    pub read: bool,
    pub write: bool,
    pub ttl: Option<Duration>,
    /// `s-maxage`: entries older than this (seconds) are not served.
    pub max_age: Option<f64>,
}

impl CachePlan {
    /// The key of another entry of the same request (an embeddings input item).
    pub fn key_for(&self, hash: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}:{hash}"),
            None => hash.to_string(),
        }
    }
}

/// An answer found in the cache.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The answer as JSON text.
    pub response: Bytes,
}

struct LocalEntry {
    stored_at: f64,
    expires: Instant,
    response: Bytes,
}

/// The in-process tier: at most [`LOCAL_MAX_ITEMS`] entries; when full, the entry that
/// expires first goes (LiteLLM's eviction order).
#[derive(Default)]
struct LocalTier {
    map: Mutex<HashMap<String, LocalEntry>>,
}

impl LocalTier {
    fn get(&self, key: &str) -> Option<(f64, Bytes)> {
        let mut m = self.map.lock().ok()?;
        let e = m.get(key)?;
        if e.expires <= Instant::now() {
            m.remove(key);
            return None;
        }
        Some((e.stored_at, e.response.clone()))
    }

    fn put(&self, key: &str, stored_at: f64, response: Bytes, ttl: Duration) {
        let Ok(mut m) = self.map.lock() else { return };
        let now = Instant::now();
        if !m.contains_key(key) && m.len() >= LOCAL_MAX_ITEMS {
            m.retain(|_, e| e.expires > now);
            while m.len() >= LOCAL_MAX_ITEMS {
                let Some(first) = m
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                m.remove(&first);
            }
        }
        m.insert(
            key.to_string(),
            LocalEntry {
                stored_at,
                expires: now + ttl,
                response,
            },
        );
    }

    fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }

    fn remove(&self, key: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(key);
        }
    }
}

/// A lifetime in seconds as a `Duration`: positive, at most [`MAX_TTL`].
fn ttl_secs(s: f64) -> Option<Duration> {
    (s > 0.0 && s <= MAX_TTL.as_secs_f64()).then(|| Duration::from_secs_f64(s))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl ResponseCache {
    /// The cache the config asks for, if any; an unusable `cache_params` is an error naming the
    /// field. `redis` is the router's shared connection, used when `cache_params` names no
    /// Redis of its own.
    pub fn from_config(
        loaded: &LoadedConfig,
        shared_redis: Option<&RedisHandle>,
    ) -> Result<Option<Self>, String> {
        let ls = &loaded.config.litellm_settings;
        if ls.cache != Some(true) {
            return Ok(None);
        }
        let params = ls.cache_params.clone().unwrap_or_default();
        let kind = params
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("local");
        let redis = match kind {
            "local" => None,
            "redis" => Some(redis_for(loaded, &params, shared_redis)?),
            other => {
                return Err(format!(
                    "litellm_settings.cache_params.type: cache type '{other}' is not supported (supported: local, redis)"
                ))
            }
        };
        let secs = |name: &str| -> Result<Option<Duration>, String> {
            match params.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .and_then(ttl_secs)
                    .map(Some)
                    .ok_or_else(|| {
                        format!("litellm_settings.cache_params.{name}: expected a positive number of seconds, got {v}")
                    }),
            }
        };
        let ttl = secs("ttl")?;
        let namespace = match params.get("namespace") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                return Err(format!(
                    "litellm_settings.cache_params.namespace: expected a string, got {v}"
                ))
            }
        };
        let default_off = match params.get("mode").and_then(Value::as_str) {
            None | Some("default_on") => false,
            Some("default_off") => true,
            Some(other) => {
                return Err(format!(
                    "litellm_settings.cache_params.mode: expected default_on or default_off, got '{other}'"
                ))
            }
        };
        let max_messages = match params.get("max_messages") {
            None | Some(Value::Null) => DEFAULT_MAX_MESSAGES,
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                format!(
                    "litellm_settings.cache_params.max_messages: expected a whole number, got {v}"
                )
            })?,
        };
        let call_types = match params.get("supported_call_types") {
            None | Some(Value::Null) => DEFAULT_CALL_TYPES.iter().map(|s| s.to_string()).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str().map(String::from).ok_or_else(|| {
                        format!("litellm_settings.cache_params.supported_call_types: expected a list of strings, got {i}")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(format!(
                    "litellm_settings.cache_params.supported_call_types: expected a list of strings, got {v}"
                ))
            }
        };
        let caching_groups = match loaded.config.router_settings.extra.get("caching_groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(groups)) => groups
                .iter()
                .map(|g| {
                    g.as_array()
                        .filter(|names| names.iter().all(Value::is_string))
                        .map(|names| {
                            names
                                .iter()
                                .filter_map(|n| n.as_str().map(String::from))
                                .collect()
                        })
                        .ok_or_else(|| {
                            format!("router_settings.caching_groups: expected lists of model names, got {g}")
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(format!(
                    "router_settings.caching_groups: expected lists of model names, got {v}"
                ))
            }
        };
        Ok(Some(Self {
            local: LocalTier::default(),
            redis,
            ttl,
            namespace,
            default_off,
            max_messages,
            call_types,
            caching_groups,
        }))
    }

    /// Whether calls of this `call_type` (`acompletion`, `aembedding`, ...) are cached.
    pub fn covers(&self, call_type: &str) -> bool {
        self.call_types.iter().any(|t| t == call_type)
    }

    /// How the key names `model`: the model group, or the `caching_groups` entry holding it
    /// (as Python writes that list), so the groups of an entry share answers.
    pub fn model_label<'a>(&self, model: &'a str) -> std::borrow::Cow<'a, str> {
        match self
            .caching_groups
            .iter()
            .find(|g| g.iter().any(|m| m == model))
        {
            Some(g) => std::borrow::Cow::Owned(key::py_list(g)),
            None => std::borrow::Cow::Borrowed(model),
        }
    }

    pub fn kind(&self) -> &'static str {
        if self.redis.is_some() {
            "redis"
        } else {
            "local"
        }
    }

    /// What a request with key hash `hash` does with the cache, from its `cache` controls,
    /// `caching` flag and metadata. `None`: it does not take part. `messages` is the number of
    /// chat messages, if a chat call.
    pub fn plan(
        &self,
        hash: &str,
        extras: &LitellmExtras,
        messages: Option<usize>,
    ) -> Option<CachePlan> {
        if messages.is_some_and(|n| n > self.max_messages) {
            return None;
        }
        let controls = extras.other.get("cache").and_then(Value::as_object);
        let flag = |name: &str| {
            controls
                .and_then(|c| c.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        if self.default_off && !flag("use-cache") {
            return None;
        }
        let caching_off = extras.other.get("caching") == Some(&Value::Bool(false));
        let number = |name: &str| {
            controls
                .and_then(|c| c.get(name))
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
        };
        let namespace = controls
            .and_then(|c| c.get("namespace"))
            .and_then(Value::as_str)
            .or_else(|| {
                extras
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get("redis_namespace"))
                    .and_then(Value::as_str)
            })
            .or(self.namespace.as_deref());
        Some(CachePlan {
            key: match namespace {
                Some(ns) => format!("{ns}:{hash}"),
                None => hash.to_string(),
            },
            namespace: namespace.map(String::from),
            read: !flag("no-cache") && !caching_off,
            write: !flag("no-store"),
            ttl: number("ttl").and_then(ttl_secs).or(self.ttl),
            max_age: number("s-maxage").or_else(|| number("s-max-age")),
        })
    }

    /// The entry under `plan.key`, if there is one young enough. Redis trouble reads as a miss.
    pub async fn get(&self, plan: &CachePlan) -> Option<Cached> {
        self.get_at(&plan.key, plan).await
    }

    /// The entry under `key`, with `plan`'s age limit.
    pub async fn get_at(&self, key: &str, plan: &CachePlan) -> Option<Cached> {
        let fresh = |stored_at: f64| plan.max_age.is_none_or(|m| unix_now() - stored_at <= m);
        if let Some((at, response)) = self.local.get(key) {
            if fresh(at) {
                return Some(Cached { response });
            }
            return None;
        }
        let redis = self.redis.as_ref()?;
        let owned = key.to_string();
        let raw: Option<Vec<u8>> = match redis
            .run(|mut c| async move { redis::cmd("GET").arg(&owned).query_async(&mut c).await })
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!("response cache: redis lookup failed: {e}");
                return None;
            }
        };
        let (at, response) = decode_entry(&raw?)?;
        self.local
            .put(key, at, response.clone(), self.local_ttl(plan));
        fresh(at).then_some(Cached { response })
    }

    /// Stores an answer (JSON text) under `plan.key`; the Redis write runs in the background.
    pub fn put(&self, plan: &CachePlan, response: Bytes) {
        self.put_at(&plan.key, plan, response, false);
    }

    /// Stores `response` under `key` with `plan`'s lifetime; `object`: kept in Redis as a JSON
    /// object rather than as JSON text (LiteLLM's form for embedding items).
    pub fn put_at(&self, key: &str, plan: &CachePlan, response: Bytes, object: bool) {
        let at = unix_now();
        self.local
            .put(key, at, response.clone(), self.local_ttl(plan));
        if let Some(redis) = self.redis.clone() {
            let ttl = plan.ttl.unwrap_or(REDIS_DEFAULT_TTL).as_secs().max(1);
            let key = key.to_string();
            let value = if object {
                encode_object_entry(at, &response)
            } else {
                encode_entry(at, &response)
            };
            tokio::spawn(async move {
                if let Err(e) = set_ex(&redis, key, value, ttl).await {
                    tracing::debug!("response cache: redis write failed: {e}");
                }
            });
        }
    }

    fn local_ttl(&self, plan: &CachePlan) -> Duration {
        plan.ttl.unwrap_or(LOCAL_DEFAULT_TTL)
    }

    /// `/cache/ping`: the cache's kind and settings; for Redis, a PING and a test write.
    pub async fn ping(&self) -> Result<Value, ApiError> {
        let mut out = json!({
            "status": "healthy",
            "cache_type": self.kind(),
            "ping_response": null,
            "set_cache_response": null,
            "litellm_cache_params": self.params_text(),
            "health_check_cache_params": null,
        });
        if let Some(redis) = &self.redis {
            let pong: Result<String, _> = redis
                .run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
                .await;
            if let Err(e) = pong {
                return Err(cache_unhealthy(format!("Service Unhealthy ({e})")));
            }
            let value = encode_entry(unix_now(), b"test_key");
            let key = key::hash(&format!(
                "model: test-modelmessages: {}",
                "[{'role': 'user', 'content': 'test from litellm'}]"
            ));
            if let Err(e) = set_ex(redis, key, value, 60).await {
                return Err(cache_unhealthy(format!("Service Unhealthy ({e})")));
            }
            out["ping_response"] = Value::Bool(true);
            out["set_cache_response"] = Value::String("success".into());
        }
        Ok(out)
    }

    /// The settings as `/cache/ping` reports them (a JSON text, as LiteLLM sends it).
    fn params_text(&self) -> String {
        json!({
            "supported_call_types": self.call_types,
            "type": self.kind(),
            "namespace": self.namespace.clone().unwrap_or_else(|| "None".into()),
            // As the config wrote it: `5`, or `2.5` for a fraction of a second.
            "ttl": self.ttl.map_or(json!("None"), |t| if t.subsec_nanos() == 0 {
                json!(t.as_secs())
            } else {
                json!(t.as_secs_f64())
            }),
            "mode": if self.default_off { "default_off" } else { "default_on" },
            "max_messages": self.max_messages,
        })
        .to_string()
    }

    /// `/cache/delete`: removes keys from Redis and from this replica's in-process tier.
    pub async fn delete(&self, keys: &[String]) -> Result<(), ApiError> {
        let Some(redis) = &self.redis else {
            return Err(ApiError::new(
                ErrorClass::Internal,
                "Cache Delete Failed(500: Cache type local does not support deleting a key. only `redis` is supported)",
            ));
        };
        for k in keys {
            self.local.remove(k);
        }
        if keys.is_empty() {
            return Ok(());
        }
        let keys = keys.to_vec();
        let r: Result<i64, _> = redis
            .run(|mut c| async move { redis::cmd("DEL").arg(&keys).query_async(&mut c).await })
            .await;
        r.map(|_| ())
            .map_err(|e| ApiError::new(ErrorClass::Internal, format!("Cache Delete Failed({e})")))
    }

    /// `/cache/flushall`: empties the Redis database (as LiteLLM does, everything in it) and
    /// this replica's in-process tier.
    /// `/cache/redis/info`: the server's `INFO` and the clients `CLIENT LIST` names (a managed
    /// Redis that refuses `CLIENT LIST` gives LiteLLM's placeholder and `num_clients` -1).
    pub async fn redis_info(&self) -> Result<Value, ApiError> {
        let Some(redis) = &self.redis else {
            return Err(cache_unhealthy(
                "Service Unhealthy (500: Cache type local does not support redis info)".into(),
            ));
        };
        let clients: Result<String, _> = redis
            .run(|mut c| async move { redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await })
            .await;
        let (clients, num_clients) = match clients {
            Ok(text) => {
                let list = redis_info::parse_client_list(&text);
                let n = list.len() as i64;
                (list, n)
            }
            Err(e) => {
                tracing::warn!("CLIENT LIST failed (restricted on some managed Redis): {e}");
                (
                    vec![json!(
                        "CLIENT LIST command not available on this Redis instance"
                    )],
                    -1,
                )
            }
        };
        let info: Result<String, _> = redis
            .run(|mut c| async move { redis::cmd("INFO").query_async(&mut c).await })
            .await;
        let info = info.map_err(|e| cache_unhealthy(format!("Service Unhealthy ({e})")))?;
        Ok(json!({
            "num_clients": num_clients,
            "clients": clients,
            "info": redis_info::parse_info(&info),
        }))
    }

    pub async fn flush_all(&self) -> Result<(), ApiError> {
        let Some(redis) = &self.redis else {
            return Err(cache_unhealthy(
                "Service Unhealthy (500: Cache type local does not support flushing)".into(),
            ));
        };
        self.local.clear();
        let r: Result<(), _> = redis
            .run(|mut c| async move { redis::cmd("FLUSHALL").query_async(&mut c).await })
            .await;
        r.map_err(|e| cache_unhealthy(format!("Service Unhealthy ({e})")))
    }
}

/// Whether a stored answer says something (LiteLLM does not cache empty answers): a chat
/// message with text or tool calls, or a completion's text.
pub fn has_output(answer: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(answer) else {
        return false;
    };
    let Some(choices) = v.get("choices").and_then(Value::as_array) else {
        return false;
    };
    choices.iter().any(|c| {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|t| !t.is_empty());
        let m = c.get("message");
        text(c.get("text"))
            || text(m.and_then(|m| m.get("content")))
            || m.and_then(|m| m.get("tool_calls"))
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty())
            || m.and_then(|m| m.get("function_call"))
                .is_some_and(|f| !f.is_null())
    })
}

/// `SET key value EX ttl` within the shared response timeout.
async fn set_ex(
    redis: &RedisHandle,
    key: String,
    value: Vec<u8>,
    ttl: u64,
) -> Result<(), crate::redis::RedisUnavailable> {
    redis
        .run(|mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("EX")
                .arg(ttl)
                .query_async(&mut c)
                .await
        })
        .await
}

/// A 503 from a cache management route.
pub fn cache_unhealthy(message: String) -> ApiError {
    let mut e = ApiError::new(ErrorClass::ServiceUnavailable, message);
    e.type_override = Some("cache_ping_error");
    e
}

/// The Redis connection `cache_params` names (`host`/`port`/`password`, or `url`), else the
/// router's, else the `REDIS_*` environment.
fn redis_for(
    loaded: &LoadedConfig,
    params: &Map<String, Value>,
    shared: Option<&RedisHandle>,
) -> Result<RedisHandle, String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let url = if let Some(u) = params.get("url").or_else(|| params.get("redis_url")) {
        Some(text(u))
    } else if let Some(host) = params.get("host") {
        let port = params
            .get("port")
            .map(text)
            .unwrap_or_else(|| "6379".into());
        let password = params.get("password").map(text).filter(|p| !p.is_empty());
        Some(match password {
            Some(p) => format!("redis://:{p}@{}:{port}", text(host)),
            None => format!("redis://{}:{port}", text(host)),
        })
    } else {
        None
    };
    match (url, shared) {
        (Some(u), _) => RedisHandle::connect(&u)
            .map_err(|e| format!("litellm_settings.cache_params: {e}")),
        (None, Some(h)) => Ok(h.clone()),
        (None, None) => match crate::redis::redis_url(loaded) {
            Some(u) => RedisHandle::connect(&u)
                .map_err(|e| format!("litellm_settings.cache_params: {e}")),
            None => Err(
                "litellm_settings.cache_params: type redis needs host/port (or REDIS_HOST / REDIS_URL)"
                    .into(),
            ),
        },
    }
}

/// LiteLLM's stored form: `{"timestamp": <unix seconds>, "response": "<answer JSON text>"}`.
fn encode_entry(at: f64, response: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(response);
    serde_json::to_vec(&json!({"timestamp": at, "response": text})).unwrap_or_default()
}

/// LiteLLM's stored form of an embedding item: `response` is the item object itself.
fn encode_object_entry(at: f64, item: &[u8]) -> Vec<u8> {
    let item: Value = serde_json::from_slice(item).unwrap_or(Value::Null);
    serde_json::to_vec(&json!({"timestamp": at, "response": item})).unwrap_or_default()
}

/// Reads an entry written by [`encode_entry`] or by LiteLLM (whose `response` may also be an
/// object).
fn decode_entry(raw: &[u8]) -> Option<(f64, Bytes)> {
    let v: Value = serde_json::from_slice(raw).ok()?;
    let at = v
        .get("timestamp")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    let response = match v.get("response")? {
        Value::String(s) => Bytes::from(s.clone().into_bytes()),
        Value::Object(_) => Bytes::from(serde_json::to_vec(&v["response"]).ok()?),
        _ => return None,
    };
    Some((at, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(yaml: &str) -> ResponseCache {
        let loaded = crate::config::load_str(yaml, "test.yaml").expect("config");
        ResponseCache::from_config(&loaded, None)
            .expect("valid")
            .expect("configured")
    }

    fn extras(v: Value) -> LitellmExtras {
        let mut body = v.as_object().cloned().unwrap_or_default();
        LitellmExtras::split_from(&mut body).expect("extras")
    }

    #[test]
    fn controls_shape_the_plan() {
        let c = cache("litellm_settings:\n  cache: true\n  cache_params: {type: local, namespace: ns1, ttl: 5}\n");
        let p = c.plan("abc", &extras(json!({})), Some(1)).expect("plan");
        assert_eq!(p.key, "ns1:abc");
        assert!(p.read && p.write);
        assert_eq!(p.ttl, Some(Duration::from_secs(5)));
        let p = c
            .plan(
                "abc",
                &extras(json!({"cache": {"no-cache": true, "namespace": "x", "ttl": 60, "s-maxage": 1}})),
                Some(1),
            )
            .expect("plan");
        assert_eq!(p.key, "x:abc");
        assert!(!p.read && p.write);
        assert_eq!(p.ttl, Some(Duration::from_secs(60)));
        assert_eq!(p.max_age, Some(1.0));
        // A lifetime too long for a Duration is ignored, not a panic.
        let p = c
            .plan("abc", &extras(json!({"cache": {"ttl": 1e300}})), Some(1))
            .expect("plan");
        assert_eq!(p.ttl, Some(Duration::from_secs(5)));
        let p = c
            .plan(
                "abc",
                &extras(json!({"cache": {"no-store": true}, "caching": false})),
                Some(1),
            )
            .expect("plan");
        assert!(!p.read && !p.write);
        let p = c
            .plan(
                "abc",
                &extras(json!({"metadata": {"redis_namespace": "rn"}})),
                None,
            )
            .expect("plan");
        assert_eq!(p.key, "rn:abc");
        assert!(
            c.plan("abc", &extras(json!({})), Some(5)).is_none(),
            "more than 4 messages"
        );

        let off = cache("litellm_settings:\n  cache: true\n  cache_params: {mode: default_off}\n");
        assert!(off
            .plan("h", &extras(json!({"caching": true})), Some(1))
            .is_none());
        let p = off
            .plan("h", &extras(json!({"cache": {"use-cache": true}})), Some(1))
            .expect("opted in");
        assert_eq!(p.key, "h");
    }

    #[test]
    fn caching_groups_share_one_model_label() {
        let c = cache("router_settings:\n  caching_groups: [[gpt-4o, gpt-4o-alias]]\nlitellm_settings:\n  cache: true\n");
        assert_eq!(c.model_label("gpt-4o-alias"), "['gpt-4o', 'gpt-4o-alias']");
        assert_eq!(c.model_label("gpt-4o"), c.model_label("gpt-4o-alias"));
        assert_eq!(c.model_label("other"), "other");
    }

    #[test]
    fn local_tier_expires_and_evicts_the_soonest_to_expire() {
        let t = LocalTier::default();
        t.put("gone", 0.0, Bytes::from_static(b"1"), Duration::ZERO);
        assert!(t.get("gone").is_none());
        t.put(
            "short",
            0.0,
            Bytes::from_static(b"s"),
            Duration::from_secs(10),
        );
        for i in 0..LOCAL_MAX_ITEMS {
            t.put(
                &format!("k{i}"),
                0.0,
                Bytes::from_static(b"x"),
                Duration::from_secs(600),
            );
        }
        assert!(
            t.get("short").is_none(),
            "the entry expiring first made room"
        );
        assert!(t.get("k0").is_some() && t.get(&format!("k{}", LOCAL_MAX_ITEMS - 1)).is_some());
        assert_eq!(t.map.lock().map(|m| m.len()).unwrap_or(0), LOCAL_MAX_ITEMS);
    }

    #[test]
    fn entries_round_trip_in_litellm_layout() {
        let raw = encode_entry(12.5, br#"{"id":"x"}"#);
        let v: Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(v["response"], json!(r#"{"id":"x"}"#));
        let (at, body) = decode_entry(&raw).expect("decoded");
        assert_eq!((at, &body[..]), (12.5, &br#"{"id":"x"}"#[..]));
        let (_, body) = decode_entry(br#"{"timestamp": 1.0, "response": {"embedding": [1]}}"#)
            .expect("object response");
        assert_eq!(&body[..], br#"{"embedding":[1]}"#);
    }

    #[test]
    fn unusable_params_are_config_errors() {
        for (yaml, field) in [
            ("{type: s3}", "type"),
            ("{ttl: soon}", "ttl"),
            ("{ttl: 1e300}", "ttl"),
            ("{mode: sometimes}", "mode"),
            (
                "{supported_call_types: acompletion}",
                "supported_call_types",
            ),
        ] {
            let loaded = crate::config::load_str(
                &format!("litellm_settings:\n  cache: true\n  cache_params: {yaml}\n"),
                "t.yaml",
            )
            .expect("config");
            let e = ResponseCache::from_config(&loaded, None)
                .err()
                .expect("error");
            assert!(e.contains(field), "{e}");
        }
    }
}
