//! Tag management: `POST /tag/new`, `/tag/update`, `/tag/info`, `/tag/delete` and
//! `GET /tag/list`, on LiteLLM's `LiteLLM_TagTable` with its field names, messages and
//! response shapes (`TagConfig`: `name`, `description`, `models`, `model_info`, `created_at`,
//! `updated_at`, `created_by`; the budget row nested as `litellm_budget_table` when linked).
//!
//! Budget fields in a request (`max_budget`, `soft_budget`, `rpm_limit`, `tpm_limit`,
//! `max_parallel_requests`, `model_max_budget`, `budget_duration`) create a
//! `LiteLLM_BudgetTable` row for the tag, or change the one it links to, as LiteLLM's
//! `handle_budget_for_entity` does; `budget_id` links an existing row instead (not both: a
//! request with both is refused, where LiteLLM would quietly drop the fields). `/tag/new` with
//! `models` adds the tag to the `litellm_params.tags` of the stored deployments those models
//! name (by model id, else by model group) and reloads the router; config-file deployments
//! cannot be changed and are left as they are (LiteLLM fails the request there, after creating
//! the tag). `/tag/update` replaces `description` and `models` with what it is sent, as
//! LiteLLM's does.
//!
//! Access follows LiteLLM's route groups: the writes and `/tag/info` are for proxy admins;
//! `/tag/list` is also open to admin viewers, and to internal users (and internal viewers),
//! who see only the tags their own keys have used. Every change drops the affected tags (and
//! the registry of tag names) from the cache LLM calls read. SQL stays in `store::tags`.
//!
//! Deviation: LiteLLM wraps these routes' own 400/404 errors into a 500 whose text starts with
//! the intended status (`"400: Tag t already exists"`); here they keep their status.

use super::budgets::{budget_json, new_budget_row, store_err_on, BudgetFields};
use super::customers::one_budget_source;
use super::keys::{body_of, creator, opt_str, opt_strings, require_admin, store_err};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::middleware::tags::budget_scope;
use crate::routing::db_models::reload;
use crate::state::AppState;
use crate::store::{BudgetRow, BudgetWrite, StoreError, TagRow};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The description LiteLLM gives the tags `/tag/list` finds only in the daily roll-ups.
const DYNAMIC_TAG_DESCRIPTION: &str = "This is just a spend tag that was passed dynamically in a request. It does not control any LLM models.";

/// A timestamp as Python's `datetime.isoformat()` writes an aware UTC one (LiteLLM's
/// `created_at.isoformat()`): microseconds only when there are any.
fn iso(t: Option<NaiveDateTime>) -> Value {
    match t {
        None => Value::Null,
        Some(t) => {
            let micros = chrono::Timelike::nanosecond(&t) / 1_000;
            let base = t.format("%Y-%m-%dT%H:%M:%S");
            Value::String(if micros == 0 {
                format!("{base}+00:00")
            } else {
                format!("{base}.{micros:06}+00:00")
            })
        }
    }
}

/// LiteLLM's `TagConfig`.
fn tag_config(t: &TagRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(t.tag_name));
    m.insert("description".into(), json!(t.description));
    m.insert("models".into(), json!(t.models));
    m.insert(
        "model_info".into(),
        t.model_info.clone().unwrap_or_else(|| json!({})),
    );
    m.insert("created_at".into(), iso(t.created_at));
    m.insert("updated_at".into(), iso(t.updated_at));
    m.insert("created_by".into(), json!(t.created_by));
    m
}

/// A stored tag as `/tag/info` and `/tag/list` show it: its `TagConfig`, plus its budget row
/// when it links to one.
fn tag_json(t: &TagRow) -> Value {
    let mut m = tag_config(t);
    if let Some(b) = &t.budget {
        m.insert("litellm_budget_table".into(), Value::Object(budget_json(b)));
    }
    Value::Object(m)
}

/// The required, non-empty `name`.
fn name_of(body: &Map<String, Value>) -> ApiResult<String> {
    opt_str(body, "name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing required field: 'name'.").with_param("name"))
}

fn missing_tag(name: &str) -> ApiError {
    ApiError::not_found(format!("Tag {name} not found")).with_param("name")
}

/// An existing budget row named by `budget_id`.
async fn linked_budget(state: &AppState, id: &str) -> ApiResult<BudgetRow> {
    state
        .store
        .get_budget(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Budget id={id} does not exist in db. Create it with /budget/new first."
            ))
            .with_param("budget_id")
        })
}

/// `{model_id: model_name}` for the `models` that are stored models (LiteLLM's `model_info`).
async fn model_info(state: &AppState, models: &[String]) -> ApiResult<Value> {
    let names = state
        .store
        .proxy_model_names(models)
        .await
        .map_err(store_err)?;
    Ok(Value::Object(
        names
            .into_iter()
            .map(|(id, name)| (id, Value::String(name)))
            .collect(),
    ))
}

/// The budget row a new tag gets: a linked one, or a new one from the budget fields.
async fn budget_for_new(
    state: &AppState,
    auth: &AuthCtx,
    fields: &BudgetFields,
    budget_id: Option<&str>,
) -> ApiResult<(Option<BudgetRow>, Option<BudgetRow>)> {
    if let Some(id) = budget_id {
        return Ok((Some(linked_budget(state, id).await?), None));
    }
    if fields.with_values().is_empty() {
        return Ok((None, None));
    }
    let mut b = new_budget_row(uuid::Uuid::new_v4().to_string(), auth);
    fields.apply(&mut b, false);
    Ok((Some(b.clone()), Some(b)))
}

pub async fn new_tag_handler(
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
    require_admin(auth, "/tag/new")?;
    let body = body_of(state, headers, body).await?;
    let name = name_of(&body)?;
    let description = opt_str(&body, "description")?;
    let models = opt_strings(&body, "models")?.unwrap_or_default();
    let budget_id = opt_str(&body, "budget_id")?;
    let fields = BudgetFields::parse(&body)?;
    one_budget_source(&fields, &budget_id)?;
    let (budget, new_budget) = budget_for_new(state, auth, &fields, budget_id.as_deref()).await?;
    let t = crate::spend::now();
    let row = TagRow {
        tag_name: name.clone(),
        description,
        model_info: Some(model_info(state, &models).await?),
        models,
        spend: 0.0,
        budget_id: budget.as_ref().map(|b| b.budget_id.clone()),
        created_at: Some(t),
        created_by: Some(creator(auth)),
        updated_at: Some(t),
        budget,
    };
    state
        .store
        .insert_tag(&row, new_budget.as_ref())
        .await
        .map_err(store_err_on("name"))?;
    state.tags.invalidate(std::iter::once(&name));
    state.tags.names_changed();
    state.budgets.reset(&budget_scope(&name), 0.0);
    tag_stored_models(state, &name, &row.models).await?;
    Ok(Json(json!({
        "message": format!("Tag {name} created successfully"),
        "tag": tag_config(&row),
    }))
    .into_response())
}

/// Adds `tag` to the `litellm_params.tags` of the stored deployments `models` name (a
/// deployment id, else a model group), then reloads this replica's router.
async fn tag_stored_models(state: &AppState, tag: &str, models: &[String]) -> ApiResult<()> {
    if models.is_empty() {
        return Ok(());
    }
    let router = state.router.load_full();
    let mut ids: Vec<String> = Vec::new();
    for m in models {
        let by_id = router.all_deployments().any(|d| d.id == *m);
        for d in router.all_deployments().filter(|d| {
            if by_id {
                d.id == *m
            } else {
                d.model_name == *m
            }
        }) {
            if d.config.db_model && !ids.contains(&d.id) {
                ids.push(d.id.clone());
            }
        }
    }
    let mut changed = false;
    for id in &ids {
        let updated = state
            .store
            .update_proxy_model(id, |row| -> Result<(), StoreError> {
                if let Value::Object(params) = &mut row.litellm_params {
                    let tags = params
                        .entry("tags")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if !tags.is_array() {
                        *tags = Value::Array(Vec::new());
                    }
                    if let Value::Array(list) = tags {
                        if !list.iter().any(|t| t.as_str() == Some(tag)) {
                            list.push(Value::String(tag.to_string()));
                        }
                    }
                }
                row.updated_at = Some(crate::spend::now());
                Ok(())
            })
            .await
            .map_err(store_err)?;
        changed |= updated.is_some();
    }
    if changed {
        if let Err(e) = reload(&state.0).await {
            tracing::warn!("tag added to stored models, but reloading them failed: {e}");
        }
    }
    Ok(())
}

pub async fn update_tag_handler(
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
    require_admin(auth, "/tag/update")?;
    let body = body_of(state, headers, body).await?;
    let name = name_of(&body)?;
    let description = opt_str(&body, "description")?;
    let models = opt_strings(&body, "models")?.unwrap_or_default();
    let budget_id = opt_str(&body, "budget_id")?;
    let fields = BudgetFields::parse(&body)?;
    one_budget_source(&fields, &budget_id)?;
    let mut row = state
        .store
        .get_tags(std::slice::from_ref(&name))
        .await
        .map_err(store_err)?
        .into_iter()
        .next()
        .ok_or_else(|| missing_tag(&name))?;
    row.description = description;
    row.model_info = Some(model_info(state, &models).await?);
    row.models = models;
    row.updated_at = Some(crate::spend::now());
    let write = match (&budget_id, row.budget.take()) {
        (Some(id), current) if current.as_ref().map(|b| &b.budget_id) == Some(id) => {
            row.budget = current;
            BudgetWrite::Keep
        }
        (Some(id), _) => {
            let b = linked_budget(state, id).await?;
            row.budget_id = Some(b.budget_id.clone());
            row.budget = Some(b);
            BudgetWrite::Keep
        }
        // Sent values change the linked row, sent nulls clear its fields (LiteLLM's
        // `cleared_budget_fields`).
        (None, Some(mut b)) if fields.any_sent() => {
            fields.apply(&mut b, true);
            b.updated_at = Some(crate::spend::now());
            b.updated_by = creator(auth);
            row.budget = Some(b.clone());
            BudgetWrite::Update(b)
        }
        (None, None) if !fields.with_values().is_empty() => {
            let mut b = new_budget_row(uuid::Uuid::new_v4().to_string(), auth);
            fields.apply(&mut b, false);
            row.budget_id = Some(b.budget_id.clone());
            row.budget = Some(b.clone());
            BudgetWrite::Insert(b)
        }
        (None, current) => {
            row.budget = current;
            BudgetWrite::Keep
        }
    };
    state
        .store
        .update_tag(&row, &write)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => missing_tag(&name),
            other => store_err_on("name")(other),
        })?;
    if matches!(write, BudgetWrite::Update(_)) {
        // The row may be shared with other tags and with end users.
        state.tags.clear();
        state.end_users.clear();
    } else {
        state.tags.invalidate(std::iter::once(&name));
    }
    let fresh = state
        .store
        .get_tags(std::slice::from_ref(&name))
        .await
        .map_err(store_err)?
        .into_iter()
        .next()
        .ok_or_else(|| missing_tag(&name))?;
    Ok(Json(json!({
        "message": format!("Tag {name} updated successfully"),
        "tag": tag_config(&fresh),
    }))
    .into_response())
}

pub async fn tag_info_handler(
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
    require_admin(auth, "/tag/info")?;
    let body = body_of(state, headers, body).await?;
    let names = opt_strings(&body, "names")?.ok_or_else(|| {
        ApiError::bad_request("Missing required field: 'names' (a list of tag names).")
            .with_param("names")
    })?;
    let rows = state.store.get_tags(&names).await.map_err(store_err)?;
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !rows.iter().any(|r| &r.tag_name == *n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::not_found(format!(
            "Tags not found: {}",
            crate::cache::key::py_list(&missing)
        ))
        .with_param("names"));
    }
    let out: Map<String, Value> = rows
        .iter()
        .map(|r| (r.tag_name.clone(), tag_json(r)))
        .collect();
    Ok(Json(Value::Object(out)).into_response())
}

pub async fn delete_tag_handler(
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
    require_admin(auth, "/tag/delete")?;
    let body = body_of(state, headers, body).await?;
    let name = name_of(&body)?;
    if !state.store.delete_tag(&name).await.map_err(store_err)? {
        return Err(missing_tag(&name));
    }
    state.tags.invalidate(std::iter::once(&name));
    state.tags.names_changed();
    state.budgets.reset(&budget_scope(&name), 0.0);
    Ok(Json(json!({"message": format!("Tag {name} deleted successfully")})).into_response())
}

#[derive(Debug, Deserialize)]
pub struct TagListQuery {
    start_date: Option<String>,
    end_date: Option<String>,
}

/// LiteLLM's `/tag/list` window: both dates or neither, `YYYY-MM-DD`, start on or before end.
fn date_window(q: &TagListQuery) -> ApiResult<Option<(&str, &str)>> {
    let (from, to) = match (q.start_date.as_deref(), q.end_date.as_deref()) {
        (None, None) => return Ok(None),
        (Some(from), Some(to)) => (from, to),
        _ => {
            return Err(
                ApiError::bad_request("start_date and end_date must be provided together")
                    .with_param("start_date"),
            )
        }
    };
    let parse = |s: &str, param: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid date format, expected YYYY-MM-DD: {s:?} ({e})"
            ))
            .with_param(param)
        })
    };
    if parse(from, "start_date")? > parse(to, "end_date")? {
        return Err(
            ApiError::bad_request("start_date must be on or before end_date")
                .with_param("start_date"),
        );
    }
    Ok(Some((from, to)))
}

pub async fn list_tags_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<TagListQuery>,
) -> Response {
    list(&state, &auth, &q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Stored tags (with their budget rows), then the tags the daily roll-ups hold that have no
/// row. An internal user (or internal viewer) sees only the tags of their own keys' calls.
async fn list(state: &AppState, auth: &AuthCtx, q: &TagListQuery) -> ApiResult<Response> {
    let scoped = if crate::handlers::access::can_view_all(auth) {
        false
    } else if matches!(
        auth.user_role,
        Some("internal_user" | "internal_user_viewer")
    ) {
        true
    } else {
        return Err(crate::handlers::access::admin_only(auth, "/tag/list"));
    };
    let dates = date_window(q)?;
    let own_keys = if scoped {
        let mut keys: Vec<String> = auth.key_hash.clone().into_iter().collect();
        if let Some(uid) = auth.user_id() {
            for k in super::daily_activity::own_keys(state, uid).await? {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        Some(keys)
    } else {
        None
    };
    let used = state
        .store
        .used_tags(own_keys.as_deref(), dates)
        .await
        .map_err(store_err)?;
    if scoped && used.is_empty() {
        return Ok(Json(json!([])).into_response());
    }
    let used_names: Vec<String> = used.iter().map(|u| u.tag.clone()).collect();
    let stored = state
        .store
        .list_tags(scoped.then_some(used_names.as_slice()))
        .await
        .map_err(store_err)?;
    let mut out: Vec<Value> = stored.iter().map(tag_json).collect();
    out.extend(
        used.iter()
            .filter(|u| !stored.iter().any(|t| t.tag_name == u.tag))
            .map(|u| {
                json!({
                    "name": u.tag,
                    "description": DYNAMIC_TAG_DESCRIPTION,
                    "models": null,
                    "created_at": iso(u.first_created_at),
                    "updated_at": iso(u.last_updated_at),
                })
            }),
    );
    Ok(Json(Value::Array(out)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn timestamps_read_as_python_isoformat() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_milli_opt(3, 4, 5, 120)
            .unwrap();
        assert_eq!(iso(Some(t)), "2026-01-02T03:04:05.120000+00:00");
        let whole = t.with_nanosecond(0).unwrap();
        assert_eq!(iso(Some(whole)), "2026-01-02T03:04:05+00:00");
        assert_eq!(iso(None), Value::Null);
    }

    #[test]
    fn list_window_needs_both_dates_in_order() {
        let q = |a: Option<&str>, b: Option<&str>| TagListQuery {
            start_date: a.map(String::from),
            end_date: b.map(String::from),
        };
        assert_eq!(date_window(&q(None, None)).unwrap(), None);
        assert_eq!(
            date_window(&q(Some("2026-01-01"), Some("2026-01-31"))).unwrap(),
            Some(("2026-01-01", "2026-01-31"))
        );
        let e = date_window(&q(Some("2026-01-01"), None)).unwrap_err();
        assert_eq!(
            e.message,
            "start_date and end_date must be provided together"
        );
        let e = date_window(&q(Some("2026-02-01"), Some("2026-01-01"))).unwrap_err();
        assert_eq!(e.message, "start_date must be on or before end_date");
        let e = date_window(&q(Some("01/02/2026"), Some("2026-01-01"))).unwrap_err();
        assert!(
            e.message
                .starts_with("Invalid date format, expected YYYY-MM-DD"),
            "{}",
            e.message
        );
    }
}
