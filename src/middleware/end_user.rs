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

use super::single_flight::SingleFlight;
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

/// Where a request names its end user, in LiteLLM's order: the standard customer-id headers;
/// the configured headers (`state.end_user_headers`); the body's `user` (on `/v1/messages`,
/// Anthropic's `metadata.user_id` has become `user` by then); the request metadata's `user`
/// (`litellm_metadata.user`) and `user_id` (`metadata.user_id`); the Responses API's
/// `safety_identifier`. A string is trimmed and a number taken as its text; anything else,
/// or an empty string, is passed over.
pub fn end_user_id(
    headers: &HeaderMap,
    configured: &[http::HeaderName],
    body: &Map<String, Value>,
    metadata: Option<&Value>,
) -> Option<String> {
    let from_headers = END_USER_HEADERS
        .iter()
        .chain(configured)
        .filter_map(|h| crate::handlers::request_header(headers, h).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .find(|s| !s.is_empty());
    if let Some(id) = from_headers {
        return Some(id.to_string());
    }
    let metadata = metadata.filter(|m| m.is_object());
    [
        body.field("user"),
        metadata.and_then(|m| m.field("user")),
        metadata.and_then(|m| m.field("user_id")),
        body.field("safety_identifier"),
    ]
    .into_iter()
    .flatten()
    .find_map(|v| match v {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(String::from),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The headers `general_settings` adds ahead of the body: those `user_header_mappings` maps to
/// the `customer` role, else `user_header_name`. A name that is not a valid header name is
/// warned about and skipped.
pub fn configured_headers(g: &crate::config::GeneralSettings) -> Vec<http::HeaderName> {
    let mapped: Vec<&str> = g
        .user_header_mappings
        .iter()
        .flatten()
        .filter(|m| m.litellm_user_role.eq_ignore_ascii_case("customer"))
        .map(|m| m.header_name.as_str())
        .filter(|n| !n.trim().is_empty())
        .collect();
    let names = if mapped.is_empty() {
        g.user_header_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .into_iter()
            .collect()
    } else {
        mapped
    };
    names
        .into_iter()
        .filter_map(|n| {
            let parsed = http::HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes());
            if parsed.is_err() {
                tracing::warn!("general_settings: {n:?} is not a valid header name; ignored");
            }
            parsed.ok()
        })
        .collect()
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
    /// Reads in flight, by id.
    loads: SingleFlight<String, ApiResult<Arc<EndUser>>>,
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
            loads: SingleFlight::default(),
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
    // Requests that miss together (the entry expired under load) share one read.
    state.end_users.loads.run(id, || load(state, id)).await
}

/// The end user `id` read from the store, then cached.
async fn load(state: &AppState, id: &str) -> ApiResult<Arc<EndUser>> {
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
        let id = |h: &HeaderMap, b: &Map<String, Value>| end_user_id(h, &[], b, None);
        let b = body(serde_json::json!({"user": " cust-1 "}));
        assert_eq!(id(&HeaderMap::new(), &b).as_deref(), Some("cust-1"));
        let h = headers(&[("x-litellm-end-user-id", "from-header")]);
        assert_eq!(id(&h, &b).as_deref(), Some("from-header"));
        let empty = body(serde_json::json!({"user": "  "}));
        assert_eq!(id(&HeaderMap::new(), &empty), None);
        assert_eq!(id(&HeaderMap::new(), &Map::new()), None);
        assert_eq!(
            id(&HeaderMap::new(), &body(serde_json::json!({"user": 42}))).as_deref(),
            Some("42")
        );
    }

    #[test]
    fn configured_headers_metadata_and_safety_identifier_follow_litellm_order() {
        use crate::config::{GeneralSettings, HeaderMapping};
        let old = GeneralSettings {
            user_header_name: Some("X-OpenWebUI-User-Id".into()),
            ..Default::default()
        };
        let custom = configured_headers(&old);
        assert_eq!(custom, ["x-openwebui-user-id"]);
        let mapped = GeneralSettings {
            user_header_name: Some("x-ignored".into()),
            user_header_mappings: Some(vec![
                HeaderMapping {
                    header_name: "X-Internal-User".into(),
                    litellm_user_role: "internal_user".into(),
                },
                HeaderMapping {
                    header_name: "X-Customer".into(),
                    litellm_user_role: "CUSTOMER".into(),
                },
            ]),
            ..Default::default()
        };
        assert_eq!(configured_headers(&mapped), ["x-customer"]);

        let b = body(serde_json::json!({"user": "body-user", "safety_identifier": "safe"}));
        let h = headers(&[("x-openwebui-user-id", "webui-7")]);
        assert_eq!(
            end_user_id(&h, &custom, &b, None).as_deref(),
            Some("webui-7")
        );
        let both = headers(&[
            ("x-openwebui-user-id", "webui-7"),
            ("x-litellm-customer-id", "std"),
        ]);
        assert_eq!(
            end_user_id(&both, &custom, &b, None).as_deref(),
            Some("std")
        );
        assert_eq!(
            end_user_id(&HeaderMap::new(), &custom, &b, None).as_deref(),
            Some("body-user")
        );
        let meta = serde_json::json!({"user_id": "meta-user"});
        let no_user = body(serde_json::json!({"safety_identifier": "safe"}));
        assert_eq!(
            end_user_id(&HeaderMap::new(), &custom, &no_user, Some(&meta)).as_deref(),
            Some("meta-user")
        );
        assert_eq!(
            end_user_id(&HeaderMap::new(), &custom, &no_user, None).as_deref(),
            Some("safe")
        );
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
