//! Grouped spend reports, in LiteLLM's shapes: `/spend/tags`, `/global/spend/tags`,
//! `/global/spend/report`, `/key/spend/report`, `/user/spend/report`, `/team/spend/report`,
//! `/global/spend/keys`, `/global/spend/teams`, `/global/spend/models` and
//! `/global/spend/end_users`.
//!
//! The database groups (`store::spend_reports`); these handlers only validate parameters,
//! apply the access rules of `handlers::spend` and nest the grouped rows (day -> team ->
//! model/key, key -> model) the way LiteLLM's SQL `jsonb_agg` does. Date ranges given as
//! `start_date`/`end_date` days cover both days whole (`startTime` from the first midnight up to
//! the midnight after the second), as LiteLLM's reports do.

use super::keys::{body_of, store_err};
use super::spend::{
    bad_param, global_route, int_param, key_param, midnight, spend_route, ymd, Reader, RECENT_DAYS,
};
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::state::AppState;
use crate::store::spend_reports::{days_ago, DayGroup, DayGroupRow, KeyModelRow, ReportScope};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Longest range a `/<x>/spend/report` covers (LiteLLM's `_SPEND_REPORT_MAX_RANGE_DAYS`).
const MAX_REPORT_DAYS: i64 = 366;
/// `/global/spend/models` default `limit`.
const DEFAULT_MODELS_LIMIT: i64 = 10;
/// How many keys an internal user's `/global/spend/keys` lists (LiteLLM's fixed top 10).
const USER_TOP_KEYS: i64 = 10;
/// `/global/spend/teams` lists this many teams in `total_spend_per_team`.
const TOP_TEAMS: usize = 10;
/// `/global/spend/end_users` returns at most this many end users.
const TOP_END_USERS: i64 = 100;

async fn respond<F>(f: F) -> Response
where
    F: std::future::Future<Output = ApiResult<Value>>,
{
    match f.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Both days of a report, required: `[first midnight, midnight after the second)`.
fn required_range(
    start: &Option<String>,
    end: &Option<String>,
) -> ApiResult<(NaiveDate, NaiveDate, NaiveDateTime, NaiveDateTime)> {
    let (Some(s), Some(e)) = (start, end) else {
        let missing = if start.is_none() {
            "start_date"
        } else {
            "end_date"
        };
        return Err(bad_param(
            missing,
            "Please provide start_date and end_date".into(),
        ));
    };
    let s = ymd(s, "start_date")?;
    let e = ymd(e, "end_date")?;
    let after = e.succ_opt().unwrap_or(e);
    Ok((s, e, midnight(s), midnight(after)))
}

/// `group_by_day` as LiteLLM's raw queries return a `date_trunc` day.
fn day_stamp(day: &str) -> String {
    format!("{day}T00:00:00+00:00")
}

/// Rounds like Python's `round(x, n)` for the figures LiteLLM rounds.
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Per key: total cost and tokens, with the per-model breakdown; the most spent key first.
fn per_key(rows: &[KeyModelRow]) -> Value {
    let mut keys: Vec<(String, f64, i64, i64, Vec<Value>)> = Vec::new();
    for r in rows {
        if keys.last().is_none_or(|k| k.0 != r.api_key) {
            keys.push((r.api_key.clone(), 0.0, 0, 0, Vec::new()));
        }
        if let Some(k) = keys.last_mut() {
            k.1 += r.cost;
            k.2 += r.input_tokens;
            k.3 += r.output_tokens;
            k.4.push(json!({
                "model": r.model, "total_cost": r.cost,
                "total_input_tokens": r.input_tokens, "total_output_tokens": r.output_tokens,
            }));
        }
    }
    keys.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Value::Array(
        keys.into_iter()
            .map(|(k, cost, input, output, models)| {
                json!({
                    "api_key": k, "total_cost": cost, "total_input_tokens": input,
                    "total_output_tokens": output, "model_details": models,
                })
            })
            .collect(),
    )
}

/// Per day, per group (team / customer / both): total spend and the (model, key) breakdown.
fn per_day(rows: &[DayGroupRow], group: DayGroup) -> Value {
    let list_name = match group {
        DayGroup::Team => "teams",
        DayGroup::Customer => "customers",
        DayGroup::TeamCustomer => "teams_customers",
    };
    let mut days: Vec<(String, Vec<Map<String, Value>>)> = Vec::new();
    for r in rows {
        if days.last().is_none_or(|d| d.0 != r.day) {
            days.push((r.day.clone(), Vec::new()));
        }
        let Some((_, groups)) = days.last_mut() else {
            continue;
        };
        let same = |g: &Map<String, Value>| {
            (group == DayGroup::Customer || g.get("team_name") == Some(&json!(r.team_name)))
                && (group == DayGroup::Team || g.get("customer") == Some(&json!(r.customer)))
        };
        if !groups.last().is_some_and(same) {
            let mut g = Map::new();
            if group != DayGroup::Customer {
                g.insert("team_name".into(), json!(r.team_name));
            }
            if group != DayGroup::Team {
                g.insert("customer".into(), json!(r.customer));
            }
            g.insert("total_spend".into(), json!(0.0));
            g.insert("metadata".into(), json!([]));
            groups.push(g);
        }
        if let Some(g) = groups.last_mut() {
            let total = g.get("total_spend").and_then(Value::as_f64).unwrap_or(0.0) + r.spend;
            g.insert("total_spend".into(), json!(total));
            if let Some(Value::Array(m)) = g.get_mut("metadata") {
                m.push(json!({
                    "model": r.model, "api_key": r.api_key, "spend": r.spend,
                    "total_tokens": r.total_tokens,
                }));
            }
        }
    }
    Value::Array(
        days.into_iter()
            .map(|(day, groups)| {
                let groups: Vec<Value> = groups.into_iter().map(Value::Object).collect();
                let mut m = Map::new();
                m.insert("group_by_day".into(), json!(day_stamp(&day)));
                m.insert(list_name.into(), Value::Array(groups));
                Value::Object(m)
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
pub struct TagsQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    tags: Option<String>,
}

/// `GET /spend/tags`: spend and request count per request tag (of both days whole when
/// `start_date` and `end_date` are given); an internal user sees their own requests' tags.
pub async fn spend_tags_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<TagsQuery>,
) -> Response {
    respond(async {
        let reader = spend_route(&state, &auth, "/spend/tags").await?;
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
        let (from, to) = match start.zip(end) {
            Some((s, e)) => (Some(midnight(s)), Some(midnight(e.succ_opt().unwrap_or(e)))),
            None => (None, None),
        };
        let user = match &reader {
            Reader::User(u) => Some(u.user_id.as_str()),
            _ => None,
        };
        state.spend.flush().await;
        let rows = state
            .store
            .spend_per_tag(from, to, None, user)
            .await
            .map_err(store_err)?;
        Ok(Value::Array(
            rows.iter()
                .map(|r| {
                    json!({
                        "individual_request_tag": r.tag, "log_count": r.log_count,
                        "total_spend": r.total_spend,
                    })
                })
                .collect(),
        ))
    })
    .await
}

/// `GET /global/spend/tags?start_date&end_date[&tags=a,b]`: `{"spend_per_tag": [{name, spend,
/// log_count}]}`, the most spent first (spend rounded to 4 places, as LiteLLM's UI wants it).
pub async fn global_spend_tags_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<TagsQuery>,
) -> Response {
    respond(async {
        global_route(&state, &auth, "/global/spend/tags").await?;
        let (_, _, from, to) = required_range(&q.start_date, &q.end_date)?;
        let only: Option<Vec<String>> = q
            .tags
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(String::from).collect::<Vec<_>>())
            .filter(|t| !t.iter().any(|x| x == "all-tags"));
        state.spend.flush().await;
        let rows = state
            .store
            .spend_per_tag(Some(from), Some(to), only, None)
            .await
            .map_err(store_err)?;
        let tags: Vec<Value> = rows
            .iter()
            .map(|r| json!({"name": r.tag, "spend": round(r.total_spend, 4), "log_count": r.log_count}))
            .collect();
        Ok(json!({ "spend_per_tag": tags }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct GlobalReportQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    group_by: Option<String>,
    api_key: Option<String>,
    internal_user_id: Option<String>,
    team_id: Option<String>,
    customer_id: Option<String>,
}

/// `GET /global/spend/report`: spend over `[start_date, end_date]`, per key and model for one
/// `api_key` or `internal_user_id`; per day and team (`group_by=team`, the default, optionally
/// one `team_id`), per day and customer (`group_by=customer`), per day, team and customer for a
/// `team_id` + `customer_id`; or per key and model (`group_by=api_key`).
pub async fn global_spend_report_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<GlobalReportQuery>,
) -> Response {
    respond(async {
        global_route(&state, &auth, "/global/spend/report").await?;
        let (_, _, from, to) = required_range(&q.start_date, &q.end_date)?;
        let group_by = q.group_by.as_deref().unwrap_or("team");
        if !matches!(group_by, "team" | "customer" | "api_key") {
            return Err(bad_param(
                "group_by",
                format!("Invalid group_by '{group_by}': use team, customer or api_key"),
            ));
        }
        state.spend.flush().await;
        let store = &state.store;
        if let Some(k) = q.api_key.map(key_param) {
            let rows = store
                .spend_by_key_model(from, to, Some((ReportScope::ApiKey, &k)))
                .await
                .map_err(store_err)?;
            return Ok(per_key(&rows));
        }
        if let Some(u) = &q.internal_user_id {
            let rows = store
                .spend_by_key_model(from, to, Some((ReportScope::User, u)))
                .await
                .map_err(store_err)?;
            return Ok(per_key(&rows));
        }
        if let (Some(t), Some(c)) = (&q.team_id, &q.customer_id) {
            let rows = store
                .spend_by_day_group(from, to, DayGroup::TeamCustomer, Some(t), Some(c))
                .await
                .map_err(store_err)?;
            return Ok(per_day(&rows, DayGroup::TeamCustomer));
        }
        Ok(match group_by {
            "team" => {
                let rows = store
                    .spend_by_day_group(from, to, DayGroup::Team, q.team_id.as_deref(), None)
                    .await
                    .map_err(store_err)?;
                per_day(&rows, DayGroup::Team)
            }
            "customer" => {
                let rows = store
                    .spend_by_day_group(from, to, DayGroup::Customer, None, None)
                    .await
                    .map_err(store_err)?;
                per_day(&rows, DayGroup::Customer)
            }
            _ => {
                let rows = store
                    .spend_by_key_model(from, to, None)
                    .await
                    .map_err(store_err)?;
                per_key(&rows)
            }
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ScopedReportQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    api_key: Option<String>,
    internal_user_id: Option<String>,
    team_id: Option<String>,
}

/// Dates of a `/<x>/spend/report`: both required, in order, at most [`MAX_REPORT_DAYS`] apart.
fn report_range(q: &ScopedReportQuery) -> ApiResult<(NaiveDateTime, NaiveDateTime)> {
    let (s, e, from, to) = required_range(&q.start_date, &q.end_date)?;
    if e < s {
        return Err(bad_param(
            "end_date",
            "start_date must be on or before end_date".into(),
        ));
    }
    if (e - s).num_days() > MAX_REPORT_DAYS {
        return Err(bad_param(
            "end_date",
            format!("Date range too large; maximum is {MAX_REPORT_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// The scope a caller may report on: admins any (`requested`), others only their own.
fn report_scope(
    reader: &Reader,
    requested: Option<String>,
    own: Option<String>,
    name: &str,
) -> ApiResult<String> {
    match requested.filter(|r| !r.is_empty()) {
        Some(r) if matches!(reader, Reader::Admin) || own.as_deref() == Some(r.as_str()) => Ok(r),
        Some(_) => Err(ApiError::new(
            ErrorClass::PermissionDenied,
            format!("Not authorized to view spend for a {name} other than your own"),
        )
        .with_param(name)),
        None => own.ok_or_else(|| {
            bad_param(
                name,
                format!("No {name} associated with this API key; pass a {name} query param"),
            )
        }),
    }
}

async fn scoped_report(
    state: &AppState,
    auth: &AuthCtx,
    q: ScopedReportQuery,
    scope: ReportScope,
) -> ApiResult<Value> {
    let route = match scope {
        ReportScope::ApiKey => "/key/spend/report",
        ReportScope::User => "/user/spend/report",
        ReportScope::Team => "/team/spend/report",
    };
    let reader = spend_route(state, auth, route).await?;
    let (from, to) = report_range(&q)?;
    let key = auth.key.as_ref();
    let value = match scope {
        ReportScope::ApiKey => report_scope(
            &reader,
            q.api_key.map(key_param),
            auth.key_hash.clone(),
            "api_key",
        )?,
        ReportScope::User => report_scope(
            &reader,
            q.internal_user_id,
            key.and_then(|k| k.user_id.clone()),
            "internal_user_id",
        )?,
        ReportScope::Team => report_scope(
            &reader,
            q.team_id,
            key.and_then(|k| k.team_id.clone()),
            "team_id",
        )?,
    };
    state.spend.flush().await;
    let rows = state
        .store
        .spend_by_key_model(from, to, Some((scope, &value)))
        .await
        .map_err(store_err)?;
    Ok(per_key(&rows))
}

/// `GET /key/spend/report`: spend per model of the calling key (admins: any `api_key`).
pub async fn key_spend_report_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ScopedReportQuery>,
) -> Response {
    respond(scoped_report(&state, &auth, q, ReportScope::ApiKey)).await
}

/// `GET /user/spend/report`: the calling user's spend per key and model (admins: any
/// `internal_user_id`).
pub async fn user_spend_report_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ScopedReportQuery>,
) -> Response {
    respond(scoped_report(&state, &auth, q, ReportScope::User)).await
}

/// `GET /team/spend/report`: the calling key's team's spend per key and model (admins: any
/// `team_id`).
pub async fn team_spend_report_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ScopedReportQuery>,
) -> Response {
    respond(scoped_report(&state, &auth, q, ReportScope::Team)).await
}

#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    limit: Option<String>,
}

fn positive_limit(q: &LimitQuery) -> ApiResult<Option<i64>> {
    let limit = int_param(&q.limit, "limit")?;
    if let Some(n) = limit.filter(|n| *n < 1) {
        return Err(bad_param(
            "limit",
            format!("Invalid limit: {n}, error: Limit must be greater than 0"),
        ));
    }
    Ok(limit)
}

/// `GET /global/spend/keys[?limit=n]`: keys by spend over the last 30 days (the top `n`); an
/// internal user's permitted key sees their own top 10 keys.
pub async fn global_spend_keys_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<LimitQuery>,
) -> Response {
    respond(async {
        let reader = global_route(&state, &auth, "/global/spend/keys").await?;
        let limit = positive_limit(&q)?;
        state.spend.flush().await;
        let rows = match &reader {
            Reader::User(u) => {
                state
                    .store
                    .spend_per_key(None, Some(&u.user_id), Some(USER_TOP_KEYS))
                    .await
            }
            _ => {
                state
                    .store
                    .spend_per_key(Some(days_ago(RECENT_DAYS)), None, limit)
                    .await
            }
        }
        .map_err(store_err)?;
        Ok(Value::Array(
            rows.iter()
                .map(|r| {
                    json!({
                        "api_key": r.api_key, "key_alias": r.key_alias, "key_name": r.key_name,
                        "total_spend": r.total_spend,
                    })
                })
                .collect(),
        ))
    })
    .await
}

/// `GET /global/spend/teams`: spend per team alias and day over the last 30 days, for LiteLLM's
/// UI: `{daily_spend: [{date, <alias>: spend}], teams: [aliases], total_spend_per_team: [{team_id,
/// total_spend}]}` (figures rounded to cents; teams without an alias are `Unassigned`).
pub async fn global_spend_teams_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    respond(async {
        global_route(&state, &auth, "/global/spend/teams").await?;
        state.spend.flush().await;
        let rows = state
            .store
            .spend_per_team_day(days_ago(RECENT_DAYS))
            .await
            .map_err(store_err)?;
        let mut daily: Vec<(String, Map<String, Value>)> = Vec::new();
        let mut totals: Vec<(String, f64)> = Vec::new();
        for r in &rows {
            let alias = r.team_alias.clone().unwrap_or_else(|| "Unassigned".into());
            let spend = round(r.total_spend, 2);
            if daily.last().is_none_or(|d| d.0 != r.spend_date) {
                daily.push((r.spend_date.clone(), Map::new()));
            }
            if let Some((_, m)) = daily.last_mut() {
                m.insert(alias.clone(), json!(spend));
            }
            match totals.iter_mut().find(|t| t.0 == alias) {
                Some(t) => t.1 += spend,
                None => totals.push((alias, spend)),
            }
        }
        let mut teams: Vec<String> = totals.iter().map(|t| t.0.clone()).collect();
        teams.sort();
        totals.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let daily: Vec<Value> = daily
            .into_iter()
            .map(|(date, spends)| {
                let mut m = Map::new();
                m.insert("date".into(), json!(date));
                m.extend(spends);
                Value::Object(m)
            })
            .collect();
        let top: Vec<Value> = totals
            .iter()
            .take(TOP_TEAMS)
            .map(|(t, s)| json!({"team_id": t, "total_spend": s}))
            .collect();
        Ok(json!({"daily_spend": daily, "teams": teams, "total_spend_per_team": top}))
    })
    .await
}

/// `GET /global/spend/models[?limit=10]`: the top models by spend over the last 30 days; an
/// internal user's permitted key sees their own (with tokens).
pub async fn global_spend_models_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<LimitQuery>,
) -> Response {
    respond(async {
        let reader = global_route(&state, &auth, "/global/spend/models").await?;
        let limit = positive_limit(&q)?.unwrap_or(DEFAULT_MODELS_LIMIT);
        state.spend.flush().await;
        let user = match &reader {
            Reader::User(u) => Some(u.user_id.as_str()),
            _ => None,
        };
        let since = user.is_none().then(|| days_ago(RECENT_DAYS));
        let rows = state
            .store
            .spend_per_model(since, user, limit)
            .await
            .map_err(store_err)?;
        Ok(Value::Array(
            rows.iter()
                .map(|r| {
                    if user.is_some() {
                        json!({"model": r.model, "total_spend": r.total_spend, "total_tokens": r.total_tokens})
                    } else {
                        json!({"model": r.model, "total_spend": r.total_spend})
                    }
                })
                .collect(),
        ))
    })
    .await
}

/// A datetime field of a JSON body: RFC 3339 (converted to UTC), a naive timestamp (UTC) or a
/// date (midnight).
fn body_datetime(body: &Map<String, Value>, field: &str) -> ApiResult<Option<NaiveDateTime>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.naive_utc())
            .ok()
            .or_else(|| crate::store::rows_parse_ts(s))
            .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(midnight))
            .map(Some)
            .ok_or_else(|| {
                bad_param(
                    field,
                    format!("Invalid {field} '{s}': expected an ISO 8601 datetime"),
                )
            }),
        Some(v) => Err(super::keys::field_error(field, "an ISO 8601 datetime", v)),
    }
}

/// `POST /global/spend/end_users` with optional `{api_key, startTime, endTime}`: the top 100
/// end users by spend in `[startTime, endTime)` (default: the last 30 days).
pub async fn global_spend_end_users_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        global_route(&state, &auth, "/global/spend/end_users").await?;
        let body = body_of(&state, &headers, body).await?;
        let api_key = super::keys::opt_str(&body, "api_key")?.map(key_param);
        let now = crate::spend::now();
        let start = body_datetime(&body, "startTime")?
            .unwrap_or_else(|| now - chrono::Duration::days(RECENT_DAYS));
        let end = body_datetime(&body, "endTime")?.unwrap_or(now);
        state.spend.flush().await;
        let rows = state
            .store
            .spend_per_end_user(start, end, api_key.as_deref(), TOP_END_USERS)
            .await
            .map_err(store_err)?;
        Ok(Value::Array(
            rows.iter()
                .map(|r| {
                    json!({"end_user": r.end_user, "total_count": r.total_count, "total_spend": r.total_spend})
                })
                .collect(),
        ))
    })
    .await
}
