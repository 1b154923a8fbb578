//! End users (LiteLLM's customers): the caller's own users, named by the `user` field of an
//! LLM request (or the `x-litellm-customer-id` / `x-litellm-end-user-id` headers).
//!
//! Owns the end-user cache and the checks LiteLLM's `common_checks` and blocked-user hook run
//! for them: a blocked end user is refused (400), a `models` allow-list restricts the model
//! groups (401 `customer_model_access_denied`), and the budget row the end user links to gives
//! the `max_budget` reserved against by `spend::call` and the `rpm_limit` / `tpm_limit` /
//! `max_parallel_requests` the rate limiter counts under scope `end_user`. An end user with no
//! budget row rides `litellm_settings.max_end_user_budget_id` (a budget row) or, failing that,
//! `litellm_settings.max_end_user_budget` (a plain amount).
//!
//! Lookups are cached like keys (`user_api_key_cache_ttl`), unknown ids included, so a cached
//! end user costs no database round trip; the `/customer/*` and `/budget/*` handlers drop the
//! entries they change. Requests without an end user never reach this module.

use crate::api::Field;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::Descriptor;
use crate::routing::ModelGroup;
use crate::spend::Budgets;
use crate::state::AppState;
use crate::store::BudgetRow;
use axum::http::HeaderMap;
use dashmap::DashMap;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Headers that name the end user ahead of the body's `user` (LiteLLM's standard customer-id
/// headers, checked first).
static END_USER_HEADERS: [http::HeaderName; 2] = [
    http::HeaderName::from_static("x-litellm-customer-id"),
    http::HeaderName::from_static("x-litellm-end-user-id"),
];

/// Most end users cached at once. End-user ids come from clients, so the cache is bounded
/// (see [`EndUserCache::shrink`]); a miss costs one query, never a wrong answer.
const MAX_CACHED: usize = 100_000;

/// An end user as the LLM routes see it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndUser {
    pub id: String,
    pub blocked: bool,
    /// Model groups (or access groups, or `prefix/*` patterns) the end user may call; empty =
    /// no restriction.
    pub models: Vec<String>,
    /// The budget row that applies: the end user's own, else `max_end_user_budget_id`.
    pub budget_id: Option<String>,
    /// What the end user may spend; `None` = unlimited.
    pub max_budget: Option<f64>,
    /// Limits of the budget row, under scope `end_user`.
    pub limits: Option<Descriptor>,
}

impl EndUser {
    /// The end user's entry in [`Budgets`].
    pub fn budget_scope(id: &str) -> String {
        format!("end_user:{id}")
    }

    /// LiteLLM's blocked-user refusal.
    pub fn check_blocked(&self) -> ApiResult<()> {
        if self.blocked {
            return Err(ApiError::bad_request(format!(
                "User blocked from making LLM API Calls. User={}",
                self.id
            )));
        }
        Ok(())
    }

    /// Whether the end user's allow-list covers `requested` (resolved to `group`).
    pub fn may_use(&self, requested: &str, group: &ModelGroup) -> bool {
        // A customer's wildcards also match the group's own name.
        self.models.is_empty()
            || group.allowed_by(&self.models, requested)
            || group.allowed_by(&self.models, &group.name)
    }

    /// Refuses a model outside the allow-list with LiteLLM's `customer_model_access_denied`.
    pub fn check_model(&self, requested: &str, group: &ModelGroup) -> ApiResult<()> {
        if self.may_use(requested, group) {
            return Ok(());
        }
        let mut e = ApiError::proxy_auth(format!(
            "customer not allowed to access model. This customer can only access models={:?}. Tried to access {requested}",
            self.models
        ))
        .with_param("model");
        e.type_override = Some("customer_model_access_denied");
        Err(e)
    }
}

/// The end user a request names: the standard customer-id headers first, then the body's
/// `user` (on `/v1/messages`, Anthropic's `metadata.user_id` has become `user` by then).
pub fn end_user_id(headers: &HeaderMap, body: &Map<String, Value>) -> Option<String> {
    END_USER_HEADERS
        .iter()
        .find_map(|h| headers.get(h).and_then(|v| v.to_str().ok()))
        .or_else(|| body.field("user").and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

struct Cached {
    user: Arc<EndUser>,
    loaded_at: Instant,
}

/// End users by id, fresh for `ttl` after they were read.
pub struct EndUserCache {
    map: DashMap<String, Cached>,
    ttl: Duration,
    cap: usize,
}

impl EndUserCache {
    pub fn new(ttl: Duration) -> Self {
        Self::with_cap(ttl, MAX_CACHED)
    }

    fn with_cap(ttl: Duration, cap: usize) -> Self {
        Self {
            map: DashMap::new(),
            ttl,
            cap,
        }
    }

    fn get(&self, id: &str) -> Option<Arc<EndUser>> {
        let c = self.map.get(id)?;
        (c.loaded_at.elapsed() < self.ttl).then(|| c.user.clone())
    }

    fn insert(&self, user: Arc<EndUser>, budgets: &Budgets) {
        if self.map.len() >= self.cap {
            self.shrink(budgets);
        }
        self.map.insert(
            user.id.clone(),
            Cached {
                user,
                loaded_at: Instant::now(),
            },
        );
    }

    /// Makes room: stale entries go (with their idle spend figures, which the database holds
    /// by now); when that frees less than half, everything goes, so a full cache of fresh
    /// entries costs one sweep per `cap / 2` new end users, not one per request.
    fn shrink(&self, budgets: &Budgets) {
        let ttl = self.ttl;
        self.map.retain(|id, c| {
            let fresh = c.loaded_at.elapsed() < ttl;
            if !fresh {
                budgets.forget_idle(&EndUser::budget_scope(id));
            }
            fresh
        });
        if self.map.len() >= self.cap / 2 {
            for e in self.map.iter() {
                budgets.forget_idle(&EndUser::budget_scope(e.key()));
            }
            self.map.clear();
        }
    }

    /// Drops end users whose rows changed; the next request reads them again.
    pub fn invalidate<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        for id in ids {
            self.map.remove(id);
        }
    }

    /// Drops every end user (a budget row changed: any of them may link to it).
    pub fn clear(&self) {
        self.map.clear();
    }

    /// A budget row was reset: the in-memory spend of the cached end users on that tier goes
    /// back to 0 and they are read again (other end users pick up the new `budget_reset_at`
    /// when they are next read).
    pub fn on_budget_reset(&self, budget_id: &str, budgets: &Budgets) {
        self.map.retain(|id, c| {
            if c.user.budget_id.as_deref() == Some(budget_id) {
                budgets.reset(&EndUser::budget_scope(id), 0.0);
                false
            } else {
                true
            }
        });
    }
}

/// The end user `id`: from the cache while fresh, else read from the store (with its budget
/// row, or the default tier) and cached, unknown ids included.
pub async fn resolve(state: &AppState, id: &str) -> ApiResult<Arc<EndUser>> {
    if let Some(u) = state.end_users.get(id) {
        return Ok(u);
    }
    let failed =
        |e: crate::store::StoreError| ApiError::internal(format!("end user lookup failed: {e}"));
    let row = state.store.get_end_user(id).await.map_err(failed)?;
    let settings = &state.loaded.config.litellm_settings;
    let (own_budget, spend, blocked, models) = match row {
        Some(r) => (r.budget, r.spend, r.blocked, r.models),
        None => (None, 0.0, false, Vec::new()),
    };
    let budget = match (own_budget, &settings.max_end_user_budget_id) {
        (Some(b), _) => Some(b),
        (None, Some(default)) => state.store.get_budget(default).await.map_err(failed)?,
        (None, None) => None,
    };
    let now = crate::spend::now();
    let max_budget = match &budget {
        Some(b) => effective_max_budget(b, now),
        None => settings.max_end_user_budget,
    };
    if max_budget.is_some() {
        state.budgets.observe_db_spend(
            &EndUser::budget_scope(id),
            spend,
            budget.as_ref().and_then(|b| b.budget_reset_at),
        );
    }
    let pos = |v: Option<i64>| v.filter(|x| *x >= 0).map(|x| x as u64);
    let limits = budget
        .as_ref()
        .map(|b| Descriptor {
            scope: "end_user",
            id: id.to_string(),
            rpm: pos(b.rpm_limit),
            tpm: pos(b.tpm_limit),
            max_parallel: pos(b.max_parallel_requests),
        })
        .filter(Descriptor::is_limited);
    let user = Arc::new(EndUser {
        id: id.to_string(),
        blocked,
        models,
        budget_id: budget.map(|b| b.budget_id),
        max_budget,
        limits,
    });
    state.end_users.insert(user.clone(), &state.budgets);
    Ok(user)
}

/// `max_budget` plus a `temp_budget_increase` that has not expired yet (LiteLLM's
/// `effective_max_budget`).
fn effective_max_budget(b: &BudgetRow, now: chrono::NaiveDateTime) -> Option<f64> {
    let extra = match (b.temp_budget_increase, b.temp_budget_expiry) {
        (Some(inc), Some(exp)) if exp > now => inc,
        _ => 0.0,
    };
    b.max_budget.map(|m| m + extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn end_user_comes_from_headers_then_user() {
        let b = body(serde_json::json!({"user": " cust-1 "}));
        assert_eq!(
            end_user_id(&HeaderMap::new(), &b).as_deref(),
            Some("cust-1")
        );
        let h = headers(&[("x-litellm-end-user-id", "from-header")]);
        assert_eq!(end_user_id(&h, &b).as_deref(), Some("from-header"));
        let empty = body(serde_json::json!({"user": "  "}));
        assert_eq!(end_user_id(&HeaderMap::new(), &empty), None);
        assert_eq!(end_user_id(&HeaderMap::new(), &Map::new()), None);
    }

    fn user(id: &str) -> Arc<EndUser> {
        Arc::new(EndUser {
            id: id.into(),
            blocked: false,
            models: Vec::new(),
            budget_id: None,
            max_budget: Some(1.0),
            limits: None,
        })
    }

    #[test]
    fn a_full_cache_drops_stale_entries_and_their_idle_spend() {
        let budgets = Budgets::default();
        let cache = EndUserCache::with_cap(Duration::from_millis(300), 4);
        for id in ["a", "b", "c"] {
            budgets.add(&EndUser::budget_scope(id), 0.5);
            cache.insert(user(id), &budgets);
        }
        std::thread::sleep(Duration::from_millis(400));
        cache.insert(user("d"), &budgets);
        assert!(cache.get("d").is_some() && cache.get("a").is_none());
        // At the cap: the three stale entries go, "d" and "e" stay.
        cache.insert(user("e"), &budgets);
        assert_eq!(cache.map.len(), 2);
        assert!(budgets.spend(&EndUser::budget_scope("a")).is_none());
        // All fresh at the cap: sweeping frees nothing, so the cache starts over.
        cache.insert(user("f"), &budgets);
        cache.insert(user("g"), &budgets);
        cache.insert(user("h"), &budgets);
        assert_eq!(cache.map.len(), 1);
        assert!(cache.get("h").is_some());
    }

    #[test]
    fn a_budget_reset_clears_cached_end_users_on_that_tier() {
        let budgets = Budgets::default();
        let cache = EndUserCache::new(Duration::from_secs(60));
        let mut on_tier = (*user("t")).clone();
        on_tier.budget_id = Some("tier".into());
        budgets.add(&EndUser::budget_scope("t"), 0.7);
        budgets.add(&EndUser::budget_scope("o"), 0.7);
        cache.insert(Arc::new(on_tier), &budgets);
        cache.insert(user("o"), &budgets);
        cache.on_budget_reset("tier", &budgets);
        assert!(cache.get("t").is_none() && cache.get("o").is_some());
        assert_eq!(budgets.spend(&EndUser::budget_scope("t")), Some(0.0));
        assert_eq!(budgets.spend(&EndUser::budget_scope("o")), Some(0.7));
    }

    #[test]
    fn temp_increase_counts_until_it_expires() {
        let now = crate::spend::now();
        let mut b = BudgetRow {
            max_budget: Some(1.0),
            temp_budget_increase: Some(0.5),
            temp_budget_expiry: Some(now + chrono::Duration::hours(1)),
            ..BudgetRow::default()
        };
        assert_eq!(effective_max_budget(&b, now), Some(1.5));
        b.temp_budget_expiry = Some(now - chrono::Duration::hours(1));
        assert_eq!(effective_max_budget(&b, now), Some(1.0));
        b.max_budget = None;
        assert_eq!(effective_max_budget(&b, now), None);
    }
}
