//! Budget tiers: `/budget/new`, `/budget/update`, `/budget/info`, `/budget/list`,
//! `/budget/delete`, `/budget/settings`, on LiteLLM's `LiteLLM_BudgetTable` with its field names
//! and response shapes (the row as stored).
//!
//! A budget row holds a `max_budget` (with `budget_duration` / `budget_reset_at` for resets),
//! a `soft_budget`, and `rpm_limit` / `tpm_limit` / `tpd_limit` / `max_parallel_requests`; end
//! users link to one by `budget_id`. The budget fields are parsed here for `/customer/*` too.
//! Every change drops the end-user and tag caches, since any cached end user or tag may ride
//! the changed row.
//! All routes are proxy-admin only. SQL stays in `store::budgets`.

use super::keys::{
    body_of, creator, field_error, opt_i64, opt_str, opt_strings, require_admin, store_err, ts,
};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::spend::{now, parse_duration};
use crate::state::AppState;
use crate::store::{rows_parse_ts, BudgetRow, StoreError};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A field as sent: `None` = absent, `Some(None)` = sent as `null`.
type Sent<T> = Option<Option<T>>;

/// The budget fields of a request body (LiteLLM's `BudgetNewRequest`, minus `budget_id`).
#[derive(Debug, Default, Clone)]
pub(crate) struct BudgetFields {
    pub max_budget: Sent<f64>,
    pub soft_budget: Sent<f64>,
    pub max_parallel_requests: Sent<i64>,
    pub tpm_limit: Sent<i64>,
    pub rpm_limit: Sent<i64>,
    pub tpd_limit: Sent<i64>,
    pub budget_duration: Sent<String>,
    pub model_max_budget: Sent<Value>,
    pub budget_reset_at: Sent<NaiveDateTime>,
}

/// Reads `f` with `parse` unless it is absent or `null`.
fn sent<T>(
    body: &Map<String, Value>,
    f: &str,
    parse: impl FnOnce(&Value) -> ApiResult<T>,
) -> ApiResult<Sent<T>> {
    match body.get(f) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => parse(v).map(|x| Some(Some(x))),
    }
}

/// A budget amount: a finite, non-negative number (LiteLLM's message).
fn money(f: &str, v: &Value) -> ApiResult<f64> {
    let Value::Number(n) = v else {
        return Err(field_error(f, "a number", v));
    };
    match n.as_f64() {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(ApiError::bad_request(format!(
            "{f} must be a non-negative finite number. Received: {n}"
        ))
        .with_param(f)),
    }
}

/// A limit: a non-negative whole number.
fn count(body: &Map<String, Value>, f: &str) -> ApiResult<Sent<i64>> {
    Ok(match body.get(f) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => Some(opt_i64(body, f)?),
    })
}

/// A `budget_duration` this gateway can schedule resets for.
pub(crate) fn duration(v: &Value) -> ApiResult<String> {
    let Value::String(d) = v else {
        return Err(field_error("budget_duration", "a string", v));
    };
    if parse_duration(d).is_none() {
        return Err(ApiError::bad_request(format!(
            "Invalid budget_duration '{d}'. Use a number followed by s, m, h, d, w or mo (e.g. '30d'), or hourly/daily/weekly/monthly."
        ))
        .with_param("budget_duration"));
    }
    Ok(d.clone())
}

impl BudgetFields {
    pub fn parse(body: &Map<String, Value>) -> ApiResult<Self> {
        Ok(Self {
            max_budget: sent(body, "max_budget", |v| money("max_budget", v))?,
            soft_budget: sent(body, "soft_budget", |v| money("soft_budget", v))?,
            max_parallel_requests: count(body, "max_parallel_requests")?,
            tpm_limit: count(body, "tpm_limit")?,
            rpm_limit: count(body, "rpm_limit")?,
            tpd_limit: count(body, "tpd_limit")?,
            budget_duration: sent(body, "budget_duration", duration)?,
            model_max_budget: sent(body, "model_max_budget", |v| match v {
                Value::Object(m) if m.values().all(Value::is_object) => Ok(v.clone()),
                _ => Err(field_error(
                    "model_max_budget",
                    "an object of {model: {budget_limit, time_period}} objects",
                    v,
                )),
            })?,
            budget_reset_at: sent(body, "budget_reset_at", |v| {
                v.as_str()
                    .and_then(rows_parse_ts)
                    .ok_or_else(|| field_error("budget_reset_at", "an ISO-8601 date-time", v))
            })?,
        })
    }

    /// Whether any budget field was sent, `null` included.
    pub fn any_sent(&self) -> bool {
        self.max_budget.is_some()
            || self.soft_budget.is_some()
            || self.max_parallel_requests.is_some()
            || self.tpm_limit.is_some()
            || self.rpm_limit.is_some()
            || self.tpd_limit.is_some()
            || self.budget_duration.is_some()
            || self.model_max_budget.is_some()
            || self.budget_reset_at.is_some()
    }

    /// Names of the fields sent with a value (not `null`).
    pub fn with_values(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |name: &'static str, has: bool| {
            if has {
                out.push(name);
            }
        };
        note("max_budget", matches!(self.max_budget, Some(Some(_))));
        note("soft_budget", matches!(self.soft_budget, Some(Some(_))));
        note(
            "max_parallel_requests",
            matches!(self.max_parallel_requests, Some(Some(_))),
        );
        note("tpm_limit", matches!(self.tpm_limit, Some(Some(_))));
        note("rpm_limit", matches!(self.rpm_limit, Some(Some(_))));
        note("tpd_limit", matches!(self.tpd_limit, Some(Some(_))));
        note(
            "budget_duration",
            matches!(self.budget_duration, Some(Some(_))),
        );
        note(
            "model_max_budget",
            matches!(self.model_max_budget, Some(Some(_))),
        );
        note(
            "budget_reset_at",
            matches!(self.budget_reset_at, Some(Some(_))),
        );
        out
    }

    /// Writes the sent fields into `row`. With `nulls_clear` a `null` empties the column (as
    /// `/budget/update` does); otherwise `null` means "leave as is". A new `budget_duration`
    /// schedules the next reset one duration from now, unless `budget_reset_at` is given.
    pub fn apply(&self, row: &mut BudgetRow, nulls_clear: bool) {
        fn put<T: Clone>(slot: &mut Option<T>, v: &Sent<T>, nulls_clear: bool) {
            match v {
                Some(Some(x)) => *slot = Some(x.clone()),
                Some(None) if nulls_clear => *slot = None,
                _ => {}
            }
        }
        put(&mut row.max_budget, &self.max_budget, nulls_clear);
        put(&mut row.soft_budget, &self.soft_budget, nulls_clear);
        put(
            &mut row.max_parallel_requests,
            &self.max_parallel_requests,
            nulls_clear,
        );
        put(&mut row.tpm_limit, &self.tpm_limit, nulls_clear);
        put(&mut row.rpm_limit, &self.rpm_limit, nulls_clear);
        put(&mut row.tpd_limit, &self.tpd_limit, nulls_clear);
        put(
            &mut row.model_max_budget,
            &self.model_max_budget,
            nulls_clear,
        );
        put(&mut row.budget_duration, &self.budget_duration, nulls_clear);
        match (&self.budget_reset_at, &self.budget_duration) {
            (Some(Some(at)), _) => row.budget_reset_at = Some(*at),
            (Some(None), _) if nulls_clear => row.budget_reset_at = None,
            (None, Some(Some(d))) => {
                row.budget_reset_at = parse_duration(d).map(|dur| now() + dur);
            }
            (None, Some(None)) if nulls_clear => row.budget_reset_at = None,
            _ => {}
        }
    }
}

/// A new budget row with LiteLLM's defaults, created by the caller.
pub(crate) fn new_budget_row(budget_id: String, auth: &AuthCtx) -> BudgetRow {
    let t = now();
    BudgetRow {
        budget_id,
        created_at: Some(t),
        created_by: creator(auth),
        updated_at: Some(t),
        updated_by: creator(auth),
        ..BudgetRow::default()
    }
}

/// The budget row as LiteLLM returns it from `/budget/*`.
pub(crate) fn budget_json(b: &BudgetRow) -> Map<String, Value> {
    let mut m = budget_fields_json(b);
    m.insert("updated_at".into(), ts(b.updated_at));
    m.insert("created_by".into(), json!(b.created_by));
    m.insert("updated_by".into(), json!(b.updated_by));
    m
}

/// The budget fields nested in a customer (`litellm_budget_table`): the row without its
/// `created_by` / `updated_*` audit columns.
pub(crate) fn budget_fields_json(b: &BudgetRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("budget_id".into(), json!(b.budget_id));
    m.insert("max_budget".into(), json!(b.max_budget));
    m.insert("soft_budget".into(), json!(b.soft_budget));
    m.insert(
        "max_parallel_requests".into(),
        json!(b.max_parallel_requests),
    );
    m.insert("tpm_limit".into(), json!(b.tpm_limit));
    m.insert("rpm_limit".into(), json!(b.rpm_limit));
    m.insert("tpd_limit".into(), json!(b.tpd_limit));
    m.insert(
        "model_max_budget".into(),
        b.model_max_budget.clone().unwrap_or(Value::Null),
    );
    m.insert("budget_duration".into(), json!(b.budget_duration));
    m.insert("budget_reset_at".into(), ts(b.budget_reset_at));
    m.insert("allowed_models".into(), json!(b.allowed_models));
    m.insert("temp_budget_increase".into(), json!(b.temp_budget_increase));
    m.insert("temp_budget_expiry".into(), ts(b.temp_budget_expiry));
    m.insert("created_at".into(), ts(b.created_at));
    m
}

/// `store_err`, with `param` named on conflicts (duplicates, rows still in use) and
/// not-found errors.
pub(crate) fn store_err_on(param: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::Conflict(_) | StoreError::NotFound(_) => store_err(e).with_param(param),
        other => store_err(other),
    }
}

fn budget_not_found(id: &str, param: &str) -> ApiError {
    let mut e =
        ApiError::not_found(format!("Budget id={id} does not exist in db")).with_param(param);
    e.type_override = Some("not_found");
    e
}

pub async fn new_budget_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/budget/new")?;
    let body = body_of(state, headers, body).await?;
    let budget_id = opt_str(&body, "budget_id")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let fields = BudgetFields::parse(&body)?;
    let mut row = new_budget_row(budget_id, auth);
    fields.apply(&mut row, false);
    state
        .store
        .insert_budget(&row)
        .await
        .map_err(store_err_on("budget_id"))?;
    state.end_users.clear();
    Ok(Json(Value::Object(budget_json(&row))).into_response())
}

pub async fn update_budget_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    update(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn update(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/budget/update")?;
    let body = body_of(state, headers, body).await?;
    let budget_id = opt_str(&body, "budget_id")?
        .ok_or_else(|| ApiError::bad_request("budget_id is required").with_param("budget_id"))?;
    let fields = BudgetFields::parse(&body)?;
    let mut row = state
        .store
        .get_budget(&budget_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| budget_not_found(&budget_id, "budget_id"))?;
    fields.apply(&mut row, true);
    row.updated_at = Some(now());
    row.updated_by = creator(auth);
    if !state.store.update_budget(&row).await.map_err(store_err)? {
        return Err(budget_not_found(&budget_id, "budget_id"));
    }
    state.end_users.clear();
    state.tags.clear();
    Ok(Json(Value::Object(budget_json(&row))).into_response())
}

pub async fn budget_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    info(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn info(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/budget/info")?;
    let body = body_of(state, headers, body).await?;
    let ids = opt_strings(&body, "budgets")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Specify list of budget id's to query. Passed in={ids:?}"
        ))
        .with_param("budgets"));
    }
    let rows = state.store.get_budgets(&ids).await.map_err(store_err)?;
    let out: Vec<Value> = rows.iter().map(|b| Value::Object(budget_json(b))).collect();
    Ok(Json(Value::Array(out)).into_response())
}

pub async fn list_budgets_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    list(&state, &auth)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn list(state: &AppState, auth: &AuthCtx) -> ApiResult<Response> {
    require_admin(auth, "/budget/list")?;
    let rows = state.store.list_budgets().await.map_err(store_err)?;
    let out: Vec<Value> = rows.iter().map(|b| Value::Object(budget_json(b))).collect();
    Ok(Json(Value::Array(out)).into_response())
}

pub async fn delete_budget_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    delete(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn delete(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/budget/delete")?;
    let body = body_of(state, headers, body).await?;
    let id = opt_str(&body, "id")?.ok_or_else(|| {
        ApiError::bad_request("Missing required field: 'id' (the budget to delete).")
            .with_param("id")
    })?;
    let row = state
        .store
        .delete_budget(&id)
        .await
        .map_err(store_err_on("id"))?
        .ok_or_else(|| budget_not_found(&id, "id"))?;
    state.end_users.clear();
    state.tags.clear();
    Ok(Json(Value::Object(budget_json(&row))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct BudgetSettingsQuery {
    budget_id: Option<String>,
}

/// The editable budget fields, their types (as LiteLLM's admin UI names them) and what they do.
const SETTINGS: [(&str, &str, &str); 8] = [
    (
        "max_budget",
        "Float",
        "Spend (USD) at which requests start being refused.",
    ),
    (
        "soft_budget",
        "Float",
        "Spend (USD) that triggers alerts without refusing requests.",
    ),
    (
        "max_parallel_requests",
        "Integer",
        "Requests that may be in flight at once.",
    ),
    ("tpm_limit", "Integer", "Tokens allowed per minute."),
    ("rpm_limit", "Integer", "Requests allowed per minute."),
    ("tpd_limit", "Integer", "Tokens allowed per day."),
    (
        "budget_duration",
        "String",
        "How often spend goes back to 0, e.g. '30d' or '1h'.",
    ),
    (
        "model_max_budget",
        "Object",
        "Per-model budgets, e.g. {\"gpt-4o\": {\"budget_limit\": 10, \"time_period\": \"1d\"}}.",
    ),
];

pub async fn budget_settings_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<BudgetSettingsQuery>,
) -> Response {
    settings(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn settings(state: &AppState, auth: &AuthCtx, q: BudgetSettingsQuery) -> ApiResult<Response> {
    require_admin(auth, "/budget/settings")?;
    let id = q.budget_id.ok_or_else(|| {
        ApiError::bad_request("Pass the budget to describe: /budget/settings?budget_id=<id>")
            .with_param("budget_id")
    })?;
    // An unknown id answers with every value null, as LiteLLM does.
    let row = state
        .store
        .get_budget(&id)
        .await
        .map_err(store_err)?
        .map(|b| budget_json(&b))
        .unwrap_or_default();
    let out: Vec<Value> = SETTINGS
        .iter()
        .map(|(name, kind, description)| {
            json!({
                "field_name": name,
                "field_type": kind,
                "field_description": description,
                "field_value": row.get(*name).cloned().unwrap_or(Value::Null),
                "stored_in_db": true,
                "field_default_value": null,
            })
        })
        .collect();
    Ok(Json(Value::Array(out)).into_response())
}
