//! Spend logs and spend administration: `/spend/logs` (rows, or LiteLLM's daily summary),
//! `/spend/logs/v2` (paginated, filtered), `/global/spend`, `/global/spend/logs`,
//! `/spend/calculate`, `/global/spend/reset` and `/key/{key}/reset_spend`, plus the access
//! rules the spend routes share ([`Reader`]). The grouped reports live in
//! `handlers::spend_reports`; SQL in `store::spend_reports`.
//!
//! Who may call what follows LiteLLM's route checks: the master key (and keys of
//! `proxy_admin` / `proxy_admin_viewer` users) see everything; keys of `internal_user` /
//! `internal_user_viewer` users may call the per-caller spend routes and see their own rows;
//! the `/global/spend*` routes are admin-only unless the key's `permissions` grant
//! `get_spend_routes`; `/global/spend/reset` is master-key only; `/spend/calculate` is open to
//! every key. Every read flushes the spend writer first, so a report includes what is still
//! queued.

use super::keys::{body_of, field_error, require_admin, store_err, ts};
use crate::api::Usage;
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::{hash_key, AuthCtx};
use crate::spend::call::rates_for;
use crate::spend::prices::{PriceMap, Rates};
use crate::state::AppState;
use crate::store::spend_reports::{days_ago, LogFilter, LogRow, LogSort, OwnedScope, SpanType};
use crate::store::{rows_parse_ts, UserRow};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Most rows `/spend/logs` returns at once, and where `/spend/logs/v2` stops counting
/// (LiteLLM's `SPEND_LOGS_PAGINATION_COUNT_CAP`).
pub(crate) const LOG_ROW_CAP: i64 = 10_000;
/// `/spend/logs/v2` page size bounds and default.
const MAX_PAGE_SIZE: i64 = 1000;
const DEFAULT_PAGE_SIZE: i64 = 50;
/// LiteLLM's "last 30 days" spend views.
pub(crate) const RECENT_DAYS: i64 = 30;
/// The key LiteLLM's internal health checks call with (its hash is excluded too).
const HEALTH_CHECK_KEY: &str = "litellm-internal-health-check";

/// Who is reading spend, as LiteLLM's route checks classify the caller.
#[derive(Debug, Clone)]
pub(crate) enum Reader {
    /// Master key, or a key of a `proxy_admin` / `proxy_admin_viewer` user: all rows.
    Admin,
    /// A key of an `internal_user` / `internal_user_viewer` user: their own rows.
    User(Box<UserRow>),
    /// Any other key (no user, or another role).
    Other,
}

/// Classifies the caller (one user lookup for a virtual key with a `user_id`; management
/// routes only, never the LLM path).
pub(crate) async fn reader(state: &AppState, auth: &AuthCtx) -> ApiResult<Reader> {
    if auth.is_admin {
        return Ok(Reader::Admin);
    }
    let Some(uid) = auth.key.as_ref().and_then(|k| k.user_id.clone()) else {
        return Ok(Reader::Other);
    };
    let user = state.store.get_user(&uid).await.map_err(store_err)?;
    Ok(match user {
        Some(u) => match u.user_role.as_deref() {
            Some("proxy_admin" | "proxy_admin_viewer") => Reader::Admin,
            Some("internal_user" | "internal_user_viewer") => Reader::User(Box::new(u)),
            _ => Reader::Other,
        },
        None => Reader::Other,
    })
}

/// Gate of the per-caller spend routes (`/spend/logs*`, `/spend/tags`, `/<x>/spend/report`):
/// admins and internal users; anyone else gets LiteLLM's admin-only 401.
pub(crate) async fn spend_route(
    state: &AppState,
    auth: &AuthCtx,
    route: &str,
) -> ApiResult<Reader> {
    match reader(state, auth).await? {
        Reader::Other => Err(require_admin(auth, route).err().unwrap_or_else(|| {
            ApiError::proxy_auth(format!("Route={route} is for proxy admins only"))
        })),
        r => Ok(r),
    }
}

/// Gate of the `/global/spend*` routes: admins, and keys whose `permissions` grant
/// `get_spend_routes` (an internal user's such key sees their own figures, as in LiteLLM).
pub(crate) async fn global_route(
    state: &AppState,
    auth: &AuthCtx,
    route: &str,
) -> ApiResult<Reader> {
    let r = reader(state, auth).await?;
    if matches!(r, Reader::Admin) {
        return Ok(r);
    }
    let granted = auth
        .key
        .as_ref()
        .is_some_and(|k| k.permissions.get("get_spend_routes") == Some(&Value::Bool(true)));
    if !granted {
        require_admin(auth, route)?;
    }
    Ok(match r {
        Reader::User(u) => Reader::User(u),
        _ => Reader::Admin,
    })
}

/// A key parameter: raw `sk-...` keys are hashed, anything else is taken as the hash.
pub(crate) fn key_param(k: String) -> String {
    if k.starts_with("sk-") {
        hash_key(&k)
    } else {
        k
    }
}

pub(crate) fn bad_param(field: &str, message: String) -> ApiError {
    ApiError::bad_request(message).with_param(field)
}

/// A `YYYY-MM-DD` date parameter.
pub(crate) fn ymd(s: &str, field: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        bad_param(
            field,
            format!("Invalid {field} '{s}': expected a date as YYYY-MM-DD"),
        )
    })
}

pub(crate) fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(0, 0, 0).unwrap_or_default()
}

/// An integer query parameter.
pub(crate) fn int_param(v: &Option<String>, field: &str) -> ApiResult<Option<i64>> {
    v.as_deref()
        .map(|s| {
            s.trim().parse::<i64>().map_err(|_| {
                bad_param(field, format!("Invalid {field} '{s}': expected an integer"))
            })
        })
        .transpose()
}

fn float_param(v: &Option<String>, field: &str) -> ApiResult<Option<f64>> {
    v.as_deref()
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    bad_param(field, format!("Invalid {field} '{s}': expected a number"))
                })
        })
        .transpose()
}

/// A boolean query parameter, in the spellings FastAPI accepts.
fn bool_param(v: &Option<String>, field: &str) -> ApiResult<Option<bool>> {
    v.as_deref()
        .map(|s| match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(bad_param(
                field,
                format!("Invalid {field} '{s}': expected true or false"),
            )),
        })
        .transpose()
}

fn iso(s: &Option<String>) -> Value {
    ts(s.as_deref().and_then(rows_parse_ts))
}

fn json_or(s: &Option<String>, default: Value) -> Value {
    s.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .filter(|v: &Value| !v.is_null())
        .unwrap_or(default)
}

/// A spend-log row as the listings return it (LiteLLM's column names).
pub(crate) fn log_json(r: &LogRow) -> Value {
    json!({
        "request_id": r.request_id, "call_type": r.call_type, "api_key": r.api_key,
        "spend": r.spend, "total_tokens": r.total_tokens, "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens, "startTime": iso(&r.start_time),
        "endTime": iso(&r.end_time), "completionStartTime": iso(&r.completion_start_time),
        "model": r.model, "model_id": r.model_id, "model_group": r.model_group,
        "custom_llm_provider": r.custom_llm_provider, "api_base": r.api_base, "user": r.user,
        "metadata": json_or(&r.metadata, json!({})), "cache_hit": r.cache_hit,
        "cache_key": r.cache_key, "request_tags": json_or(&r.request_tags, json!([])),
        "team_id": r.team_id, "organization_id": r.organization_id, "end_user": r.end_user,
        "requester_ip_address": r.requester_ip_address, "session_id": r.session_id,
        "status": r.status, "request_duration_ms": r.request_duration_ms,
    })
}

async fn run<F>(f: F) -> Response
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    f.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
pub struct SpendLogsQuery {
    api_key: Option<String>,
    user_id: Option<String>,
    request_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    summarize: Option<String>,
}

/// `GET /spend/logs`: with both `start_date` and `end_date` (days, `startTime` from the first
/// midnight to the second, as LiteLLM compares them) the daily summary unless
/// `summarize=false`; otherwise the newest rows (at most [`LOG_ROW_CAP`]).
pub async fn spend_logs_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<SpendLogsQuery>,
) -> Response {
    run(logs(&state, &auth, q)).await
}

async fn logs(state: &AppState, auth: &AuthCtx, q: SpendLogsQuery) -> ApiResult<Response> {
    let reader = spend_route(state, auth, "/spend/logs").await?;
    let summarize = bool_param(&q.summarize, "summarize")?.unwrap_or(true);
    let start = q
        .start_date
        .as_deref()
        .map(|s| ymd(s, "start_date"))
        .transpose()?;
    let end = q
        .end_date
        .as_deref()
        .map(|s| ymd(s, "end_date"))
        .transpose()?;
    let mut f = LogFilter {
        api_key: q.api_key.map(key_param),
        request_id: q.request_id,
        user: q.user_id,
        ..LogFilter::default()
    };
    if let Reader::User(u) = &reader {
        f.user = Some(u.user_id.clone());
    }
    state.spend.flush().await;
    // LiteLLM applies the dates only as a pair; a lone date is ignored.
    let window = start.zip(end);
    if let Some((s, e)) = window {
        f.start = Some(midnight(s));
        f.end = Some(midnight(e));
        if summarize {
            return daily_summary(state, &f, e).await;
        }
    }
    let rows = state
        .store
        .list_spend_logs(&f, LogSort::StartTime, true, LOG_ROW_CAP, 0)
        .await
        .map_err(store_err)?;
    let mut resp = Json(Value::Array(rows.iter().map(log_json).collect())).into_response();
    if rows.len() as i64 == LOG_ROW_CAP {
        resp.headers_mut().insert(
            "x-litellm-spend-logs-truncated",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

/// LiteLLM's summary: per day, the spend of each key (keyed by its hash), the total, and spend
/// per user and per model; days after the last one with spend, up to `end`, with 0.
async fn daily_summary(state: &AppState, f: &LogFilter, end: NaiveDate) -> ApiResult<Response> {
    let rows = state
        .store
        .spend_daily_summary(f)
        .await
        .map_err(store_err)?;
    let mut out: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let day = rows[i].day.clone();
        let mut keys = Map::new();
        let mut users = Map::new();
        let mut models = Map::new();
        let mut total = 0.0;
        let add = |m: &mut Map<String, Value>, k: String, v: f64| {
            let cur = m.get(&k).and_then(Value::as_f64).unwrap_or(0.0);
            m.insert(k, json!(cur + v));
        };
        while i < rows.len() && rows[i].day == day {
            let r = &rows[i];
            add(&mut keys, r.api_key.clone(), r.spend);
            add(
                &mut users,
                r.user.clone().unwrap_or_else(|| "null".into()),
                r.spend,
            );
            add(
                &mut models,
                r.model.clone().unwrap_or_else(|| "null".into()),
                r.spend,
            );
            total += r.spend;
            i += 1;
        }
        let mut item = keys;
        item.insert("startTime".into(), json!(day));
        item.insert("spend".into(), json!(total));
        item.insert("users".into(), Value::Object(users));
        item.insert("models".into(), Value::Object(models));
        out.push(Value::Object(item));
    }
    if let Some(last) = rows
        .last()
        .and_then(|r| NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").ok())
    {
        let mut d = last;
        while let Some(next) = d.succ_opt().filter(|n| *n <= end) {
            out.push(json!({"startTime": next.format("%Y-%m-%d").to_string(), "spend": 0, "users": {}, "models": {}}));
            d = next;
        }
    }
    Ok(Json(Value::Array(out)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SpendLogsV2Query {
    api_key: Option<String>,
    user_id: Option<String>,
    request_id: Option<String>,
    session_id: Option<String>,
    team_id: Option<String>,
    min_spend: Option<String>,
    max_spend: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    status_filter: Option<String>,
    cache_hit_filter: Option<String>,
    span_type: Option<String>,
    model: Option<String>,
    model_id: Option<String>,
    model_group: Option<String>,
    key_alias: Option<String>,
    end_user: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    exclude_internal_health_checks: Option<String>,
    search: Option<String>,
}

/// A `/spend/logs/v2` date: `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` (midnight), UTC.
fn v2_date(s: &Option<String>, field: &str) -> ApiResult<NaiveDateTime> {
    let s = s.as_deref().ok_or_else(|| {
        bad_param(
            field,
            "Start date and end date are required (start_date, end_date)".into(),
        )
    })?;
    let t = s.trim();
    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().map(midnight))
        .ok_or_else(|| {
            bad_param(
                field,
                format!(
                    "Invalid date format: {s}. Expected: 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'"
                ),
            )
        })
}

/// `GET /spend/logs/v2`: a page of spend-log rows with LiteLLM's filters, sorted, and the
/// (capped) total: `{data, total, page, page_size, total_pages, total_is_capped}`.
pub async fn spend_logs_v2_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<SpendLogsV2Query>,
) -> Response {
    run(logs_v2(&state, &auth, q)).await
}

async fn logs_v2(state: &AppState, auth: &AuthCtx, q: SpendLogsV2Query) -> ApiResult<Response> {
    let reader = spend_route(state, auth, "/spend/logs/v2").await?;
    let sort_by = q.sort_by.as_deref().unwrap_or("startTime");
    let sort = LogSort::parse(sort_by).ok_or_else(|| {
        bad_param(
            "sort_by",
            format!(
                "Invalid sort_by: {sort_by}. Must be one of: {}",
                LogSort::NAMES.join(", ")
            ),
        )
    })?;
    let descending = match q
        .sort_order
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => {
            return Err(bad_param(
                "sort_order",
                format!(
                    "Invalid sort_order: {}. Must be one of: asc, desc",
                    q.sort_order.as_deref().unwrap_or_default()
                ),
            ))
        }
    };
    let cache_hit = match q.cache_hit_filter.as_deref() {
        None => None,
        Some("hit") => Some(true),
        Some("miss") => Some(false),
        Some(o) => {
            return Err(bad_param(
                "cache_hit_filter",
                format!("Invalid cache_hit_filter: {o}. Must be one of: hit, miss"),
            ))
        }
    };
    let span_type = q
        .span_type
        .as_deref()
        .map(|s| {
            SpanType::parse(s).ok_or_else(|| {
                bad_param(
                    "span_type",
                    format!("Invalid span_type: {s}. Must be one of: llm, agent, mcp, batch"),
                )
            })
        })
        .transpose()?;
    let page = int_param(&q.page, "page")?.unwrap_or(1);
    if page < 1 {
        return Err(bad_param("page", "page must be >= 1".into()));
    }
    let page_size = int_param(&q.page_size, "page_size")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(bad_param(
            "page_size",
            format!("page_size must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let start = v2_date(&q.start_date, "start_date")?;
    let end = v2_date(&q.end_date, "end_date")?;
    let exclude_health = bool_param(
        &q.exclude_internal_health_checks,
        "exclude_internal_health_checks",
    )?
    .unwrap_or(false);
    let mut f = LogFilter {
        start: Some(start),
        end: Some(end),
        api_key: q.api_key.map(key_param),
        user: q.user_id,
        request_id: q.request_id,
        team_id: q.team_id,
        model: q.model,
        model_id: q.model_id,
        model_group: q.model_group,
        end_user: q.end_user,
        status: q.status_filter,
        min_spend: float_param(&q.min_spend, "min_spend")?,
        max_spend: float_param(&q.max_spend, "max_spend")?,
        session_id: q.session_id,
        cache_hit,
        span_type,
        exclude_api_keys: if exclude_health {
            vec![HEALTH_CHECK_KEY.to_string(), hash_key(HEALTH_CHECK_KEY)]
        } else {
            Vec::new()
        },
        key_alias: q.key_alias,
        error_code: q.error_code,
        error_message: q.error_message,
        search: q.search,
        scope: None,
    };
    if let Reader::User(u) = &reader {
        let readable = readable_teams(state, u).await?;
        match &f.team_id {
            Some(t) if !readable.contains(t) => {
                return Err(ApiError::new(
                    crate::error::ErrorClass::PermissionDenied,
                    format!("Not authorized to view team spend for team_id={t}"),
                )
                .with_param("team_id"))
            }
            Some(_) => {}
            None => {
                f.scope = Some(OwnedScope {
                    user_id: u.user_id.clone(),
                    team_ids: readable,
                })
            }
        }
    }
    state.spend.flush().await;
    let counted = state
        .store
        .count_spend_logs(&f, LOG_ROW_CAP)
        .await
        .map_err(store_err)?;
    let capped = counted > LOG_ROW_CAP;
    let total = counted.min(LOG_ROW_CAP);
    let rows = state
        .store
        .list_spend_logs(&f, sort, descending, page_size, (page - 1) * page_size)
        .await
        .map_err(store_err)?;
    Ok(Json(json!({
        "data": rows.iter().map(log_json).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": (total + page_size - 1) / page_size,
        "total_is_capped": capped,
    }))
    .into_response())
}

/// Whether `user_id` is an `admin` member of the team (`members_with_roles`).
pub(crate) fn is_team_admin(team: &crate::store::TeamRow, user_id: &str) -> bool {
    team.members_with_roles.as_array().is_some_and(|m| {
        m.iter().any(|x| {
            x.get("user_id").and_then(Value::as_str) == Some(user_id)
                && x.get("role").and_then(Value::as_str) == Some("admin")
        })
    })
}

/// The teams whose logs a user may read beyond their own: those they administer.
async fn readable_teams(state: &AppState, u: &UserRow) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for t in &u.teams {
        if let Some(team) = state.store.get_team(t).await.map_err(store_err)? {
            if is_team_admin(&team, &u.user_id) {
                out.push(team.team_id);
            }
        }
    }
    Ok(out)
}

/// `GET /global/spend`: spend of the last 30 days, and the proxy's `max_budget`.
pub async fn global_spend_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    run(async {
        global_route(&state, &auth, "/global/spend").await?;
        state.spend.flush().await;
        let total = state
            .store
            .global_spend(days_ago(RECENT_DAYS))
            .await
            .map_err(store_err)?;
        let max = state.loaded.config.litellm_settings.max_budget;
        Ok(Json(json!({"spend": total, "max_budget": max})).into_response())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct GlobalSpendLogsQuery {
    api_key: Option<String>,
}

/// `GET /global/spend/logs`: spend per day over the last 30 days (of one key with `api_key`);
/// an internal user's permitted key sees their own spend per day and key.
pub async fn global_spend_logs_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<GlobalSpendLogsQuery>,
) -> Response {
    run(async {
        let reader = global_route(&state, &auth, "/global/spend/logs").await?;
        let api_key = q.api_key.map(key_param);
        state.spend.flush().await;
        let user = match &reader {
            Reader::User(u) => Some(u.user_id.as_str()),
            _ => None,
        };
        let rows = state
            .store
            .spend_per_day(days_ago(RECENT_DAYS), api_key.as_deref(), user)
            .await
            .map_err(store_err)?;
        let out: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("date".into(), json!(r.date));
                m.insert("spend".into(), json!(r.spend));
                if api_key.is_some() || user.is_some() {
                    m.insert("api_key".into(), json!(r.api_key));
                }
                if user.is_some() {
                    m.insert("user".into(), json!(r.user));
                }
                Value::Object(m)
            })
            .collect();
        Ok(Json(Value::Array(out)).into_response())
    })
    .await
}

/// `POST /spend/calculate`: the cost of `{model, messages}` before a call (prompt tokens
/// estimated from the text at about four characters a token, priced as the gateway would
/// charge that model) or of `{completion_response}` after one (its `usage`). `{"cost": f}`.
pub async fn calculate_spend_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(async {
        let body = body_of(&state, &headers, body).await?;
        let cost = calculate(&state, &body)?;
        Ok(Json(json!({ "cost": cost })).into_response())
    })
    .await
}

fn calculate(state: &AppState, body: &Map<String, Value>) -> ApiResult<f64> {
    let model = match body.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(v) => return Err(field_error("model", "a string", v)),
    };
    if let Some(model) = model {
        let messages = match body.get("messages") {
            None | Some(Value::Null) => {
                return Err(bad_param(
                    "messages",
                    "Bad Request - messages must be provided if 'model' is provided".into(),
                ))
            }
            Some(v @ Value::Array(_)) => v.clone(),
            Some(v) => return Err(field_error("messages", "a list of messages", v)),
        };
        let mut m = Map::new();
        m.insert("messages".into(), messages);
        let prompt = crate::api::messages::estimate_input_tokens(&m);
        let rates = model_rates(state, model)?;
        return Ok(rates.cost(&Usage::new(prompt, 0)));
    }
    match body.get("completion_response") {
        None | Some(Value::Null) => Err(bad_param(
            "model",
            "Bad Request - Either 'model' or 'completion_response' must be provided".into(),
        )),
        Some(Value::Object(r)) => {
            let model = match r.get("model") {
                Some(Value::String(s)) if !s.is_empty() => s.as_str(),
                _ => {
                    return Err(bad_param(
                        "completion_response",
                        "completion_response.model is required to price the response".into(),
                    ))
                }
            };
            let usage = r
                .get("usage")
                .and_then(Usage::from_json)
                .unwrap_or_else(|| Usage::new(0, completion_estimate(r)));
            Ok(model_rates(state, model)?.cost(&usage))
        }
        Some(v) => Err(field_error("completion_response", "an object", v)),
    }
}

/// Output tokens of a response without `usage`: its choices' text at about four characters a
/// token.
fn completion_estimate(r: &Map<String, Value>) -> u64 {
    let chars: usize = r
        .get("choices")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    c.pointer("/message/content")
                        .or_else(|| c.get("text"))
                        .and_then(Value::as_str)
                })
                .map(str::len)
                .sum()
        })
        .unwrap_or(0);
    (chars as u64).div_ceil(4)
}

/// Per-token prices of a model name: a configured model group (its deployment's prices and
/// overrides, as calls to it are charged), else the price map (`provider/model` or `model`).
fn model_rates(state: &AppState, model: &str) -> ApiResult<Rates> {
    if let Some(r) = state.router.load().resolve(model) {
        if let Some(d) = r.group.deployments.last() {
            let upstream = d.upstream_model_for(r.capture.as_deref());
            return Ok(rates_for(d, &upstream).0);
        }
    }
    let map = PriceMap::global();
    let found = map.lookup(None, "", model).or_else(|| {
        model
            .split_once('/')
            .and_then(|(provider, rest)| map.lookup(None, provider, rest))
    });
    found.map(|(_, p)| Rates::from_price(p)).ok_or_else(|| {
        bad_param(
            "model",
            format!("Model {model} has no price: it is neither a configured model nor in the model price map. Set input_cost_per_token/output_cost_per_token on a deployment to price it."),
        )
    })
}

/// `POST /global/spend/reset` (master key only): every key's and team's spend back to 0 in the
/// database and in this replica's budget counters; the spend logs are kept.
pub async fn global_spend_reset_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    run(async {
        if !auth.is_admin {
            return Err(ApiError::proxy_auth(
                "Authentication Error, Tried to access route=/global/spend/reset, which is only for MASTER KEY",
            ));
        }
        // Queued increments land first, so none is applied on top of the reset.
        state.spend.flush().await;
        state.store.reset_all_spend().await.map_err(store_err)?;
        state.budgets.zero_keys_and_teams();
        state.keys.clear();
        Ok(Json(json!({
            "message": "Spend for all API Keys and Teams reset successfully",
            "status": "success",
        }))
        .into_response())
    })
    .await
}

/// `POST /key/{key}/reset_spend` with `{"reset_to": float}`: sets the key's spend (0 <=
/// reset_to <= current spend and <= max_budget). Proxy admins, and admins of the key's team.
pub async fn reset_key_spend_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(reset_key_spend(&state, &auth, key, &headers, body)).await
}

async fn reset_key_spend(
    state: &AppState,
    auth: &AuthCtx,
    key: String,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    const ROUTE: &str = "/key/{key}/reset_spend";
    let reader = reader(state, auth).await?;
    let caller = match &reader {
        Reader::Admin => None,
        Reader::User(u) if u.user_role.as_deref() == Some("internal_user") => {
            Some(u.user_id.clone())
        }
        _ => {
            require_admin(auth, ROUTE)?;
            None
        }
    };
    let body = body_of(state, headers, body).await?;
    let reset_to = match body.get("reset_to") {
        None | Some(Value::Null) => {
            return Err(bad_param(
                "reset_to",
                "Missing required field: 'reset_to'.".into(),
            ))
        }
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(_) => return Err(bad_param("reset_to", "reset_to must be a float".into())),
    };
    if reset_to.is_nan() || reset_to < 0.0 {
        return Err(bad_param("reset_to", "reset_to must be >= 0".into()));
    }
    let token = key_param(key.clone());
    // Queued spend lands first: the check below compares with the key's full spend.
    state.spend.flush().await;
    let row = state
        .store
        .get_key(&token)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found(format!("Key {key} not found.")).with_param("key"))?;
    if let Some(uid) = caller {
        let team = match &row.team_id {
            Some(t) => state.store.get_team(t).await.map_err(store_err)?,
            None => None,
        };
        if !team.is_some_and(|t| is_team_admin(&t, &uid)) {
            return Err(ApiError::new(
                crate::error::ErrorClass::PermissionDenied,
                "You must be a proxy admin or team admin to reset key spend",
            ));
        }
    }
    let previous = row.spend;
    if reset_to > previous {
        return Err(bad_param(
            "reset_to",
            format!("reset_to ({reset_to}) must be <= current spend ({previous})"),
        ));
    }
    if let Some(max) = row.max_budget.filter(|m| reset_to > *m) {
        return Err(bad_param(
            "reset_to",
            format!("reset_to ({reset_to}) must be <= budget ({max})"),
        ));
    }
    if !state
        .store
        .set_key_spend(&row.token, reset_to)
        .await
        .map_err(store_err)?
    {
        return Err(ApiError::not_found(format!("Key {key} not found.")).with_param("key"));
    }
    state.budgets.set_spend(&row.token, reset_to);
    // The cached key goes last, after the write: the next request reloads the reset row.
    state.keys.remove(&row.token);
    Ok(Json(json!({
        "key_hash": row.token,
        "spend": reset_to,
        "previous_spend": previous,
        "max_budget": row.max_budget,
        "budget_reset_at": ts(row.budget_reset_at),
    }))
    .into_response())
}
