//! Cooldowns: deployments that keep failing are taken out of rotation for a while.
//!
//! LiteLLM's rules: a 429, 401, 404 or 408 cools a deployment down at once (in a group of one,
//! only a 429 does, so a lone deployment is not locked out by ordinary errors); other 5xx-class
//! failures count, and more than `allowed_fails` of them within a minute cool it down;
//! remaining 4xx never do. `allowed_fails_policy` replaces the immediate rule with a count per
//! error class. A cooldown lasts `cooldown_time` (default 5 s) or the upstream's `retry-after`.
//!
//! The request path only reads a local map (no I/O). With Redis configured, failures are
//! counted in Redis and cooldowns written there; every replica pulls the cooldown list once a
//! second, so replicas agree within that interval.

use crate::error::{ApiError, ErrorClass};
use crate::redis::RedisHandle;
use dashmap::DashMap;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// LiteLLM's `DEFAULT_ALLOWED_FAILS`.
const DEFAULT_ALLOWED_FAILS: u64 = 3;
/// LiteLLM's `DEFAULT_COOLDOWN_TIME_SECONDS`.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
/// How often replicas pull the shared cooldown list.
const SYNC_EVERY: Duration = Duration::from_secs(1);
const KEY_PREFIX: &str = "litellm:cooldown:";

#[derive(Debug, Default)]
struct Entry {
    /// Minute (unix seconds / 60) the failure count belongs to.
    minute: u64,
    fails: u64,
    until: Option<Instant>,
}

/// Settings from `router_settings` (or `litellm_settings`).
#[derive(Debug, Clone)]
pub struct CooldownSettings {
    pub disabled: bool,
    pub allowed_fails: u64,
    pub cooldown_time: Duration,
    /// `allowed_fails_policy`: error class name (`RateLimitError`, ...) -> allowed fails.
    pub policy: Vec<(String, u64)>,
}

impl CooldownSettings {
    pub fn from_maps(router: &Map<String, Value>, litellm: &Map<String, Value>) -> Self {
        let get = |k: &str| router.get(k).or_else(|| litellm.get(k));
        let policy = match get("allowed_fails_policy") {
            Some(Value::Object(p)) => p
                .iter()
                .filter_map(|(k, v)| {
                    let class = k.strip_suffix("AllowedFails")?;
                    Some((class.to_string(), v.as_u64()?))
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            disabled: get("disable_cooldowns")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            allowed_fails: get("allowed_fails")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_ALLOWED_FAILS),
            cooldown_time: get("cooldown_time")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or(DEFAULT_COOLDOWN),
            policy,
        }
    }
}

pub struct Cooldowns {
    settings: CooldownSettings,
    local: DashMap<String, Entry>,
    redis: Option<RedisHandle>,
    /// Deployments whose shared cooldowns are pulled; replaced when DB models change.
    ids: arc_swap::ArcSwap<Vec<String>>,
}

impl Cooldowns {
    /// Builds the tracker; with Redis, also starts the task that pulls shared cooldowns for
    /// `deployment_ids`.
    pub fn new(
        settings: CooldownSettings,
        redis: Option<RedisHandle>,
        deployment_ids: Vec<String>,
    ) -> Arc<Self> {
        let c = Arc::new(Self {
            settings,
            local: DashMap::new(),
            redis,
            ids: arc_swap::ArcSwap::from_pointee(deployment_ids),
        });
        if c.redis.is_some() && !c.settings.disabled {
            let weak = Arc::downgrade(&c);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SYNC_EVERY);
                loop {
                    tick.tick().await;
                    let Some(c) = weak.upgrade() else { return };
                    let ids = c.ids.load_full();
                    if !ids.is_empty() {
                        c.pull(&ids).await;
                    }
                }
            });
        }
        c
    }

    /// Replaces the deployments whose shared cooldowns are pulled (the router changed).
    pub fn set_deployment_ids(&self, ids: Vec<String>) {
        self.ids.store(Arc::new(ids));
    }

    /// Time left on `id`'s cooldown, if it is cooling down.
    pub fn remaining(&self, id: &str) -> Option<Duration> {
        if self.settings.disabled {
            return None;
        }
        let e = self.local.get(id)?;
        let left = e.until?.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// Ids of the group's deployments cooling down now.
    pub fn cooling<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        if self.settings.disabled || self.local.is_empty() {
            return Vec::new();
        }
        ids.filter(|id| self.remaining(id).is_some()).collect()
    }

    /// Notes a failed call to deployment `id` in a group of `group_size`.
    pub async fn record_failure(&self, id: &str, group_size: usize, e: &ApiError) {
        if self.settings.disabled {
            return;
        }
        let status = e.status().as_u16();
        let name = match e.class.litellm_name() {
            "Timeout" => "TimeoutError",
            n => n,
        };
        let threshold = self
            .settings
            .policy
            .iter()
            .find(|(class, _)| class == name)
            .map(|(_, n)| *n);
        let immediate = threshold.is_none()
            && match status {
                429 => true,
                401 | 404 | 408 => group_size > 1,
                _ => false,
            };
        let counted = threshold.is_some()
            || (group_size > 1 && (status >= 500 || e.class == ErrorClass::ApiConnection));
        if !immediate && !counted {
            return;
        }
        let allowed = threshold.unwrap_or(self.settings.allowed_fails);
        let minute = super::strategy::unix_minute();
        let fails = match (&self.redis, immediate) {
            (_, true) => u64::MAX,
            (Some(r), false) => {
                let key = format!("litellm:fails:{id}:{minute}");
                r.run(|mut c| async move {
                    redis::pipe()
                        .atomic()
                        .incr(&key, 1u64)
                        .expire(&key, 120)
                        .ignore()
                        .query_async::<(u64,)>(&mut c)
                        .await
                        .map(|(n,)| n)
                })
                .await
                .unwrap_or_else(|_| self.count_local(id, minute))
            }
            (None, false) => self.count_local(id, minute),
        };
        if fails <= allowed {
            return;
        }
        let dur = e
            .retry_after
            .map(Duration::from_secs)
            .filter(|d| !d.is_zero())
            .unwrap_or(self.settings.cooldown_time);
        if dur.is_zero() {
            return;
        }
        tracing::warn!(
            deployment = id,
            status,
            cooldown_s = dur.as_secs_f64(),
            "deployment cooling down"
        );
        self.set_local(id, dur);
        if let Some(r) = &self.redis {
            let key = format!("{KEY_PREFIX}{id}");
            let ms = dur.as_millis() as u64;
            let _ = r
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .arg("PX")
                        .arg(ms.max(1))
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
        }
    }

    fn count_local(&self, id: &str, minute: u64) -> u64 {
        let mut e = self.local.entry(id.to_string()).or_default();
        if e.minute != minute {
            e.minute = minute;
            e.fails = 0;
        }
        e.fails += 1;
        e.fails
    }

    fn set_local(&self, id: &str, dur: Duration) {
        let until = Instant::now() + dur;
        let mut e = self.local.entry(id.to_string()).or_default();
        if e.until.is_none_or(|u| u < until) {
            e.until = Some(until);
        }
    }

    /// Pulls the shared cooldowns (one script call for every deployment).
    async fn pull(&self, ids: &[String]) {
        let Some(r) = &self.redis else { return };
        let keys: Vec<String> = ids.iter().map(|id| format!("{KEY_PREFIX}{id}")).collect();
        let ttls = r
            .run(|mut c| async move {
                let mut p = redis::pipe();
                for k in &keys {
                    p.cmd("PTTL").arg(k);
                }
                p.query_async::<Vec<i64>>(&mut c).await
            })
            .await;
        if let Ok(ttls) = ttls {
            for (id, ms) in ids.iter().zip(ttls) {
                if ms > 0 {
                    self.set_local(id, Duration::from_millis(ms as u64));
                }
            }
        }
    }
}

/// LiteLLM's error when every deployment of a group is cooling down.
pub fn all_cooling_error(model: &str, cooling: &[&str], wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        ErrorClass::RateLimit,
        format!(
            "litellm.RateLimitError: No deployments available for selected model, Try again in {secs} seconds. Passed model={model}. pre-call-checks=False, cooldown_list={cooling:?}"
        ),
    )
    .with_retry_after(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> CooldownSettings {
        CooldownSettings::from_maps(v.as_object().unwrap(), &Map::new())
    }

    fn err(status: u16) -> ApiError {
        ApiError::new(ErrorClass::from_upstream_status(status), "x")
    }

    #[tokio::test]
    async fn rate_limits_cool_down_at_once_and_5xx_after_allowed_fails() {
        let c = Cooldowns::new(
            settings(json!({"allowed_fails": 2, "cooldown_time": 30})),
            None,
            vec![],
        );
        c.record_failure("a", 2, &err(429)).await;
        assert!(c.remaining("a").unwrap() > Duration::from_secs(29));
        for _ in 0..2 {
            c.record_failure("b", 2, &err(500)).await;
        }
        assert!(c.remaining("b").is_none());
        c.record_failure("b", 2, &err(500)).await;
        assert!(c.remaining("b").is_some());
        // 400s never cool down; a lone deployment only on 429.
        for _ in 0..10 {
            c.record_failure("c", 2, &err(400)).await;
            c.record_failure("d", 1, &err(500)).await;
            c.record_failure("d", 1, &err(401)).await;
        }
        assert!(c.remaining("c").is_none() && c.remaining("d").is_none());
        assert_eq!(c.cooling(["a", "b", "c", "d"].into_iter()), vec!["a", "b"]);
    }

    #[tokio::test]
    async fn retry_after_policy_and_disable() {
        let c = Cooldowns::new(
            settings(json!({"allowed_fails_policy": {"RateLimitErrorAllowedFails": 2}})),
            None,
            vec![],
        );
        let e = err(429).with_retry_after(60);
        c.record_failure("a", 3, &e).await;
        c.record_failure("a", 3, &e).await;
        assert!(c.remaining("a").is_none(), "policy allows two 429s");
        c.record_failure("a", 3, &e).await;
        assert!(c.remaining("a").unwrap() > Duration::from_secs(59));

        let off = Cooldowns::new(settings(json!({"disable_cooldowns": true})), None, vec![]);
        off.record_failure("a", 2, &err(429)).await;
        assert!(off.remaining("a").is_none());
        let e = all_cooling_error("g", &["a"], Duration::from_millis(4200));
        assert_eq!(e.status(), 429);
        assert!(e.message.contains("Try again in 5 seconds. Passed model=g"));
    }
}
