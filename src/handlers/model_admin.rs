//! Model management on `LiteLLM_ProxyModelTable`: `POST /model/new`, `POST /model/update`,
//! `PATCH /model/{model_id}/update`, `POST /model/delete`.
//!
//! LiteLLM's shapes: the write routes answer with the stored row (`model_id`, `model_name`,
//! `litellm_params` with every string value encrypted, `model_info`, `blocked`, timestamps and
//! authors), delete with `{"message": "Model: <id> deleted successfully"}`. Proxy-admin only
//! (LiteLLM also lets team admins manage their team's models; that is not offered here). Each
//! write is one statement or one transaction, then this replica's router is rebuilt at once;
//! other replicas pick the change up at their next poll (`routing::db_models`).
//!
//! Without `store_model_in_db` the routes fail as LiteLLM's do (500 asking for
//! `STORE_MODEL_IN_DB`, or 400 on `PATCH`). SQL stays in `store::models`.

use super::keys::{body_of, creator, field_error, require_admin, store_err, ts};
use crate::config::LitellmParams;
use crate::crypto::SaltKey;
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::routing::db_models::{deployment_config, reload};
use crate::routing::Deployment;
use crate::spend::now;
use crate::state::AppState;
use crate::store::{ProxyModelRow, StoreError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        store_err(e)
    }
}

const ENABLE_HINT: &str = "Set `'STORE_MODEL_IN_DB='True'` in your env to enable this feature.";

fn not_enabled() -> ApiError {
    ApiError::internal(ENABLE_HINT)
}

fn salt(state: &AppState) -> ApiResult<&SaltKey> {
    state.db_models.salt().ok_or_else(|| {
        ApiError::bad_request(
            "Cannot encrypt the model's credentials: set LITELLM_SALT_KEY or a master key.",
        )
    })
}

/// The row as LiteLLM returns it (secrets stay encrypted).
fn row_json(r: &ProxyModelRow) -> Value {
    json!({
        "model_id": r.model_id,
        "model_name": r.model_name,
        "litellm_params": r.litellm_params,
        "model_info": r.model_info,
        "blocked": r.blocked,
        "created_at": ts(r.created_at),
        "created_by": r.created_by,
        "updated_at": ts(r.updated_at),
        "updated_by": r.updated_by,
    })
}

fn opt_obj<'a>(body: &'a Map<String, Value>, f: &str) -> ApiResult<Option<&'a Map<String, Value>>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(field_error(f, "an object", v)),
    }
}

fn opt_string(body: &Map<String, Value>, f: &str, path: &str) -> ApiResult<Option<String>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(field_error(path, "a string", v)),
    }
}

fn opt_bool(body: &Map<String, Value>, f: &str) -> ApiResult<Option<bool>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(field_error(f, "a boolean", v)),
    }
}

/// Checks plaintext `litellm_params` the way a config entry is checked, so a model that could
/// never be called is refused before it is stored.
fn validate_params(
    state: &AppState,
    model_name: &str,
    params: &Map<String, Value>,
) -> ApiResult<()> {
    match params.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => {}
        Some(v) => return Err(field_error("litellm_params.model", "a non-empty string", v)),
        None => {
            return Err(
                ApiError::bad_request("Missing required field 'litellm_params.model'.")
                    .with_param("litellm_params.model"),
            )
        }
    }
    let typed: LitellmParams = serde_path_to_error::deserialize(Value::Object(params.clone()))
        .map_err(|e| {
            let path = format!("litellm_params.{}", e.path());
            ApiError::bad_request(format!("Invalid value for '{path}': {}", e.inner()))
                .with_param(path)
        })?;
    let dc = crate::config::DeploymentConfig {
        model_name: model_name.to_string(),
        litellm_params: typed,
        model_info: Default::default(),
        raw_params: params.clone(),
        db_model: true,
    };
    Deployment::from_config(&dc, 0, &state.loaded).map_err(|e| {
        let msg = e.split_once(": ").map(|(_, m)| m.to_string()).unwrap_or(e);
        ApiError::bad_request(msg).with_param("litellm_params.model")
    })?;
    Ok(())
}

/// Encrypts every string value, as LiteLLM's `add_model_to_db` does.
fn encrypt_params(key: &SaltKey, params: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(key.encrypt(s).map_err(ApiError::internal)?),
                other => other.clone(),
            };
            Ok((k.clone(), v))
        })
        .collect()
}

/// A stored row must still decrypt into a callable deployment after an edit.
fn validate_row(state: &AppState, row: &ProxyModelRow) -> ApiResult<()> {
    let dc = deployment_config(row, state.db_models.salt(), &state.loaded)
        .map_err(|e| ApiError::bad_request(e).with_param("litellm_params"))?;
    validate_params(state, &row.model_name, &dc.raw_params)
}

/// Rebuilds this replica's router; a failed read is logged, the write already succeeded.
async fn refresh(state: &AppState) {
    if let Err(e) = reload(&state.0).await {
        tracing::warn!("model stored, but reloading DB models failed: {e}");
    }
}

fn in_config(state: &AppState, id: &str) -> bool {
    state
        .router
        .load()
        .all_deployments()
        .any(|d| d.id == id && !d.config.db_model)
}

pub async fn new_model_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match new_model(&state, &auth, &headers, body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn new_model(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Value> {
    require_admin(auth, "/model/new")?;
    let body = body_of(state, headers, body).await?;
    let model_name = match body.get("model_name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) => {
            return Err(
                ApiError::bad_request("Missing required field 'model_name'.")
                    .with_param("model_name"),
            )
        }
        Some(v) => return Err(field_error("model_name", "a non-empty string", v)),
    };
    let params = opt_obj(&body, "litellm_params")?.ok_or_else(|| {
        ApiError::bad_request("Missing required field 'litellm_params'.")
            .with_param("litellm_params")
    })?;
    let mut info = opt_obj(&body, "model_info")?.cloned().unwrap_or_default();
    let id = match opt_string(&info, "id", "model_info.id")? {
        Some(id) if !id.trim().is_empty() => id,
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let blocked = opt_bool(&body, "blocked")?.unwrap_or(false);
    validate_params(state, &model_name, params)?;
    if !state.db_models.enabled {
        return Err(not_enabled());
    }
    let key = salt(state)?;
    info.insert("id".into(), json!(id));
    info.insert("db_model".into(), json!(false));
    let who = creator(auth);
    let t = now();
    let row = ProxyModelRow {
        model_id: id,
        model_name,
        litellm_params: Value::Object(encrypt_params(key, params)?),
        model_info: Some(Value::Object(info)),
        blocked,
        created_at: Some(t),
        created_by: who.clone(),
        updated_at: Some(t),
        updated_by: who,
    };
    state.store.insert_proxy_model(&row).await?;
    refresh(state).await;
    Ok(row_json(&row))
}

pub async fn update_model_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match update_model(&state, &auth, &headers, body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /model/update`: LiteLLM's older, PUT-like edit. `model_info.id` names the model;
/// `litellm_params` values replace stored ones (nulls keep them); `model_name` renames.
async fn update_model(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Value> {
    require_admin(auth, "/model/update")?;
    let body = body_of(state, headers, body).await?;
    let info = opt_obj(&body, "model_info")?
        .ok_or_else(|| ApiError::bad_request("model_info not provided").with_param("model_info"))?;
    let id = opt_string(info, "id", "model_info.id")?.ok_or_else(|| {
        ApiError::bad_request("model_info.id not provided").with_param("model_info.id")
    })?;
    let model_name = opt_string(&body, "model_name", "model_name")?;
    let params = opt_obj(&body, "litellm_params")?.cloned();
    if !state.db_models.enabled {
        return Err(not_enabled());
    }
    let params = params.ok_or_else(|| {
        ApiError::bad_request("litellm_params not provided").with_param("litellm_params")
    })?;
    let key = salt(state)?;
    let who = creator(auth);
    let updated = state
        .store
        .update_proxy_model(&id, |row| {
            let mut stored = match &row.litellm_params {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            };
            let fresh: Map<String, Value> = params
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            stored.extend(encrypt_params(key, &fresh)?);
            row.litellm_params = Value::Object(stored);
            if let Some(n) = model_name.as_ref().filter(|n| !n.trim().is_empty()) {
                row.model_name = n.clone();
            }
            row.updated_at = Some(now());
            row.updated_by = who.clone();
            validate_row(state, row)
        })
        .await?;
    let Some(row) = updated else {
        return Err(if in_config(state, &id) {
            ApiError::bad_request(
                "Can't edit model. Model in config. Store model in db via `/model/new`. to edit.",
            )
        } else {
            ApiError::bad_request(format!("Model with id={id} not found in db"))
        }
        .with_param("model_info.id"));
    };
    refresh(state).await;
    Ok(row_json(&row))
}

pub async fn patch_model_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match patch_model(&state, &auth, &model_id, &headers, body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `PATCH /model/{model_id}/update`: only the fields sent change. `litellm_params` and
/// `model_info` are merged key by key (a null leaves the stored value), `blocked` pauses or
/// resumes the model.
async fn patch_model(
    state: &AppState,
    auth: &AuthCtx,
    model_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Value> {
    require_admin(auth, "/model/{model_id}/update")?;
    let body = body_of(state, headers, body).await?;
    let model_name = opt_string(&body, "model_name", "model_name")?;
    let params = opt_obj(&body, "litellm_params")?.cloned();
    let info = opt_obj(&body, "model_info")?.cloned();
    let blocked = opt_bool(&body, "blocked")?;
    if !state.db_models.enabled {
        return Err(
            ApiError::bad_request("Model updates only supported for DB-stored models")
                .with_param("model_id"),
        );
    }
    let key = salt(state)?;
    let who = creator(auth);
    let updated = state
        .store
        .update_proxy_model(model_id, |row| {
            if let Some(params) = &params {
                let mut stored = match &row.litellm_params {
                    Value::Object(m) => m.clone(),
                    _ => Map::new(),
                };
                let fresh: Map<String, Value> = params
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                stored.extend(encrypt_params(key, &fresh)?);
                row.litellm_params = Value::Object(stored);
            }
            if let Some(info) = &info {
                let mut merged = match &row.model_info {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                for (k, v) in info {
                    // The id is the row's key and cannot be changed through model_info.
                    if k != "id" && !v.is_null() {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                row.model_info = Some(Value::Object(merged));
            }
            if let Some(n) = model_name.as_ref().filter(|n| !n.trim().is_empty()) {
                row.model_name = n.clone();
            }
            if let Some(b) = blocked {
                row.blocked = b;
            }
            row.updated_at = Some(now());
            row.updated_by = who.clone();
            validate_row(state, row)
        })
        .await?;
    let Some(row) = updated else {
        return Err(if in_config(state, model_id) {
            ApiError::bad_request(
                "Cannot edit config-based model. Store model in DB via /model/new first.",
            )
            .with_param("model_id")
        } else {
            ApiError::new(
                ErrorClass::NotFound,
                format!("Model {model_id} not found on proxy."),
            )
            .with_param("model_id")
        });
    };
    refresh(state).await;
    Ok(row_json(&row))
}

pub async fn delete_model_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match delete_model(&state, &auth, &headers, body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn delete_model(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Value> {
    require_admin(auth, "/model/delete")?;
    let body = body_of(state, headers, body).await?;
    let id = match body.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("Missing required field 'id'.").with_param("id"))
        }
        Some(v) => return Err(field_error("id", "a non-empty string", v)),
    };
    let missing =
        || ApiError::bad_request(format!("Model with id={id} not found in db")).with_param("id");
    if !state.db_models.enabled {
        // LiteLLM looks the row up before it checks the setting.
        return Err(match state.store.get_proxy_model(&id).await? {
            Some(_) => not_enabled(),
            None => missing(),
        });
    }
    let deleted = state
        .store
        .delete_proxy_model(&id)
        .await?
        .ok_or_else(missing)?;
    refresh(state).await;
    Ok(json!({"message": format!("Model: {} deleted successfully", deleted.model_id)}))
}
