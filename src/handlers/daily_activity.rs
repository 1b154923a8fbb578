//! The daily activity routes, in LiteLLM's shape (`SpendAnalyticsPaginatedResponse`):
//! `/user/daily/activity`, `/team/daily/activity`, `/organization/daily/activity`,
//! `/tag/daily/activity` and `/customer/daily/activity` (alias `/end_user/daily/activity`).
//!
//! They read a page of `LiteLLM_Daily*Spend` rows (`store::daily_spend`; newest day first)
//! and fold it into per-day metrics with breakdowns by model, model group, provider,
//! endpoint, key and entity, plus page totals, as LiteLLM's `get_daily_activity` does. This
//! module owns who sees what, following LiteLLM: proxy admins and admin viewers see
//! everything; an internal user their own user rows, the teams they belong to (only their own
//! keys' rows unless they are an admin of every team asked for), the tags of their own keys
//! and the organizations they administer; the customer view is for admins only.

use super::keys::store_err;
use super::spend::bad_param;
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::state::AppState;
use crate::store::daily_spend::{DailyFilter, DailyRecord, DailyTable};
use crate::store::KeyFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// `/user/daily/activity`'s default and largest `page_size` (LiteLLM's query bounds).
const USER_PAGE_SIZE: i64 = 50;
const USER_MAX_PAGE_SIZE: i64 = 1000;
/// The other routes' default `page_size`.
const PAGE_SIZE: i64 = 10;
/// Most keys of one user considered when narrowing a view to the caller's own keys.
const MAX_OWN_KEYS: i64 = 10_000;

/// The query parameters of every daily activity route (each reads its own entity filter).
#[derive(Debug, Default, Deserialize)]
pub struct ActivityQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    model: Option<String>,
    api_key: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    user_id: Option<String>,
    team_ids: Option<String>,
    exclude_team_ids: Option<String>,
    organization_ids: Option<String>,
    exclude_organization_ids: Option<String>,
    tags: Option<String>,
    end_user_ids: Option<String>,
    exclude_end_user_ids: Option<String>,
}

/// LiteLLM's `user_api_key_has_admin_view`: proxy admins and admin viewers.
fn admin_view(auth: &AuthCtx) -> bool {
    auth.is_admin || matches!(auth.user_role, Some("proxy_admin" | "proxy_admin_viewer"))
}

fn status_error(status: StatusCode, class: ErrorClass, message: String) -> ApiError {
    let mut e = ApiError::new(class, message);
    e.status_override = Some(status);
    e
}

/// A comma-separated list parameter (`None` when absent or empty).
fn list(v: &Option<String>) -> Option<Vec<String>> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::to_string).collect())
}

/// A `YYYY-MM-DD` day, spelled exactly so (the tables compare the text).
fn canonical_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| d.format("%Y-%m-%d").to_string() == s)
}

/// The page request and the rows filter common to every route.
struct Page {
    page: i64,
    page_size: i64,
}

fn page_of(q: &ActivityQuery, default_size: i64, max_size: Option<i64>) -> ApiResult<Page> {
    let (Some(start), Some(end)) = (&q.start_date, &q.end_date) else {
        return Err(bad_param(
            "start_date",
            "Please provide start_date and end_date".into(),
        ));
    };
    if canonical_day(start).is_none() || canonical_day(end).is_none() {
        return Err(bad_param(
            "start_date",
            "start_date and end_date must be valid YYYY-MM-DD dates".into(),
        ));
    }
    let page = super::spend::int_param(&q.page, "page")?.unwrap_or(1);
    let page_size = super::spend::int_param(&q.page_size, "page_size")?.unwrap_or(default_size);
    if page < 1 || page_size < 1 || max_size.is_some_and(|m| page_size > m) {
        return Err(bad_param(
            "page_size",
            format!("page and page_size must be >= 1, got page={page}, page_size={page_size}"),
        ));
    }
    Ok(Page { page, page_size })
}

fn filter(
    q: &ActivityQuery,
    table: DailyTable,
    entities: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    api_keys: Option<Vec<String>>,
) -> DailyFilter {
    DailyFilter {
        table,
        start: q.start_date.clone().unwrap_or_default(),
        end: q.end_date.clone().unwrap_or_default(),
        entities,
        exclude_entities: exclude.unwrap_or_default(),
        model: q.model.clone().filter(|m| !m.is_empty()),
        api_keys,
    }
}

/// The `api_key` parameter as a one-key filter.
fn requested_key(q: &ActivityQuery) -> Option<Vec<String>> {
    q.api_key
        .clone()
        .filter(|k| !k.is_empty())
        .map(|k| vec![super::spend::key_param(k)])
}

/// Narrows a key filter to the caller's own keys (`[]`: nothing).
fn within_own(requested: Option<Vec<String>>, own: Vec<String>) -> Vec<String> {
    match requested {
        Some(r) => r.into_iter().filter(|k| own.contains(k)).collect(),
        None => own,
    }
}

pub(crate) async fn own_keys(state: &AppState, user_id: &str) -> ApiResult<Vec<String>> {
    let f = KeyFilter {
        user_id: Some(user_id.to_string()),
        ..KeyFilter::default()
    };
    let (rows, _) = state
        .store
        .list_keys(&f, 0, MAX_OWN_KEYS)
        .await
        .map_err(store_err)?;
    Ok(rows.into_iter().map(|k| k.token).collect())
}

/// LiteLLM's `SpendMetrics`, summed over daily rows.
#[derive(Debug, Default, Clone, Copy)]
struct Metrics {
    spend: f64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cache_read_input_tokens: i64,
    cache_creation_input_tokens: i64,
    api_requests: i64,
    successful_requests: i64,
    failed_requests: i64,
    total_response_time_ms: i64,
    timed_requests: i64,
}

impl Metrics {
    fn add(&mut self, r: &DailyRecord) {
        self.spend += r.spend;
        self.prompt_tokens += r.prompt_tokens;
        self.completion_tokens += r.completion_tokens;
        self.cache_read_input_tokens += r.cache_read_input_tokens;
        self.cache_creation_input_tokens += r.cache_creation_input_tokens;
        self.api_requests += r.api_requests;
        self.successful_requests += r.successful_requests;
        self.failed_requests += r.failed_requests;
        self.total_response_time_ms += r.total_response_time_ms;
        self.timed_requests += r.timed_requests;
    }

    fn json(&self) -> Value {
        json!({
            "spend": self.spend,
            "flat_cost": 0.0,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "compression_saved_tokens": 0,
            "compression_savings_spend": 0.0,
            "prompt_caching_savings_spend": 0.0,
            "gateway_injected_caching_savings_spend": 0.0,
            "autorouter_savings_spend": 0.0,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "successful_requests": self.successful_requests,
            "failed_requests": self.failed_requests,
            "api_requests": self.api_requests,
            "total_response_time_ms": self.total_response_time_ms,
            "timed_requests": self.timed_requests,
        })
    }
}

/// One breakdown entry: its metrics and, per key, the key's share.
#[derive(Default)]
struct Bucket {
    metrics: Metrics,
    keys: BTreeMap<String, Metrics>,
}

impl Bucket {
    fn add(&mut self, r: &DailyRecord, per_key: bool) {
        self.metrics.add(r);
        if per_key {
            self.keys.entry(r.api_key.clone()).or_default().add(r);
        }
    }
}

#[derive(Default)]
struct Day {
    metrics: Metrics,
    models: BTreeMap<String, Bucket>,
    model_groups: BTreeMap<String, Bucket>,
    providers: BTreeMap<String, Bucket>,
    endpoints: BTreeMap<String, Bucket>,
    api_keys: BTreeMap<String, Metrics>,
    entities: BTreeMap<String, Bucket>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl Day {
    fn add(&mut self, r: &DailyRecord) {
        self.metrics.add(r);
        if let Some(m) = non_empty(&r.model) {
            self.models.entry(m.to_string()).or_default().add(r, true);
        }
        if let Some(g) = non_empty(&r.model_group).or(non_empty(&r.model)) {
            self.model_groups
                .entry(g.to_string())
                .or_default()
                .add(r, true);
        }
        let provider = non_empty(&r.custom_llm_provider).unwrap_or("unknown");
        self.providers
            .entry(provider.to_string())
            .or_default()
            .add(r, true);
        if let Some(e) = non_empty(&r.endpoint) {
            self.endpoints
                .entry(e.to_string())
                .or_default()
                .add(r, true);
        }
        self.api_keys.entry(r.api_key.clone()).or_default().add(r);
        let entity = non_empty(&r.entity).unwrap_or("Unassigned");
        self.entities
            .entry(entity.to_string())
            .or_default()
            .add(r, true);
    }
}

/// What a key breakdown says about each key (LiteLLM's `KeyMetadata`).
type KeyInfo = HashMap<String, Value>;

async fn key_info(state: &AppState, keys: &HashSet<&str>) -> ApiResult<KeyInfo> {
    let mut out = HashMap::with_capacity(keys.len());
    for k in keys {
        let row = state.store.get_key(k).await.map_err(store_err)?;
        let v = match row {
            Some(r) => json!({
                "key_alias": r.key_alias, "team_id": r.team_id, "user_id": r.user_id,
                "user_email": null, "key_exists": true,
            }),
            None => json!({
                "key_alias": null, "team_id": null, "user_id": null, "user_email": null,
                "key_exists": null,
            }),
        };
        out.insert((*k).to_string(), v);
    }
    Ok(out)
}

fn keys_json(keys: &BTreeMap<String, Metrics>, info: &KeyInfo) -> Value {
    Value::Object(
        keys.iter()
            .map(|(k, m)| {
                let meta = info.get(k).cloned().unwrap_or_else(|| json!({}));
                (k.clone(), json!({"metrics": m.json(), "metadata": meta}))
            })
            .collect(),
    )
}

fn buckets_json(
    b: &BTreeMap<String, Bucket>,
    info: &KeyInfo,
    meta: &HashMap<String, Value>,
) -> Value {
    Value::Object(
        b.iter()
            .map(|(name, bucket)| {
                let metadata = meta.get(name).cloned().unwrap_or_else(|| json!({}));
                (
                    name.clone(),
                    json!({
                        "metrics": bucket.metrics.json(),
                        "metadata": metadata,
                        "api_key_breakdown": keys_json(&bucket.keys, info),
                    }),
                )
            })
            .collect(),
    )
}

/// Labels of the entities on a page: team aliases, user emails and aliases, organization
/// aliases (LiteLLM's entity metadata); none for tags and end users.
async fn entity_metadata(
    state: &AppState,
    table: DailyTable,
    ids: &HashSet<&str>,
) -> ApiResult<HashMap<String, Value>> {
    let mut out = HashMap::new();
    for id in ids {
        let meta = match table {
            DailyTable::Team => state
                .store
                .get_team(id)
                .await
                .map_err(store_err)?
                .map(|t| json!({"team_alias": t.team_alias})),
            DailyTable::User => state
                .store
                .get_user(id)
                .await
                .map_err(store_err)?
                .map(|u| json!({"user_email": u.user_email, "user_alias": u.user_alias})),
            DailyTable::Organization => state
                .store
                .get_organization(id)
                .await
                .map_err(store_err)?
                .map(|o| json!({"organization_alias": o.organization_alias})),
            DailyTable::EndUser | DailyTable::Tag => None,
        };
        if let Some(m) = meta {
            out.insert((*id).to_string(), m);
        }
    }
    Ok(out)
}

/// Reads the page and shapes LiteLLM's `SpendAnalyticsPaginatedResponse`.
async fn activity(state: &AppState, f: DailyFilter, p: Page) -> ApiResult<Value> {
    state.spend.flush().await;
    let (rows, total) = state
        .store
        .daily_rows(&f, p.page, p.page_size)
        .await
        .map_err(store_err)?;
    let keys: HashSet<&str> = rows.iter().map(|r| r.api_key.as_str()).collect();
    let info = key_info(state, &keys).await?;
    let ids: HashSet<&str> = rows.iter().filter_map(|r| non_empty(&r.entity)).collect();
    let entity_meta = entity_metadata(state, f.table, &ids).await?;
    let mut days: BTreeMap<&str, Day> = BTreeMap::new();
    let mut totals = Metrics::default();
    for r in &rows {
        days.entry(r.date.as_str()).or_default().add(r);
        totals.add(r);
    }
    let none = HashMap::new();
    let results: Vec<Value> = days
        .iter()
        .rev()
        .map(|(date, d)| {
            json!({
                "date": date,
                "metrics": d.metrics.json(),
                "breakdown": {
                    "mcp_servers": {},
                    "models": buckets_json(&d.models, &info, &none),
                    "model_groups": buckets_json(&d.model_groups, &info, &none),
                    "providers": buckets_json(&d.providers, &info, &none),
                    "endpoints": buckets_json(&d.endpoints, &info, &none),
                    "api_keys": keys_json(&d.api_keys, &info),
                    "entities": buckets_json(&d.entities, &info, &entity_meta),
                },
            })
        })
        .collect();
    let total_pages = (total + p.page_size - 1) / p.page_size;
    let mut meta = Map::new();
    for (name, v) in [
        ("total_spend", json!(totals.spend)),
        ("total_flat_cost", json!(0.0)),
        ("total_prompt_tokens", json!(totals.prompt_tokens)),
        ("total_completion_tokens", json!(totals.completion_tokens)),
        (
            "total_tokens",
            json!(totals.prompt_tokens + totals.completion_tokens),
        ),
        ("total_api_requests", json!(totals.api_requests)),
        (
            "total_successful_requests",
            json!(totals.successful_requests),
        ),
        ("total_failed_requests", json!(totals.failed_requests)),
        (
            "total_cache_read_input_tokens",
            json!(totals.cache_read_input_tokens),
        ),
        (
            "total_cache_creation_input_tokens",
            json!(totals.cache_creation_input_tokens),
        ),
        ("total_compression_saved_tokens", json!(0)),
        ("total_compression_savings_spend", json!(0.0)),
        ("total_prompt_caching_savings_spend", json!(0.0)),
        ("total_gateway_injected_caching_savings_spend", json!(0.0)),
        ("total_autorouter_savings_spend", json!(0.0)),
        (
            "total_response_time_ms",
            json!(totals.total_response_time_ms),
        ),
        ("total_timed_requests", json!(totals.timed_requests)),
        ("page", json!(p.page)),
        ("total_pages", json!(total_pages)),
        ("has_more", json!(p.page * p.page_size < total)),
        ("api_key_limit", Value::Null),
        ("total_api_keys", Value::Null),
        ("entity_total_api_keys", Value::Null),
    ] {
        meta.insert(name.into(), v);
    }
    Ok(json!({"results": results, "metadata": meta}))
}

/// An empty response (a caller whose view holds nothing).
fn empty() -> Value {
    json!({"results": [], "metadata": {"total_spend": 0.0, "page": 1, "total_pages": 1, "has_more": false}})
}

async fn respond(f: impl std::future::Future<Output = ApiResult<Value>>) -> Response {
    match f.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /user/daily/activity`: admins see every user (or `user_id`); anyone else their own.
pub async fn user_daily_activity_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ActivityQuery>,
) -> Response {
    respond(async {
        let p = page_of(&q, USER_PAGE_SIZE, Some(USER_MAX_PAGE_SIZE))?;
        let user = if admin_view(&auth) {
            q.user_id.clone()
        } else {
            let Some(own) = auth.key.as_ref().and_then(|k| k.user_id.clone()) else {
                return Err(status_error(
                    StatusCode::FORBIDDEN,
                    ErrorClass::ProxyAuth,
                    "Service-account keys cannot query user analytics. Use a user-bound key, or call as a proxy admin.".into(),
                ));
            };
            if q.user_id.as_ref().is_some_and(|u| *u != own) {
                return Err(status_error(
                    StatusCode::FORBIDDEN,
                    ErrorClass::ProxyAuth,
                    "Non-admin users can only view their own spend data.".into(),
                ));
            }
            Some(own)
        };
        let f = filter(
            &q,
            DailyTable::User,
            user.map(|u| vec![u]),
            None,
            requested_key(&q),
        );
        activity(&state, f, p).await
    })
    .await
}

/// `GET /team/daily/activity`: admins see every team (or `team_ids`); others the teams they
/// belong to, and only their own keys' rows unless they administer every team asked for.
pub async fn team_daily_activity_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ActivityQuery>,
) -> Response {
    respond(async {
        let p = page_of(&q, PAGE_SIZE, None)?;
        let mut teams = list(&q.team_ids);
        let mut keys = requested_key(&q);
        if !admin_view(&auth) {
            let uid = auth.user_id().map(str::to_string).unwrap_or_default();
            let user = state.store.get_user(&uid).await.map_err(store_err)?;
            let Some(user) = user else {
                return Err(ApiError::not_found(format!("User= {uid} not found")));
            };
            match &teams {
                None => teams = Some(user.teams.clone()),
                Some(asked) => {
                    if let Some(t) = asked.iter().find(|t| !user.teams.contains(t)) {
                        return Err(ApiError::not_found(format!(
                            "User does not belong to Team= {t}. Call `/user/info` to see user's teams"
                        )));
                    }
                }
            }
            let mut full_view = true;
            let mut found = false;
            for t in teams.iter().flatten() {
                if let Some(team) = state.store.get_team(t).await.map_err(store_err)? {
                    found = true;
                    if !super::access::is_team_admin(&auth, &team) {
                        full_view = false;
                    }
                }
            }
            if found && !full_view {
                keys = Some(within_own(keys, own_keys(&state, &uid).await?));
            }
        }
        let f = filter(
            &q,
            DailyTable::Team,
            teams,
            list(&q.exclude_team_ids),
            keys,
        );
        activity(&state, f, p).await
    })
    .await
}

/// `GET /organization/daily/activity`: admins see every organization (or
/// `organization_ids`); others the organizations they are `org_admin` of.
pub async fn organization_daily_activity_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ActivityQuery>,
) -> Response {
    respond(async {
        let p = page_of(&q, PAGE_SIZE, None)?;
        let mut orgs = list(&q.organization_ids);
        if !admin_view(&auth) {
            let uid = auth.user_id().unwrap_or_default();
            let admin_of: Vec<String> = state
                .store
                .user_org_memberships(uid)
                .await
                .map_err(store_err)?
                .into_iter()
                .filter(|m| m.user_role.as_deref() == Some("org_admin"))
                .map(|m| m.organization_id)
                .collect();
            match &orgs {
                None => orgs = Some(admin_of),
                Some(asked) => {
                    if let Some(o) = asked.iter().find(|o| !admin_of.contains(o)) {
                        return Err(status_error(
                            StatusCode::FORBIDDEN,
                            ErrorClass::ProxyAuth,
                            format!("User is not org_admin for Organization= {o}."),
                        ));
                    }
                }
            }
        }
        let f = filter(
            &q,
            DailyTable::Organization,
            orgs,
            list(&q.exclude_organization_ids),
            requested_key(&q),
        );
        activity(&state, f, p).await
    })
    .await
}

/// `GET /tag/daily/activity`: every tag (or `tags`); a caller who is not an admin sees only
/// the rows of their own keys.
pub async fn tag_daily_activity_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ActivityQuery>,
) -> Response {
    respond(async {
        let p = page_of(&q, PAGE_SIZE, None)?;
        let mut keys = requested_key(&q);
        if !admin_view(&auth) {
            // A key with no user sees its own rows only (LiteLLM would show it every tag).
            let own = match auth.user_id() {
                Some(uid) => own_keys(&state, uid).await?,
                None => auth.key_hash.clone().into_iter().collect(),
            };
            let own = within_own(keys, own);
            if own.is_empty() {
                return Ok(empty());
            }
            keys = Some(own);
        }
        let f = filter(&q, DailyTable::Tag, list(&q.tags), None, keys);
        activity(&state, f, p).await
    })
    .await
}

/// `GET /customer/daily/activity` (and `/end_user/daily/activity`): admins only.
pub async fn customer_daily_activity_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ActivityQuery>,
) -> Response {
    respond(async {
        if !admin_view(&auth) {
            return Err(ApiError::proxy_auth(format!(
                "Admin-only endpoint. Your user role={}",
                auth.user_role.unwrap_or("None")
            )));
        }
        let p = page_of(&q, PAGE_SIZE, None)?;
        let f = filter(
            &q,
            DailyTable::EndUser,
            list(&q.end_user_ids),
            list(&q.exclude_end_user_ids),
            requested_key(&q),
        );
        activity(&state, f, p).await
    })
    .await
}
