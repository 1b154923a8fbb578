//! Customers (end users): `/customer/new`, `/customer/info`, `/customer/update`,
//! `/customer/delete`, `/customer/list`, `/customer/block`, `/customer/unblock` (each also as
//! `/end_user/...`), on LiteLLM's `LiteLLM_EndUserTable` with its field names, defaults and
//! response shapes.
//!
//! Budget fields in a request (`max_budget`, `rpm_limit`, `budget_duration`, ...) create a
//! `LiteLLM_BudgetTable` row for the customer, or change the one it links to; `budget_id` links
//! an existing row instead (not both). A customer is returned with its budget row nested as
//! `litellm_budget_table`. Every change drops the affected end users from the cache the LLM
//! routes read. All routes are proxy-admin only. SQL stays in `store::end_users`.

use super::budgets::{budget_fields_json, new_budget_row, store_err_on, BudgetFields};
use super::keys::{body_of, field_error, opt_f64, opt_str, opt_strings, require_admin, store_err};
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::middleware::end_user::EndUser;
use crate::state::AppState;
use crate::store::{BudgetWrite, EndUserRow};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// `allowed_model_region` values LiteLLM accepts.
const REGIONS: [&str; 2] = ["eu", "us"];

/// The customer object LiteLLM returns (`CustomerResponse`).
pub(crate) fn customer_json(e: &EndUserRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("user_id".into(), json!(e.user_id));
    m.insert("blocked".into(), json!(e.blocked));
    m.insert("alias".into(), json!(e.alias));
    m.insert("spend".into(), json!(e.spend));
    m.insert("allowed_model_region".into(), json!(e.allowed_model_region));
    m.insert("default_model".into(), json!(e.default_model));
    m.insert("models".into(), json!(e.models));
    m.insert("budget_id".into(), json!(e.budget_id));
    m.insert(
        "litellm_budget_table".into(),
        e.budget
            .as_ref()
            .map(|b| Value::Object(budget_fields_json(b)))
            .unwrap_or(Value::Null),
    );
    m.insert("object_permission_id".into(), json!(e.object_permission_id));
    m.insert("object_permission".into(), Value::Null);
    m
}

fn not_found(message: String, param: &str) -> ApiError {
    let mut e = ApiError::not_found(message).with_param(param);
    e.type_override = Some("not_found");
    e
}

fn missing_customer(id: &str) -> ApiError {
    not_found(format!("End User Id={id} does not exist in db"), "user_id")
}

/// LiteLLM's `ProxyException` types for these routes (`not_found`, `bad_request`) instead of
/// the generic ones.
fn typed(e: ApiError) -> ApiError {
    let mut e = e;
    match e.class {
        ErrorClass::NotFound => e.type_override = Some("not_found"),
        ErrorClass::BadRequest if e.message.starts_with("Customer already exists") => {
            e.type_override = Some("bad_request")
        }
        _ => {}
    }
    e
}

fn opt_bool(body: &Map<String, Value>, f: &str) -> ApiResult<Option<bool>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(field_error(f, "a boolean", v)),
    }
}

fn region(body: &Map<String, Value>) -> ApiResult<Option<String>> {
    let r = opt_str(body, "allowed_model_region")?;
    if let Some(r) = &r {
        if !REGIONS.contains(&r.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid allowed_model_region '{r}'. Use \"eu\" or \"us\"."
            ))
            .with_param("allowed_model_region"));
        }
    }
    Ok(r)
}

/// `object_permission` (MCP servers, vector stores, agents) is not enforced by this gateway,
/// so only an empty one is accepted.
fn no_object_permission(body: &Map<String, Value>) -> ApiResult<()> {
    match body.get("object_permission") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) if m.is_empty() => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "object_permission is not supported by this gateway; leave it out or pass {}.",
        )
        .with_param("object_permission")),
    }
}

/// Budget fields and `budget_id` are alternatives.
pub(crate) fn one_budget_source(
    fields: &BudgetFields,
    budget_id: &Option<String>,
) -> ApiResult<()> {
    if budget_id.is_none() {
        return Ok(());
    }
    let given = fields.with_values();
    if given.contains(&"max_budget") {
        return Err(
            ApiError::bad_request("Set either 'max_budget' or 'budget_id', not both.")
                .with_param("max_budget"),
        );
    }
    if let Some(first) = given.first() {
        return Err(ApiError::bad_request(format!(
            "Set either 'budget_id' or the budget's own fields ({}), not both.",
            given.join(", ")
        ))
        .with_param(*first));
    }
    Ok(())
}

/// The required `user_ids` list.
fn user_ids(body: &Map<String, Value>) -> ApiResult<Vec<String>> {
    opt_strings(body, "user_ids")?.ok_or_else(|| {
        ApiError::bad_request("Missing required field: 'user_ids' (a list of customer ids).")
            .with_param("user_ids")
    })
}

/// Drops changed end users from the cache; the next request reads them again.
fn invalidate(state: &AppState, ids: &[String]) {
    state.end_users.invalidate(ids);
}

pub async fn new_customer_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create(&state, &auth, &headers, body)
        .await
        .map_err(typed)
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/customer/new")?;
    let body = body_of(state, headers, body).await?;
    let user_id = opt_str(&body, "user_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("Missing required field: 'user_id'.").with_param("user_id")
        })?;
    let budget_id = opt_str(&body, "budget_id")?;
    let fields = BudgetFields::parse(&body)?;
    one_budget_source(&fields, &budget_id)?;
    no_object_permission(&body)?;
    let default_model = opt_str(&body, "default_model")?;
    if let Some(m) = &default_model {
        let mut names = state.router.load().model_names();
        if !names.contains(m) {
            names.sort();
            let listed: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            let mut e = ApiError::new(
                ErrorClass::UnprocessableEntity,
                format!(
                    "Default Model not on proxy. Configure via `/model/new` or config.yaml. Default_model={m}, proxy_model_names={{{}}}",
                    listed.join(", ")
                ),
            )
            .with_param("default_model");
            e.type_override = Some("invalid_request_error");
            return Err(e);
        }
    }
    let mut row = EndUserRow {
        user_id: user_id.clone(),
        alias: opt_str(&body, "alias")?,
        spend: opt_f64(&body, "spend")?.unwrap_or(0.0),
        allowed_model_region: region(&body)?,
        default_model,
        models: opt_strings(&body, "models")?.unwrap_or_default(),
        blocked: opt_bool(&body, "blocked")?.unwrap_or(false),
        ..EndUserRow::default()
    };
    let new_budget = if fields.with_values().is_empty() {
        None
    } else {
        let mut b = new_budget_row(uuid::Uuid::new_v4().to_string(), auth);
        fields.apply(&mut b, false);
        Some(b)
    };
    match (&new_budget, &budget_id) {
        (Some(b), _) => {
            row.budget_id = Some(b.budget_id.clone());
            row.budget = Some(b.clone());
        }
        (None, Some(id)) => {
            let b = state
                .store
                .get_budget(id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Budget id={id} does not exist in db. Create it with /budget/new first."
                    ))
                    .with_param("budget_id")
                })?;
            row.budget_id = Some(b.budget_id.clone());
            row.budget = Some(b);
        }
        (None, None) => {}
    }
    state
        .store
        .insert_end_user(&row, new_budget.as_ref())
        .await
        .map_err(store_err_on("user_id"))?;
    invalidate(state, std::slice::from_ref(&user_id));
    state
        .budgets
        .reset(&EndUser::budget_scope(&user_id), row.spend);
    Ok(Json(Value::Object(customer_json(&row))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CustomerInfoQuery {
    end_user_id: Option<String>,
}

pub async fn customer_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<CustomerInfoQuery>,
) -> Response {
    info(&state, &auth, q)
        .await
        .map_err(typed)
        .unwrap_or_else(IntoResponse::into_response)
}

async fn info(state: &AppState, auth: &AuthCtx, q: CustomerInfoQuery) -> ApiResult<Response> {
    require_admin(auth, "/customer/info")?;
    let id = q.end_user_id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request("Pass the customer to look up: /customer/info?end_user_id=<id>")
            .with_param("end_user_id")
    })?;
    let row = state
        .store
        .get_end_user(&id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            not_found(
                format!("End User Id={id} does not exist in db"),
                "end_user_id",
            )
        })?;
    Ok(Json(Value::Object(customer_json(&row))).into_response())
}

pub async fn update_customer_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    update(&state, &auth, &headers, body)
        .await
        .map_err(typed)
        .unwrap_or_else(IntoResponse::into_response)
}

async fn update(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/customer/update")?;
    let body = body_of(state, headers, body).await?;
    let user_id = opt_str(&body, "user_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("Missing required field: 'user_id'.").with_param("user_id")
        })?;
    let budget_id = opt_str(&body, "budget_id")?;
    let fields = BudgetFields::parse(&body)?;
    one_budget_source(&fields, &budget_id)?;
    no_object_permission(&body)?;
    let mut row = state
        .store
        .get_end_user(&user_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| missing_customer(&user_id))?;
    // As in LiteLLM, `null` leaves a field as it is; `models: []` clears the allow-list.
    if let Some(a) = opt_str(&body, "alias")? {
        row.alias = Some(a);
    }
    if let Some(b) = opt_bool(&body, "blocked")? {
        row.blocked = b;
    }
    if let Some(r) = region(&body)? {
        row.allowed_model_region = Some(r);
    }
    if let Some(m) = opt_str(&body, "default_model")? {
        row.default_model = Some(m);
    }
    if let Some(m) = opt_strings(&body, "models")? {
        row.models = m;
    }
    let write = if let Some(id) = &budget_id {
        let b = state
            .store
            .get_budget(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Budget id={id} does not exist in db. Create it with /budget/new first."
                ))
                .with_param("budget_id")
            })?;
        row.budget_id = Some(b.budget_id.clone());
        row.budget = Some(b);
        BudgetWrite::Keep
    } else if fields.with_values().is_empty() {
        BudgetWrite::Keep
    } else {
        match row.budget.take() {
            Some(mut b) => {
                fields.apply(&mut b, false);
                b.updated_at = Some(crate::spend::now());
                b.updated_by = super::keys::creator(auth);
                row.budget = Some(b.clone());
                BudgetWrite::Update(b)
            }
            None => {
                let mut b = new_budget_row(uuid::Uuid::new_v4().to_string(), auth);
                fields.apply(&mut b, false);
                row.budget_id = Some(b.budget_id.clone());
                row.budget = Some(b.clone());
                BudgetWrite::Insert(b)
            }
        }
    };
    state
        .store
        .update_end_user(&row, &write)
        .await
        .map_err(store_err_on("user_id"))?;
    if matches!(write, BudgetWrite::Update(_)) {
        // The row may be a tier other end users (or tags) share.
        state.end_users.clear();
        state.tags.clear();
    } else {
        invalidate(state, std::slice::from_ref(&user_id));
    }
    let fresh = state
        .store
        .get_end_user(&user_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| missing_customer(&user_id))?;
    Ok(Json(Value::Object(customer_json(&fresh))).into_response())
}

pub async fn delete_customer_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    delete(&state, &auth, &headers, body)
        .await
        .map_err(typed)
        .unwrap_or_else(IntoResponse::into_response)
}

async fn delete(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/customer/delete")?;
    let body = body_of(state, headers, body).await?;
    let ids = user_ids(&body)?;
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "Pass 'user_ids', the customers to delete (a non-empty list).",
        )
        .with_param("user_ids"));
    }
    let deleted = state
        .store
        .delete_end_users(&ids)
        .await
        .map_err(store_err_on("user_ids"))?;
    invalidate(state, &ids);
    for id in &ids {
        state.budgets.reset(&EndUser::budget_scope(id), 0.0);
    }
    let listed: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    Ok(Json(json!({
        "deleted_customers": deleted,
        "message": format!("Successfully deleted customers with ids: [{}]", listed.join(", ")),
    }))
    .into_response())
}

pub async fn list_customers_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    list(&state, &auth)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn list(state: &AppState, auth: &AuthCtx) -> ApiResult<Response> {
    require_admin(auth, "/customer/list")?;
    let rows = state.store.list_end_users().await.map_err(store_err)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|e| Value::Object(customer_json(e)))
        .collect();
    Ok(Json(Value::Array(out)).into_response())
}

pub async fn block_customers_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    block(&state, &auth, &headers, body, true)
        .await
        .map_err(typed)
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn unblock_customers_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    block(&state, &auth, &headers, body, false)
        .await
        .map_err(typed)
        .unwrap_or_else(IntoResponse::into_response)
}

/// `/customer/block` creates unknown customers already blocked (LiteLLM upserts);
/// `/customer/unblock` only touches existing ones and answers with the ids still blocked.
async fn block(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
    blocked: bool,
) -> ApiResult<Response> {
    let route = if blocked {
        "/customer/block"
    } else {
        "/customer/unblock"
    };
    require_admin(auth, route)?;
    let body = body_of(state, headers, body).await?;
    let ids = user_ids(&body)?;
    let rows = state
        .store
        .set_end_users_blocked(&ids, blocked, blocked)
        .await
        .map_err(store_err_on("user_ids"))?;
    invalidate(state, &ids);
    if blocked {
        let out: Vec<Value> = rows
            .iter()
            .map(|e| Value::Object(customer_json(e)))
            .collect();
        return Ok(Json(json!({ "blocked_users": out })).into_response());
    }
    let still = state
        .store
        .blocked_end_user_ids()
        .await
        .map_err(store_err)?;
    Ok(Json(json!({ "blocked_users": still })).into_response())
}
