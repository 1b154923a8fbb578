//! `/v1/models`, `/v1/models/{id}` and `/model/info`.
//!
//! Shapes follow LiteLLM: `created` is the constant 1677610602 and `owned_by` is `"openai"`
//! for every entry; `/model/info` lists deployments with secrets removed.

use crate::error::ApiError;
use crate::middleware::auth::AuthCtx;
use crate::routing::ModelGroup;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const MODEL_CREATED: i64 = 1677610602;

fn visible(auth: &AuthCtx, group: &ModelGroup) -> bool {
    auth.allowed_models.is_empty()
        || auth
            .allowed_models
            .iter()
            .any(|m| m == &group.name || m == "all-proxy-models" || group.access_groups.contains(m))
}

fn model_entry(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODEL_CREATED, "owned_by": "openai"})
}

pub async fn list_models_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    let router = state.router.load();
    let data: Vec<Value> = router
        .model_names()
        .iter()
        .filter(|name| {
            router
                .resolve(name)
                .is_some_and(|r| visible(&auth, r.group))
        })
        .map(|n| model_entry(n))
        .collect();
    Json(json!({"data": data, "object": "list"})).into_response()
}

pub async fn get_model_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    Path(id): Path<String>,
) -> Response {
    match state.router.load().resolve(&id) {
        Some(r) if visible(&auth, r.group) => Json(model_entry(&id)).into_response(),
        _ => ApiError::not_found(format!("The model `{id}` does not exist"))
            .with_param("model")
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ModelInfoQuery {
    litellm_model_id: Option<String>,
}

pub async fn model_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ModelInfoQuery>,
) -> Response {
    let mut data = Vec::new();
    let router = state.router.load();
    for group in router.groups() {
        if !visible(&auth, group) {
            continue;
        }
        for d in &group.deployments {
            if q.litellm_model_id.as_ref().is_some_and(|id| id != &d.id) {
                continue;
            }
            let mut info: serde_json::Map<String, Value> = d.config.model_info.extra.clone();
            info.insert("id".into(), json!(d.id));
            info.insert("db_model".into(), json!(d.config.db_model));
            info.insert("litellm_provider".into(), json!(d.provider.name()));
            let mi = &d.config.model_info;
            let mode = mi.mode.clone().unwrap_or_else(|| "chat".into());
            info.insert("mode".into(), json!(mode));
            let mut extra_fields: HashMap<&str, Option<Value>> = HashMap::new();
            extra_fields.insert("base_model", mi.base_model.clone().map(Value::String));
            extra_fields.insert("max_tokens", mi.max_tokens.map(Value::from));
            extra_fields.insert("max_input_tokens", mi.max_input_tokens.map(Value::from));
            extra_fields.insert("max_output_tokens", mi.max_output_tokens.map(Value::from));
            extra_fields.insert(
                "input_cost_per_token",
                mi.input_cost_per_token
                    .or(d.config.litellm_params.input_cost_per_token)
                    .map(Value::from),
            );
            extra_fields.insert(
                "output_cost_per_token",
                mi.output_cost_per_token
                    .or(d.config.litellm_params.output_cost_per_token)
                    .map(Value::from),
            );
            for (k, v) in extra_fields {
                info.insert(k.into(), v.unwrap_or(Value::Null));
            }
            if !mi.access_groups.is_empty() {
                info.insert("access_groups".into(), json!(mi.access_groups));
            }
            data.push(json!({
                "model_name": d.model_name,
                "litellm_params": d.public_params(),
                "model_info": info,
            }));
        }
    }
    Json(json!({"data": data})).into_response()
}
